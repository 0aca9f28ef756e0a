"""Quality scoring in DuckDB (the SQL under `sql/quality/`) and the gates that protect publication."""

import dagster as dg
import polars as pl

from assets.constants import CATALOG_POOL, OWNERS
from assets.generations import deduplicated_generations
from assets.metadata import counts_markdown, table_metadata
from assets.partitions import run_teacher_partition, teacher_partitions
from assets.resources import CatalogResource, QualityResource
from distillset.quality.gates import GateResult, evaluate_gates
from distillset.quality.score import score_frame
from distillset.quality.summary import quality_summary


def scoring_input(generations: pl.DataFrame, prompts: pl.DataFrame) -> pl.DataFrame:
    """The rows to score: one per kept generation, with its prompt text and reference answer."""
    return generations.select("prompt_id", "response", "finish_reason").join(
        prompts.select("prompt_id", "prompt_text", "reference"), on="prompt_id", how="left"
    )


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
    generations = catalog_db.read("deduplicated_generations", partition=model)
    prompts = catalog_db.read("prompt_pool")
    scores = score_frame(
        scoring_input(generations, prompts),
        thresholds=quality.threshold_settings(),
        key_column="prompt_id",
        extra_patterns=quality.extra_patterns(),
    )
    scores = scores.with_columns(pl.lit(model).alias("teacher_model")).select(
        "teacher_model", pl.exclude("teacher_model")
    )
    catalog_db.write_partition("quality_scores", scores, model)
    summary = quality_summary(scores)
    failed_counts = {rule: int(n) for rule, n in summary["failed_rules"].items() if n}
    context.log.info(
        f"quality_scores: {summary['passed']} of {summary['rows']} answers pass; failed rules {failed_counts}"
    )
    return dg.MaterializeResult(
        metadata={
            **table_metadata(
                scores, preview_columns=["prompt_id", "score", "passed", "failed_rules"], table="quality_scores"
            ),
            "passed_rows": dg.MetadataValue.int(int(scores["passed"].sum()) if scores.height else 0),
            "failed_rows": dg.MetadataValue.int(int((~scores["passed"]).sum()) if scores.height else 0),
            "failed_by_rule": dg.MetadataValue.md(counts_markdown(failed_counts, "rule")),
            **_plottable(summary, evaluate_gates(scores, quality.gate_settings())),
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
    scores = catalog_db.read("quality_scores", partition=run_teacher_partition(context))
    results = evaluate_gates(scores, quality.gate_settings())
    broken = [r for r in results if not r.passed]
    metadata: dict[str, object] = {
        f"{r.name}": dg.MetadataValue.text(
            f"{'ok' if r.passed else 'BROKEN'}: {r.value if r.value is not None else 'n/a'} (limit {r.limit})"
        )
        for r in results
    }
    if broken:
        metadata["why"] = dg.MetadataValue.md("\n".join(f"- **{r.name}**: {r.description}" for r in broken))
    return dg.AssetCheckResult(passed=not broken and scores.height > 0, metadata=metadata)


quality_assets = [quality_scores]
quality_checks = [quality_gates]
