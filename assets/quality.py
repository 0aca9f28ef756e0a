"""Quality scoring in DuckDB (the SQL under `sql/quality/`) and the gates that protect publication."""

import dagster as dg

from assets.constants import CATALOG_POOL, OWNERS
from assets.generations import deduplicated_generations
from assets.metadata import counts_markdown, table_metadata
from assets.partitions import run_teacher_partition, teacher_partitions
from assets.resources import CatalogResource, QualityResource
from distillset.quality.aggregates import partition_aggregates
from distillset.quality.gates import GateResult, gates_of
from distillset.quality.partition import score_partition
from distillset.quality.summary import summary_of


@dg.asset(
    deps=[deduplicated_generations],
    partitions_def=teacher_partitions,
    group_name="curation",
    kinds={"duckdb", "sql"},
    owners=OWNERS,
    pool=CATALOG_POOL,
    description=(
        "Per-answer quality signals computed in DuckDB by the SQL files under sql/quality/ "
        "(truncation, empty or too short answers, refusals in English and Chinese, repetition, "
        "language mismatch, wrong or missing GSM8K final answers checked by distillset.verify, leaks, broken "
        "formatting), a graded score, `passed` and the list of failed rules."
    ),
)
def quality_scores(
    context: dg.AssetExecutionContext, catalog_db: CatalogResource, quality: QualityResource
) -> dg.MaterializeResult:
    model = context.partition_key
    # Streamed: the answers are copied out in one short read, scored chunk by chunk into Parquet
    # parts and written in one short write; the figures are SQL aggregates over the written
    # partition, never the rows in Python.
    scored = score_partition(
        catalog_db.catalog_path,
        model,
        chunk_rows=catalog_db.chunk_rows,
        thresholds=quality.threshold_settings(),
        extra_patterns=quality.extra_patterns(),
        spool_root=catalog_db.cache_dir / "spool",
    )
    aggregates = partition_aggregates(catalog_db.catalog_path, model)
    summary = summary_of(aggregates)
    failed_counts = {rule: int(n) for rule, n in summary["failed_rules"].items() if n}
    context.log.info(
        f"quality_scores: {summary['passed']} of {summary['rows']} answers pass; failed rules {failed_counts}"
    )
    return dg.MaterializeResult(
        metadata={
            **table_metadata(
                scored.head, preview_columns=["prompt_id", "score", "passed", "failed_rules"], table="quality_scores"
            ),
            "dagster/row_count": dg.MetadataValue.int(aggregates.rows),
            "passed_rows": dg.MetadataValue.int(aggregates.passed),
            "failed_rows": dg.MetadataValue.int(aggregates.rows - aggregates.passed),
            "failed_by_rule": dg.MetadataValue.md(counts_markdown(failed_counts, "rule")),
            **_plottable(summary, gates_of(aggregates, quality.gate_settings())),
            "summary": dg.MetadataValue.json(summary),
        }
    )


def _plottable(summary: dict, gates: list[GateResult]) -> dict[str, dg.MetadataValue]:
    """The figures the UI plots over materializations: pass rate, mean score, each gate's value and limit.

    A figure with nothing to measure (no rows, no verifiable row) is left out rather than shown as 0.
    """
    figures: dict[str, dg.MetadataValue] = {}
    for name in ("pass_rate", "mean_score"):
        if summary[name] is not None:
            figures[name] = dg.MetadataValue.float(float(summary[name]))
    if summary["verifiable"]["accuracy"] is not None:
        figures["verifiable_accuracy"] = dg.MetadataValue.float(float(summary["verifiable"]["accuracy"]))
    figures["verifiable_checked"] = dg.MetadataValue.int(int(summary["verifiable"]["checked"]))
    for gate in gates:
        if gate.value is not None:
            figures[f"gate/{gate.name}"] = dg.MetadataValue.float(float(gate.value))
        figures[f"gate/{gate.name}/limit"] = dg.MetadataValue.float(float(gate.limit))
        figures[f"gate/{gate.name}/passed"] = dg.MetadataValue.bool(gate.passed)
    return figures


@dg.asset_check(
    partitions_def=teacher_partitions,
    asset=quality_scores,
    blocking=True,
    description=(
        "The quality gates: refusal rate, truncation rate, verifiable-answer accuracy and pass rate "
        "within their limits (DISTILLSET_GATE_* variables). Blocking: a broken gate stops the "
        "training set from publishing."
    ),
)
def quality_gates(
    context: dg.AssetCheckExecutionContext, catalog_db: CatalogResource, quality: QualityResource
) -> dg.AssetCheckResult:
    aggregates = partition_aggregates(catalog_db.catalog_path, run_teacher_partition(context))
    results = gates_of(aggregates, quality.gate_settings())
    broken = [r for r in results if not r.passed]
    metadata: dict[str, object] = {
        f"{r.name}": dg.MetadataValue.text(
            f"{'ok' if r.passed else 'BROKEN'}: {r.value if r.value is not None else 'n/a'} (limit {r.limit})"
        )
        for r in results
    }
    if broken:
        metadata["why"] = dg.MetadataValue.md("\n".join(f"- **{r.name}**: {r.description}" for r in broken))
    return dg.AssetCheckResult(passed=not broken and aggregates.rows > 0, metadata=metadata)


quality_assets = [quality_scores]
quality_checks = [quality_gates]
