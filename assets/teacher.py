"""The teacher stage: every prompt in the pool answered by one teacher release (one partition)."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from assets.checks import ratio_check
from assets.constants import OWNERS
from assets.metadata import best_of_n_metadata, counts_markdown, table_metadata, value_counts
from assets.partitions import teacher_partitions
from assets.prompts import prompt_pool
from assets.resources import CatalogResource, QualityResource, TeacherResource, TrainingSetStorageResource
from assets.run_tags import CALLS_PAID_TAG, COST_TAG, LAUNCHED_BY_TAG, TEACHER_TAG, tag_run
from assets.served import require_model_served
from distillset.curation.best_of_n import policy_of, select_samples
from distillset.publish.preflight import NotPublishableError, check_before_paying
from distillset.teacher.batch.run import generate_with_batches
from distillset.teacher.generate import generate
from distillset.teacher.retry import EndpointRefusedKeyError
from distillset.teacher.rows import conversations_from_frame

MAX_FAILURE_RATIO = 0.05


def _reference_answers(pool: pl.DataFrame) -> dict[str, str]:
    """Single-turn questions with a reference answer: what the simulator may know (never sent to a real endpoint)."""
    rows = pool.filter(pl.col("reference").is_not_null() & (pl.col("turns").list.len() == 1))
    return {row["turns"][0]: row["reference"] for row in rows.select("turns", "reference").iter_rows(named=True)}


@dg.asset(
    # teacher_scorecard first: its blocking release gate stops a sensor run before generation is paid for.
    deps=[prompt_pool, dg.AssetKey("teacher_scorecard")],
    partitions_def=teacher_partitions,
    group_name="teacher",
    kinds={"openai", "duckdb"},
    owners=OWNERS,
    description=(
        "The teacher's answers to every prompt in the pool, for one teacher release (the partition). "
        "Calls go through the openai SDK to TEACHER_BASE_URL (or the embedded simulator, marked "
        "`simulated`), bounded, rate-limited and retried; every paid answer lands first in the "
        "append-only ledger keyed by request hash, so a rerun or a crash never pays twice. Best-of-N: "
        "up to TEACHER_SAMPLES_PER_PROMPT samples per prompt, verified as they arrive (math, code, "
        "IFEval), sampling stopped once DISTILLSET_MAX_ANSWERS_PER_PROMPT passed; the kept samples are "
        "this table, every sample with its verdict and why it was dropped is `teacher_samples`. "
        "With TEACHER_BATCH=true the requests go through the provider's Batch API: this step submits and "
        "ends with the batches pending (an observation says so, nothing downstream runs), and "
        "`teacher_batch_sensor` launches the run that ingests them and continues."
    ),
    # Batch mode ends without a materialization while batches are pending: downstream must not run.
    output_required=False,
)
def teacher_generations(
    context: dg.AssetExecutionContext,
    catalog_db: CatalogResource,
    teacher: TeacherResource,
    training_storage: TrainingSetStorageResource,
    quality: QualityResource,
) -> Iterator[dg.MaterializeResult]:
    model = context.partition_key
    settings = teacher.settings_for(model)
    if settings.max_answers_per_prompt > 1:
        # Dedup, quality, judge and training examples key rows by prompt_id: several kept samples
        # of one prompt would collide there. The engine selects k > 1; the flow does not yet.
        raise dg.Failure(
            description=(
                f"nothing was paid: DISTILLSET_MAX_ANSWERS_PER_PROMPT={settings.max_answers_per_prompt} is not "
                "supported by the flow yet (its later stages keep one answer per prompt); set it to 1"
            )
        )
    pool = catalog_db.read("prompt_pool")
    _check_before_paying(pool, model, training_storage)
    with teacher.endpoint(settings, answer_key=_reference_answers(pool)) as endpoint:
        context.log.info(f"teacher {model}: {pool.height} conversations, endpoint {endpoint.description}")
        require_model_served(context, endpoint, settings)
        try:
            if settings.batch:
                batched = generate_with_batches(
                    conversations_from_frame(pool),
                    settings,
                    endpoint,
                    catalog_db.ledger(),
                    run_id=context.run_id,
                    # `distillset run` waits for its batches; a Dagster run must not sit for hours. The
                    # embedded simulator's batches end with this step, so they are waited for too.
                    wait=context.run.tags.get(LAUNCHED_BY_TAG) == "cli" or endpoint.simulated,
                    on_progress=lambda progress: context.log.info(str(progress)),
                    on_batch_progress=lambda progress: context.log.info(str(progress)),
                )
                if batched.pending:
                    _observe_pending(context, model, batched.batches)
                    return
                result = batched.result
            else:
                result = generate(
                    conversations_from_frame(pool),
                    settings,
                    endpoint,
                    catalog_db.ledger(),
                    run_id=context.run_id,
                    on_progress=lambda progress: context.log.info(str(progress)),
                )
        except EndpointRefusedKeyError as exc:
            raise dg.Failure(description=str(exc)) from None
    selection = select_samples(
        result.generations,
        pool,
        policy_of(settings),
        thresholds=quality.threshold_settings(),
        extra_patterns=quality.extra_patterns(),
    )
    generations = selection.generations
    catalog_db.write_partition("teacher_samples", selection.samples, model)
    catalog_db.write_partition("prompt_pass_rates", selection.pass_rates, model)
    catalog_db.write_partition("teacher_generations", generations, model)
    failures = generations.filter(pl.col("status") == "failed")
    if result.stats.budget_exhausted:
        context.log.warning(result.stats.budget_message or "budget exhausted")
    tag_run(
        context,
        {
            TEACHER_TAG: model,
            CALLS_PAID_TAG: result.stats.requests_paid,
            COST_TAG: f"{result.stats.estimated_cost_usd:.4f}",
        },
    )
    yield dg.MaterializeResult(
        metadata={
            **table_metadata(
                generations,
                preview_columns=["prompt_id", "status", "finish_reason", "response", "completion_tokens"],
                table="teacher_generations",
            ),
            **{f"teacher/{k}": v for k, v in result.stats.as_metadata().items()},
            "simulated": dg.MetadataValue.bool(endpoint.simulated),
            "simulated_rows": dg.MetadataValue.int(int(generations["simulated"].sum()) if generations.height else 0),
            "teacher_model": dg.MetadataValue.text(model),
            "sampling": dg.MetadataValue.json(settings.sampling_params()),
            "failed_rows": dg.MetadataValue.int(failures.height),
            "failures_by_error": dg.MetadataValue.md(counts_markdown(value_counts(failures, "error"), "error")),
            "finish_reasons": dg.MetadataValue.md(
                counts_markdown(value_counts(generations, "finish_reason"), "finish_reason")
            ),
            **best_of_n_metadata(selection.summary),
        }
    )


def _observe_pending(context: dg.AssetExecutionContext, model: str, batches) -> None:
    """Say on the asset that its batches are pending (no materialization: downstream waits)."""
    message = (
        f"{batches.pending_batches} provider batches pending ({batches.pending_lines} lines); "
        "teacher_batch_sensor launches the run that ingests them"
    )
    context.log.info(message)
    context.log_event(
        dg.AssetObservation(
            asset_key=context.asset_key,
            partition=model,
            metadata={
                "batch_status": dg.MetadataValue.text("pending"),
                "batch_message": dg.MetadataValue.text(message),
                **{f"batch/{k}": v for k, v in batches.as_metadata().items()},
            },
        )
    )


def _check_before_paying(pool: pl.DataFrame, model: str, training_storage: TrainingSetStorageResource) -> None:
    """The version could be published at all (storage writable, license policy): checked before paying."""
    licenses = dict(pool.select("source_file", "license").unique().iter_rows()) if pool.height else {}
    try:
        check_before_paying(
            training_storage.url,
            training_storage.set_name(model),
            model,
            {str(k): str(v or "unknown") for k, v in licenses.items()},
            policy=training_storage.license_policy(),
            storage_options=training_storage.storage_options(),
        )
    except NotPublishableError as exc:
        raise dg.Failure(description=f"nothing was paid: {exc}") from None


def _failed_calls(catalog_db: CatalogResource, model: str | None) -> tuple[int, int]:
    rows = catalog_db.read("teacher_generations", partition=model)
    return (rows.filter(pl.col("status") == "failed").height if rows.height else 0), rows.height


teacher_generations_failure_ratio = ratio_check(
    asset=teacher_generations,
    name="teacher_generations_failure_ratio",
    description=f"Failed teacher calls stay under {MAX_FAILURE_RATIO:.0%}; failed prompts are retried by the next run.",
    limit=MAX_FAILURE_RATIO,
    counts=_failed_calls,
    labels=("failed", "rows"),
)


teacher_assets = [teacher_generations]
teacher_checks = [teacher_generations_failure_ratio]
