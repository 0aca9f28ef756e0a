"""The teacher stage: every prompt in the pool answered by one teacher release (one partition).

With ``DISTILLSET_SHARDS`` > 1 a partition is one teacher release x one prompt shard
(``orchestration/shards.py``): the step answers only its shard's prompts and replaces only that
slice of the teacher tables, recording it in ``teacher_shards`` (``distillset/prompts/shards.py``).
"""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow.parquet as pq

from assets.checks import ratio_check
from assets.constants import OWNERS
from assets.metadata import best_of_n_metadata, counts_markdown, table_metadata
from assets.partitions import graph_shard_count, teacher_and_shard, teacher_partitions
from assets.prompts import prompt_pool
from assets.resources import (
    PARTITION_COLUMN,
    CatalogResource,
    QualityResource,
    TeacherResource,
    TrainingSetStorageResource,
)
from assets.run_tags import CALLS_PAID_TAG, COST_TAG, LAUNCHED_BY_TAG, TEACHER_TAG, tag_run
from assets.served import require_model_served
from distillset import catalog
from distillset.curation.best_of_n import policy_of
from distillset.prompts.shards import forget_shards, missing_shards, record_shard, recorded_shards, slice_condition
from distillset.publish.preflight import NotPublishableError, check_before_paying
from distillset.teacher.batch.run import generate_with_batches
from distillset.teacher.generate import generate
from distillset.teacher.retry import EndpointRefusedKeyError
from distillset.teacher.rows import Conversation, conversations_from_frame
from distillset.teacher.spool import SCHEMAS, TABLES, SelectionSpool

MAX_FAILURE_RATIO = 0.05


def _reference_answers(catalog_db: CatalogResource) -> dict[str, str]:
    """Single-turn questions with a reference answer: what the simulator may know (never sent to a real endpoint)."""
    rows = catalog_db.query(
        "SELECT turns[1], reference FROM prompt_pool WHERE reference IS NOT NULL AND len(turns) = 1"
    )
    return dict(rows)


_POOL_COLUMNS = ("prompt_id", "system", "turns", "reference", "prompt_text", "metadata_json")


def _export_pool(catalog_db: CatalogResource, folder: Path, shard_where: str = "") -> Path:
    """The pool's columns the teacher needs (of one shard's prompts, ``shard_where``), copied to a
    Parquet file in one short read: the conversations are then streamed from it without holding
    the catalog through the teacher run."""
    present = set(catalog_db.columns("prompt_pool"))
    columns = ", ".join(f'"{c}"' for c in _POOL_COLUMNS if c in present)
    path = folder / "prompt_pool.parquet"
    target = str(path).replace("'", "''")
    where = f" WHERE {shard_where}" if shard_where else ""
    catalog_db.query(f"COPY (SELECT {columns} FROM prompt_pool{where}) TO '{target}' (FORMAT parquet)")
    return path


def _stream_conversations(
    path: Path, chunk_rows: int, ranking: dict[str, tuple[str | None, str | None]]
) -> Iterator[Conversation]:
    """The pool's conversations, ``chunk_rows`` rows at a time; each prompt's text and reference
    wait in ``ranking`` until its samples are selected (the prompts in flight, not the pool)."""
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        frame = pl.from_arrow(batch)
        texts = frame["prompt_text"].to_list()
        references = frame["reference"].to_list()
        for conversation, text, reference in zip(conversations_from_frame(frame), texts, references, strict=True):
            ranking[conversation.prompt_id] = (text, reference)
            yield conversation


