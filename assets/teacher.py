"""The teacher stage: every prompt in the pool answered by one teacher release (one partition)."""


import dagster as dg
import polars as pl

from assets.constants import OWNERS
from assets.metadata import counts_markdown, table_metadata, value_counts
from assets.partitions import run_teacher_partition, teacher_partitions
from assets.prompts import prompt_pool
from assets.resources import CatalogResource, TeacherResource
from distillset import catalog
from distillset.teacher.generate import Conversation, generate

MAX_FAILURE_RATIO = 0.05


def _conversations(pool: pl.DataFrame):
    for row in pool.select("prompt_id", "system", "turns").iter_rows(named=True):
        yield Conversation(prompt_id=row["prompt_id"], system=row["system"], turns=list(row["turns"]))


def _reference_answers(pool: pl.DataFrame) -> dict[str, str]:
    """Single-turn questions with a reference answer: what the simulator may know (never sent to a real endpoint)."""
    rows = pool.filter(pl.col("reference").is_not_null() & (pl.col("turns").list.len() == 1))
    return {row["turns"][0]: row["reference"] for row in rows.select("turns", "reference").iter_rows(named=True)}


@dg.asset(
    deps=[prompt_pool],
    partitions_def=teacher_partitions,
    group_name="teacher",
    kinds={"openai", "duckdb"},
    owners=OWNERS,
    description=(
        "The teacher's answers to every prompt in the pool, for one teacher release (the partition). "
        "Calls go through the openai SDK to TEACHER_BASE_URL (or the embedded simulator, marked "
        "`simulated`), bounded, rate-limited and retried; every paid answer lands first in the "
        "append-only ledger keyed by request hash, so a rerun or a crash never pays twice."
    ),
)
def teacher_generations(
    context: dg.AssetExecutionContext, catalog_db: CatalogResource, teacher: TeacherResource
) -> dg.MaterializeResult:
    model = context.partition_key
    settings = teacher.settings_for(model)
    pool = catalog.read_table(catalog_db.catalog_path, "prompt_pool")
    with teacher.endpoint(settings, answer_key=_reference_answers(pool)) as endpoint:
        context.log.info(f"teacher {model}: {pool.height} conversations, endpoint {endpoint.description}")
        result = generate(
            _conversations(pool),
            settings,
            endpoint,
            catalog_db.ledger(),
            run_id=context.run_id,
            on_progress=lambda progress: context.log.info(str(progress)),
        )
    generations = result.generations
    catalog.replace_partition(catalog_db.catalog_path, "teacher_generations", generations, column="teacher_model", value=model)
    failures = generations.filter(pl.col("status") != "ok")
    if result.stats.budget_exhausted:
        context.log.warning(result.stats.budget_message or "budget exhausted")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(generations, preview_columns=["prompt_id", "status", "finish_reason", "response", "completion_tokens"]),
            **{f"teacher/{k}": v for k, v in result.stats.as_metadata().items()},
            "simulated": dg.MetadataValue.bool(endpoint.simulated),
            "teacher_model": dg.MetadataValue.text(model),
            "sampling": dg.MetadataValue.json(settings.sampling_params()),
            "failed_rows": dg.MetadataValue.int(failures.height),
            "failures_by_error": dg.MetadataValue.md(counts_markdown(value_counts(failures, "error"), "error")),
            "finish_reasons": dg.MetadataValue.md(counts_markdown(value_counts(generations, "finish_reason"), "finish_reason")),
        }
    )


@dg.asset_check(
    asset=teacher_generations,
    description=f"Failed teacher calls stay under {MAX_FAILURE_RATIO:.0%}; failed prompts are retried by the next run.",
)
def teacher_generations_failure_ratio(context: dg.AssetCheckExecutionContext, catalog_db: CatalogResource) -> dg.AssetCheckResult:
    model = run_teacher_partition(context)
    rows = catalog.read_table(
        catalog_db.catalog_path, "teacher_generations", "WHERE teacher_model = ?", [model]
    )
    failed = rows.filter(pl.col("status") != "ok").height if rows.height else 0
    ratio = failed / rows.height if rows.height else 1.0
    return dg.AssetCheckResult(
        passed=rows.height > 0 and ratio <= MAX_FAILURE_RATIO,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rows": rows.height, "failed": failed, "ratio": ratio, "limit": MAX_FAILURE_RATIO},
    )


teacher_assets = [teacher_generations]
teacher_checks = [teacher_generations_failure_ratio]
