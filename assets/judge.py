"""The optional LLM-as-judge stage: a judge model rates every kept answer, through the ledger."""


import dagster as dg
import polars as pl

from assets.constants import OWNERS
from assets.generations import deduplicated_generations
from assets.metadata import counts_markdown, markdown_preview, table_metadata
from assets.partitions import run_teacher_partition, teacher_partitions
from assets.resources import CatalogResource, TeacherResource
from distillset import catalog
from distillset.quality.judge import JudgeSettings, judge_conversations, judge_scores_frame, score_histogram
from distillset.teacher.generate import generate

# Above this share of unparseable or failed judgments the judge model or its prompt is broken.
MAX_UNJUDGED_RATIO = 0.2


@dg.asset(
    deps=[deduplicated_generations],
    partitions_def=teacher_partitions,
    group_name="curation",
    kinds={"openai", "duckdb"},
    owners=OWNERS,
    # Not in the catalog pool, like the teacher stage: a judge run is long, and it writes the
    # catalog only once at the end (that write waits for DuckDB's lock).
    description=(
        "Optional LLM-as-judge: a judge model (DISTILLSET_JUDGE_MODEL, by default the teacher on its "
        "endpoint) rates every deduplicated answer from 1 to 10 on a documented rubric (helpfulness, "
        "correctness, instruction following, clarity) with a short rationale. Judgments go through the "
        "teacher ledger (never paid twice); when present, training_examples blends them into "
        "quality_score (DISTILLSET_JUDGE_WEIGHT). Not in distill_job unless DISTILLSET_JUDGE_ENABLED; "
        "run judge_job or materialize it here."
    ),
)
def judge_scores(context: dg.AssetExecutionContext, catalog_db: CatalogResource, teacher: TeacherResource) -> dg.MaterializeResult:
    model = context.partition_key
    path = catalog_db.catalog_path
    teacher_settings = teacher.settings_for(model)
    judge = JudgeSettings.from_env(teacher_settings)
    settings = judge.generation_settings(teacher_settings)
    answers = catalog.read_table(path, "deduplicated_generations", "WHERE teacher_model = ?", [model])
    prompts = catalog.read_table(path, "prompt_pool")
    if answers.height and prompts.height:
        answers = answers.join(prompts.select("prompt_id", "reference"), on="prompt_id", how="left")
    with teacher.endpoint(settings) as endpoint:
        context.log.info(f"judge {judge.model}: {answers.height} answers of {model}, endpoint {endpoint.description}")
        result = generate(
            judge_conversations(answers) if answers.height else [],
            settings,
            endpoint,
            catalog_db.ledger(),
            run_id=context.run_id,
            on_progress=lambda progress: context.log.info(f"judge: {progress}"),
        )
    scores = judge_scores_frame(model, answers, result.generations)
    catalog.replace_partition(path, "judge_scores", scores, column="teacher_model", value=model)
    unjudged = scores.filter(pl.col("judge_score").is_null())
    parse_failures = unjudged.filter(~pl.col("request_hash").is_in(_failed_hashes(result.generations)))
    stats = result.stats
    context.log.info(
        f"judge_scores: {scores.height - unjudged.height} of {scores.height} answers judged; "
        f"{stats.requests_paid} judge calls paid, {stats.cache_hits} reused from the ledger"
    )
    return dg.MaterializeResult(
        metadata={
            **table_metadata(scores, preview_columns=["prompt_id", "judge_score", "rationale", "error"]),
            **{f"judge/{k}": v for k, v in stats.as_metadata().items()},
            "judge_model": dg.MetadataValue.text(judge.model),
            "judge_weight": dg.MetadataValue.float(judge.weight),
            "judge_min_score": dg.MetadataValue.text("unset" if judge.min_score is None else str(judge.min_score)),
            "simulated": dg.MetadataValue.bool(endpoint.simulated),
            "mean_judge_score": dg.MetadataValue.float(float(scores["judge_score"].mean() or 0.0) if scores.height else 0.0),
            "score_histogram": dg.MetadataValue.md(counts_markdown(score_histogram(scores), "score")),
            "unjudged_rows": dg.MetadataValue.int(unjudged.height),
            "parse_failures": dg.MetadataValue.int(parse_failures.height),
            "parse_failures_preview": dg.MetadataValue.md(markdown_preview(parse_failures, ["prompt_id", "error"], rows=20)),
        }
    )


def _failed_hashes(judgments: pl.DataFrame) -> list[str]:
    if not judgments.height:
        return []
    return judgments.filter(pl.col("status") != "ok")["request_hash"].to_list()


@dg.asset_check(
    asset=judge_scores,
    description=f"At most {MAX_UNJUDGED_RATIO:.0%} of the answers lack a judgment (failed call or unparseable answer).",
)
def judge_scores_coverage(context: dg.AssetCheckExecutionContext, catalog_db: CatalogResource) -> dg.AssetCheckResult:
    model = run_teacher_partition(context)
    scores = catalog.read_table(catalog_db.catalog_path, "judge_scores", "WHERE teacher_model = ?", [model])
    unjudged = scores.filter(pl.col("judge_score").is_null()).height if scores.height else 0
    ratio = unjudged / scores.height if scores.height else 1.0
    return dg.AssetCheckResult(
        passed=scores.height > 0 and ratio <= MAX_UNJUDGED_RATIO,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rows": scores.height, "unjudged": unjudged, "ratio": ratio, "limit": MAX_UNJUDGED_RATIO},
    )


judge_assets = [judge_scores]
judge_checks = [judge_scores_coverage]