def _prompts_of(ranking: dict[str, tuple[str | None, str | None]]):
    def prompts_of(prompt_ids: list[str]) -> pl.DataFrame:
        found = [(pid, *ranking.pop(pid, (None, None))) for pid in prompt_ids]
        return pl.DataFrame(
            found, schema={"prompt_id": pl.String, "prompt_text": pl.String, "reference": pl.String}, orient="row"
        )

    return prompts_of


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
    model, shard, shards = teacher_and_shard(context)
    # One shard's prompts and rows (DISTILLSET_SHARDS > 1), or the whole pool and partition.
    shard_where = slice_condition(shards, shard) if shard is not None else ""
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
    _check_before_paying(catalog_db, model, training_storage)
    conversations = catalog_db.count("prompt_pool", where=shard_where)
    with (
        tempfile.TemporaryDirectory(prefix="teacher-", dir=_spool_root(catalog_db)) as spool_dir,
        teacher.endpoint(settings, answer_key=_reference_answers(catalog_db)) as endpoint,
    ):
        of_shard = f" (shard {shard} of {shards})" if shard is not None else ""
        context.log.info(f"teacher {model}: {conversations} conversations{of_shard}, endpoint {endpoint.description}")
        require_model_served(context, endpoint, settings)
        pool_file = _export_pool(catalog_db, Path(spool_dir), shard_where)
        ranking: dict[str, tuple[str | None, str | None]] = {}
        spool = SelectionSpool(
            Path(spool_dir),
            _prompts_of(ranking),
            policy_of(settings),
            chunk_rows=catalog_db.chunk_rows,
            thresholds=quality.threshold_settings(),
            extra_patterns=quality.extra_patterns(),
        )
        try:
            stream = _stream_conversations(pool_file, catalog_db.chunk_rows, ranking)
            if settings.batch:
                batched = generate_with_batches(
                    stream,
                    settings,
                    endpoint,
                    catalog_db.ledger(),
                    run_id=context.run_id,
                    # `distillset run` waits for its batches; a Dagster run must not sit for hours. The
                    # embedded simulator's batches end with this step, so they are waited for too.
                    wait=context.run.tags.get(LAUNCHED_BY_TAG) == "cli" or endpoint.simulated,
                    on_progress=lambda progress: context.log.info(str(progress)),
                    on_batch_progress=lambda progress: context.log.info(str(progress)),
                    on_rows=spool.add,
                )
                if batched.pending:
                    _observe_pending(context, context.partition_key, batched.batches)
                    return
                result = batched.result
            else:
                result = generate(
                    stream,
                    settings,
                    endpoint,
                    catalog_db.ledger(),
                    run_id=context.run_id,
                    on_progress=lambda progress: context.log.info(str(progress)),
                    on_rows=spool.add,
                )
            summary = spool.close()
        except EndpointRefusedKeyError as exc:
            raise dg.Failure(description=str(exc)) from None
        finally:
            spool.shutdown()
        # One short write: DuckDB reads the spooled parts itself, in order.
        with catalog_db.write_chunks() as writer:
            for table in TABLES:
                if shard is None:
                    writer.replace_partition(table, SCHEMAS[table], column=PARTITION_COLUMN, value=model)
                else:
                    writer.replace_slice(
                        table, SCHEMAS[table], column=PARTITION_COLUMN, value=model, slice_sql=shard_where
                    )
                writer.append_parquet(table, spool.parts[table])
            # In the same transaction: the slice and its record commit together.
            if shard is None:
                forget_shards(writer.con, model)
            else:
                record_shard(writer.con, model, shards, shard, spool.counts.rows, context.run_id)
    counts = spool.counts
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
                counts.head,
                preview_columns=["prompt_id", "status", "finish_reason", "response", "completion_tokens"],
                table="teacher_generations",
            ),
            "dagster/row_count": dg.MetadataValue.int(counts.rows),
            **{f"teacher/{k}": v for k, v in result.stats.as_metadata().items()},
            "simulated": dg.MetadataValue.bool(endpoint.simulated),
            "simulated_rows": dg.MetadataValue.int(counts.simulated),
            "teacher_model": dg.MetadataValue.text(model),
            **({"shard": dg.MetadataValue.text(f"{shard} of {shards}")} if shard is not None else {}),
            "sampling": dg.MetadataValue.json(settings.sampling_params()),
            "failed_rows": dg.MetadataValue.int(counts.failed),
            "failures_by_error": dg.MetadataValue.md(counts_markdown(dict(counts.errors), "error")),
            "finish_reasons": dg.MetadataValue.md(counts_markdown(dict(counts.finish_reasons), "finish_reason")),
            **best_of_n_metadata(summary),
        }
    )


def _observe_pending(context: dg.AssetExecutionContext, partition: str, batches) -> None:
    """Say on the asset that its batches are pending (no materialization: downstream waits)."""
    message = (
        f"{batches.pending_batches} provider batches pending ({batches.pending_lines} lines); "
        "teacher_batch_sensor launches the run that ingests them"
    )
    context.log.info(message)
    context.log_event(
        dg.AssetObservation(
            asset_key=context.asset_key,
            partition=partition,
            metadata={
                "batch_status": dg.MetadataValue.text("pending"),
                "batch_message": dg.MetadataValue.text(message),
                **{f"batch/{k}": v for k, v in batches.as_metadata().items()},
            },
        )
    )


def require_every_shard(context: dg.AssetExecutionContext, catalog_db: CatalogResource, model: str) -> None:
    """Stop a stage that reads ``model``'s teacher rows unless they are one whole sharding: every
    shard of DISTILLSET_SHARDS (or, unsharded, of the last sharding) written (``teacher_shards``)."""
    if not catalog.exists(catalog_db.catalog_path):
        return
    with catalog.connect(catalog_db.catalog_path, read_only=True) as con:
        problem = missing_shards(recorded_shards(con, model), graph_shard_count(context))
    if problem:
        raise dg.Failure(description=f"teacher {model}: {problem}")


def _check_before_paying(catalog_db: CatalogResource, model: str, training_storage: TrainingSetStorageResource) -> None:
    """The version could be published at all (storage writable, license policy): checked before paying."""
    licenses = dict(catalog_db.query("SELECT DISTINCT source_file, license FROM prompt_pool"))
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


def _spool_root(catalog_db: CatalogResource) -> Path:
    # Beside the catalog (the same disk the rows end up on), not a small /tmp.
    root = catalog_db.cache_dir / "spool"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _failed_calls(catalog_db: CatalogResource, model: str | None) -> tuple[int, int]:
    where, params = (f'"{PARTITION_COLUMN}" = ?', [model]) if model is not None else ("", [])
    rows = catalog_db.count("teacher_generations", where=where, params=params)
    failed_where = f"{where} AND status = 'failed'" if where else "status = 'failed'"
    return catalog_db.count("teacher_generations", where=failed_where, params=params), rows


def build_failure_ratio_check(
    asset=teacher_generations, partitions_def: dg.PartitionsDefinition = teacher_partitions
) -> dg.AssetChecksDefinition:
    """The failed-calls check of ``asset`` (teacher_generations, or its teacher x shard variant)."""
    return ratio_check(
        asset=asset,
        name="teacher_generations_failure_ratio",
        description=(
            f"Failed teacher calls stay under {MAX_FAILURE_RATIO:.0%}; failed prompts are retried by the next run."
        ),
        limit=MAX_FAILURE_RATIO,
        counts=_failed_calls,
        labels=("failed", "rows"),
        partitions_def=partitions_def,
    )


teacher_generations_failure_ratio = build_failure_ratio_check()


teacher_assets = [teacher_generations]
teacher_checks = [teacher_generations_failure_ratio]
