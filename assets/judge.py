"""The optional LLM-as-judge stage: a judge model rates every kept answer, through the ledger."""

import dagster as dg
import polars as pl

from assets.constants import JUDGE_TAG, OWNERS
from assets.generations import deduplicated_generations
from assets.metadata import counts_markdown, preview_table, table_metadata
from assets.partitions import run_teacher_partition, teacher_partitions
from assets.resources import CatalogResource, JudgeResource, TeacherResource
from distillset.quality.judge import judge_conversations, judge_generation_settings, judge_scores_frame, score_histogram
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
        kept = catalog_db.read("judge_scores", partition=model).height
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
    answers = catalog_db.read("deduplicated_generations", partition=model)
    prompts = catalog_db.read("prompt_pool")
    if answers.height and prompts.height:
        answers = answers.join(prompts.select("prompt_id", "reference"), on="prompt_id", how="left")
    with teacher.endpoint(settings) as endpoint:
        context.log.info(f"judge {judging.model}: {answers.height} answers of {model}, endpoint {endpoint.description}")
        result = generate(
            judge_conversations(answers) if answers.height else [],
            settings,
            endpoint,
            catalog_db.ledger(),
            run_id=context.run_id,
            on_progress=lambda progress: context.log.info(f"judge: {progress}"),
        )
    scores = judge_scores_frame(model, answers, result.generations)
    catalog_db.write_partition("judge_scores", scores, model)
    unjudged = scores.filter(pl.col("judge_score").is_null())
    parse_failures = unjudged.filter(~pl.col("request_hash").is_in(_failed_hashes(result.generations)))
    stats = result.stats
    context.log.info(
        f"judge_scores: {scores.height - unjudged.height} of {scores.height} answers judged; "
        f"{stats.requests_paid} judge calls paid, {stats.cache_hits} reused from the ledger"
    )
    return dg.MaterializeResult(
        metadata={
            **table_metadata(
                scores, preview_columns=["prompt_id", "judge_score", "rationale", "error"], table="judge_scores"
            ),
            **{f"judge/{k}": v for k, v in stats.as_metadata().items()},
            "judge_enabled": dg.MetadataValue.bool(True),
            "judge_model": dg.MetadataValue.text(judging.model),
            "judge_weight": dg.MetadataValue.float(judging.weight),
            "judge_min_score": dg.MetadataValue.text("unset" if judging.min_score is None else str(judging.min_score)),
            "simulated": dg.MetadataValue.bool(endpoint.simulated),
            "mean_judge_score": dg.MetadataValue.float(
                float(scores["judge_score"].mean() or 0.0) if scores.height else 0.0
            ),
            "score_histogram": dg.MetadataValue.md(counts_markdown(score_histogram(scores), "score")),
            "unjudged_rows": dg.MetadataValue.int(unjudged.height),
            "parse_failures": dg.MetadataValue.int(parse_failures.height),
            "parse_failures_preview": preview_table(parse_failures, ["prompt_id", "error"], rows=20),
        }
    )


def _failed_hashes(judgments: pl.DataFrame) -> list[str]:
    if not judgments.height:
        return []
    return judgments.filter(pl.col("status") != "ok")["request_hash"].to_list()


@dg.asset_check(
    partitions_def=teacher_partitions,
    asset=judge_scores,
    description=f"At most {MAX_UNJUDGED_RATIO:.0%} of the answers lack a judgment (failed call or unparseable answer).",
)
def judge_scores_coverage(
    context: dg.AssetCheckExecutionContext, catalog_db: CatalogResource, judge: JudgeResource
) -> dg.AssetCheckResult:
    scores = catalog_db.read("judge_scores", partition=run_teacher_partition(context))
    if not scores.height and not judge.enabled and context.run.tags.get(JUDGE_TAG) != "on":
        return dg.AssetCheckResult(
            passed=True, severity=dg.AssetCheckSeverity.WARN, metadata={"judge": "off: nothing to cover"}
        )
    unjudged = scores.filter(pl.col("judge_score").is_null()).height if scores.height else 0
    ratio = unjudged / scores.height if scores.height else 1.0
    return dg.AssetCheckResult(
        passed=scores.height > 0 and ratio <= MAX_UNJUDGED_RATIO,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"unjudged": unjudged, "rows": scores.height, "ratio": ratio, "limit": MAX_UNJUDGED_RATIO},
    )


judge_assets = [judge_scores]
judge_checks = [judge_scores_coverage]
