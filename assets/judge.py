"""The optional LLM-as-judge stage: a judge model rates every kept answer, through the ledger."""

import tempfile
from pathlib import Path

import dagster as dg

from assets.constants import JUDGE_TAG, OWNERS
from assets.generations import deduplicated_generations
from assets.metadata import counts_markdown, preview_table, table_metadata
from assets.partitions import run_teacher_partition, teacher_partitions
from assets.resources import PARTITION_COLUMN, CatalogResource, JudgeResource, TeacherResource
from distillset.quality.judge import JUDGE_SCORES_SCHEMA, judge_generation_settings
from distillset.quality.judge_stream import JudgmentSpool, export_answers
from distillset.teacher.generate import generate

# Above this share of unparseable or failed judgments the judge model or its prompt is broken.
MAX_UNJUDGED_RATIO = 0.2


@dg.asset(
    deps=[deduplicated_generations],
    partitions_def=teacher_partitions,
    # Its own group and tag: "Materialize all" includes it, and the graph shows it apart as the paid,
    # optional stage (off unless enabled: it then records that it judged nothing).
    group_name="judge_optional",
    tags={"distillset/optional": "paid"},
    kinds={"openai", "duckdb"},
    owners=OWNERS,
    # Not in the catalog pool, like the teacher stage: a judge run is long, and it writes the
    # catalog only once at the end (that write waits for DuckDB's lock).
    description=(
        "Optional LLM-as-judge: a judge model (DISTILLSET_JUDGE_MODEL, by default the teacher on its "
        "endpoint) rates every deduplicated answer from 1 to 10 on a documented rubric (helpfulness, "
        "correctness, instruction following, clarity) with a short rationale. Judgments go through the "
        "teacher ledger (never paid twice); when present, training_examples blends them into "
        "quality_score (DISTILLSET_JUDGE_WEIGHT). OPTIONAL AND PAID: it calls the judge only when the judge "
        "resource is enabled (DISTILLSET_JUDGE_ENABLED, or `enabled: true` in the launchpad) or in judge_job; "
        "otherwise it judges nothing and keeps earlier judgments."
    ),
)
def judge_scores(
    context: dg.AssetExecutionContext, catalog_db: CatalogResource, teacher: TeacherResource, judge: JudgeResource
) -> dg.MaterializeResult:
    model = context.partition_key
    if not judge.enabled and context.run.tags.get(JUDGE_TAG) != "on":
        kept = catalog_db.count("judge_scores", where="teacher_model = ?", params=[model])
        context.log.info(
            f"judge_scores: the judge is off (DISTILLSET_JUDGE_ENABLED); {kept} earlier judgments kept, none paid"
        )
        return dg.MaterializeResult(
            metadata={
                "judge_enabled": dg.MetadataValue.bool(False),
                "judgments_kept": dg.MetadataValue.int(kept),
                "judge/requests_paid": dg.MetadataValue.int(0),
            }
        )
    teacher_settings = teacher.settings_for(model)
    judging = judge.settings().for_teacher(teacher_settings)
    settings = judge_generation_settings(judging, teacher_settings)
    # Streamed: the answers are copied out in one short read and judged chunk by chunk; the parsed
    # judgments are spooled to Parquet parts the catalog takes in one short write at the end.
    with tempfile.TemporaryDirectory(prefix="judge-", dir=_spool_root(catalog_db)) as spool_dir:
        export_answers(catalog_db.catalog_path, Path(spool_dir), model)
        spool = JudgmentSpool(Path(spool_dir), model, chunk_rows=catalog_db.chunk_rows)
        with teacher.endpoint(settings) as endpoint:
            context.log.info(
                f"judge {judging.model}: {spool.answers()} answers of {model}, endpoint {endpoint.description}"
            )
            result = generate(
                spool.conversations(),
                settings,
                endpoint,
                catalog_db.ledger(),
                run_id=context.run_id,
                on_progress=lambda progress: context.log.info(f"judge: {progress}"),
                on_rows=spool.add,
            )
        with catalog_db.write_chunks() as writer:
            writer.replace_partition("judge_scores", JUDGE_SCORES_SCHEMA, column=PARTITION_COLUMN, value=model)
            writer.append_parquet("judge_scores", spool.parts)
    mean = catalog_db.query("SELECT avg(judge_score) FROM judge_scores WHERE teacher_model = ?", [model])[0][0]
    stats = result.stats
    context.log.info(
        f"judge_scores: {spool.rows - spool.unjudged} of {spool.rows} answers judged; "
        f"{stats.requests_paid} judge calls paid, {stats.cache_hits} reused from the ledger"
    )
    return dg.MaterializeResult(
        metadata={
            **table_metadata(
                spool.head, preview_columns=["prompt_id", "judge_score", "rationale", "error"], table="judge_scores"
            ),
            "dagster/row_count": dg.MetadataValue.int(spool.rows),
            **{f"judge/{k}": v for k, v in stats.as_metadata().items()},
            "judge_enabled": dg.MetadataValue.bool(True),
            "judge_model": dg.MetadataValue.text(judging.model),
            "judge_weight": dg.MetadataValue.float(judging.weight),
            "judge_min_score": dg.MetadataValue.text("unset" if judging.min_score is None else str(judging.min_score)),
            "simulated": dg.MetadataValue.bool(endpoint.simulated),
            "mean_judge_score": dg.MetadataValue.float(float(mean or 0.0)),
            "score_histogram": dg.MetadataValue.md(counts_markdown(spool.histogram, "score")),
            "unjudged_rows": dg.MetadataValue.int(spool.unjudged),
            "parse_failures": dg.MetadataValue.int(spool.parse_failures),
            "parse_failures_preview": preview_table(spool.failure_head, ["prompt_id", "error"], rows=20),
        }
    )


def _spool_root(catalog_db: CatalogResource) -> Path:
    # Beside the catalog (the same disk the rows end up on), not a small /tmp.
    root = catalog_db.cache_dir / "spool"
    root.mkdir(parents=True, exist_ok=True)
    return root


@dg.asset_check(
    partitions_def=teacher_partitions,
    asset=judge_scores,
    description=f"At most {MAX_UNJUDGED_RATIO:.0%} of the answers lack a judgment (failed call or unparseable answer).",
)
def judge_scores_coverage(
    context: dg.AssetCheckExecutionContext, catalog_db: CatalogResource, judge: JudgeResource
) -> dg.AssetCheckResult:
    model = run_teacher_partition(context)
    rows = catalog_db.count("judge_scores", where="teacher_model = ?", params=[model])
    if not rows and not judge.enabled and context.run.tags.get(JUDGE_TAG) != "on":
        return dg.AssetCheckResult(
            passed=True, severity=dg.AssetCheckSeverity.WARN, metadata={"judge": "off: nothing to cover"}
        )
    unjudged = catalog_db.count("judge_scores", where="teacher_model = ? AND judge_score IS NULL", params=[model])
    ratio = unjudged / rows if rows else 1.0
    return dg.AssetCheckResult(
        passed=rows > 0 and ratio <= MAX_UNJUDGED_RATIO,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"unjudged": unjudged, "rows": rows, "ratio": ratio, "limit": MAX_UNJUDGED_RATIO},
    )


judge_assets = [judge_scores]
judge_checks = [judge_scores_coverage]
