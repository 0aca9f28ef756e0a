"""The product: training examples with lineage, their blocking checks, and the published version."""


import dataclasses

import dagster as dg
import polars as pl

from assets.constants import CATALOG_POOL, OWNERS
from assets.generations import deduplicated_generations
from assets.judge import judge_scores
from assets.metadata import counts_markdown, markdown_preview, table_metadata, value_counts
from assets.partitions import run_teacher_partition, teacher_partitions
from assets.quality import quality_scores
from assets.resources import CatalogResource, PromptSourceResource, TeacherResource, TrainingSetStorageResource
from distillset import catalog
from distillset.curation.decontam import BenchmarkIndex, default_benchmarks
from distillset.training.examples import TRAINING_EXAMPLES_COLUMNS, build_training_examples, split_overlap
from distillset.quality.judge import JudgeSettings, judge_enabled
from distillset.publish.licenses import LicensePolicy, license_report
from distillset.curation.near_dedup import NearDupParams
from distillset.publish.protocol import publish_training_set
from distillset.quality.score import QualityGates, QualityThresholds, evaluate_gates, quality_summary
from distillset.training.stage_report import drops_by_reason, stage_counts


def _examples(catalog_db: CatalogResource, model: str) -> pl.DataFrame:
    return catalog.read_table(catalog_db.catalog_path, "training_examples", "WHERE teacher_model = ?", [model])


def training_examples_asset(*, after_judge: bool) -> dg.AssetsDefinition:
    """The ``training_examples`` asset; ``after_judge`` makes the optional ``judge_scores`` its upstream.

    The judge stage is optional (``DISTILLSET_JUDGE_ENABLED``). With it on, the edge makes a run
    that selects both judge first. With it off there is no edge: an upstream that is never
    materialized would make the UI warn before every ``distill_job`` launch. Either way the step
    reads the ``judge_scores`` table, so judgments materialized earlier (``judge_job``) are used.
    """

    @dg.asset(
        name="training_examples",
        deps=[deduplicated_generations, quality_scores, *([judge_scores] if after_judge else [])],
        partitions_def=teacher_partitions,
        group_name="training_set",
        kinds={"duckdb", "polars"},
        owners=OWNERS,
        pool=CATALOG_POOL,
        description=(
            "The examples the next version will publish: deduplicated answers that passed every quality "
            "rule, with lineage (prompt, source file and line, license, request hash, score, cluster) and "
            "a deterministic train/validation split by hash of the example id. When judge_scores has rows "
            "for the teacher, quality_score blends in the judgment (DISTILLSET_JUDGE_WEIGHT) and examples "
            "judged below DISTILLSET_JUDGE_MIN_SCORE are left out."
        ),
    )
    def training_examples(
        context: dg.AssetExecutionContext,
        catalog_db: CatalogResource,
        teacher: TeacherResource,
        training_storage: TrainingSetStorageResource,
    ) -> dg.MaterializeResult:
        model = context.partition_key
        path = catalog_db.catalog_path
        judgments = catalog.read_table(path, "judge_scores", "WHERE teacher_model = ?", [model])
        judge = JudgeSettings.from_env(teacher.settings_for(model))
        examples = build_training_examples(
            catalog.read_table(path, "deduplicated_generations", "WHERE teacher_model = ?", [model]),
            catalog.read_table(path, "quality_scores", "WHERE teacher_model = ?", [model]),
            catalog.read_table(path, "prompt_pool"),
            validation_fraction=training_storage.validation_fraction,
            judgments=judgments,
            judge_weight=judge.weight,
            judge_min_score=judge.min_score,
        )
        catalog.replace_partition(path, "training_examples", examples, column="teacher_model", value=model)
        judged = f", quality_score blends {judgments.height} judgments (weight {judge.weight})" if judgments.height else ""
        context.log.info(f"training_examples: {examples.height} examples {value_counts(examples, 'split')}{judged}")
        return dg.MaterializeResult(
            metadata={
                **table_metadata(examples, preview_columns=["example_id", "split", "quality_score", "messages_json", "source_file", "source_line"]),
                "rows_by_split": dg.MetadataValue.md(counts_markdown(value_counts(examples, "split"), "split")),
                "judge_scores_used": dg.MetadataValue.bool(judgments.height > 0),
                "judge_weight": dg.MetadataValue.float(judge.weight if judgments.height else 0.0),
            }
        )

    return training_examples


training_examples = training_examples_asset(after_judge=judge_enabled())


@dg.asset_check(asset=training_examples, blocking=True, description="Train and validation share no example, prompt or conversation.")
def training_examples_split_disjoint(context: dg.AssetCheckExecutionContext, catalog_db: CatalogResource) -> dg.AssetCheckResult:
    overlap = split_overlap(_examples(catalog_db, run_teacher_partition(context)))
    return dg.AssetCheckResult(passed=not any(overlap.values()), metadata={f"shared_{k}s": v for k, v in overlap.items()})


@dg.asset_check(asset=training_examples, blocking=True, description="There is at least one example, and the columns are the documented ones.")
def training_examples_schema(context: dg.AssetCheckExecutionContext, catalog_db: CatalogResource) -> dg.AssetCheckResult:
    examples = _examples(catalog_db, run_teacher_partition(context))
    return dg.AssetCheckResult(
        passed=examples.height > 0 and examples.columns == TRAINING_EXAMPLES_COLUMNS,
        metadata={"rows": examples.height, "columns": ", ".join(examples.columns)},
    )


@dg.asset_check(
    asset=training_examples,
    blocking=True,
    description="No example (prompt or answer) shares a long n-gram with a benchmark test set.",
)
def training_examples_not_contaminated(
    context: dg.AssetCheckExecutionContext, catalog_db: CatalogResource, prompt_source: PromptSourceResource
) -> dg.AssetCheckResult:
    examples = _examples(catalog_db, run_teacher_partition(context))
    index = BenchmarkIndex.build(default_benchmarks(prompt_source.extra_benchmarks), cache_dir=catalog_db.cache_dir / "decontam")
    hits = index.find(examples["example_id"].to_list(), examples["messages_json"].to_list()) if examples.height else pl.DataFrame()
    return dg.AssetCheckResult(
        passed=hits.height == 0,
        metadata={"contaminated_examples": hits.height, "hits": dg.MetadataValue.md(markdown_preview(hits, rows=20))},
    )


@dg.asset(
    deps=[training_examples],
    partitions_def=teacher_partitions,
    group_name="training_set",
    kinds={"s3", "parquet", "json"},
    owners=OWNERS,
    description=(
        "A published, immutable training set version under DISTILLSET_STORAGE_URL: train.jsonl and "
        "validation.jsonl (OpenAI chat format), data.parquet with lineage columns, manifest.json and "
        "a dataset card. Unchanged content publishes no new version."
    ),
)
def training_set(
    context: dg.AssetExecutionContext,
    catalog_db: CatalogResource,
    teacher: TeacherResource,
    training_storage: TrainingSetStorageResource,
) -> dg.MaterializeResult:
    model = context.partition_key
    path = catalog_db.catalog_path
    examples = _examples(catalog_db, model)
    scores = catalog.read_table(path, "quality_scores", "WHERE teacher_model = ?", [model])
    simulated = bool(examples["simulated"].any()) if examples.height else teacher.base_url is None
    policy = LicensePolicy.from_env()
    licenses = license_report(dict(zip(examples["source_file"].to_list(), examples["license"].to_list())), model, policy)
    if licenses.blocking:
        raise dg.Failure(
            description="license policy blocks publication: " + "; ".join(licenses.blocking),
            metadata={"warnings": "; ".join(licenses.warnings)},
        )
    gate_results = evaluate_gates(scores, QualityGates.from_env())
    overlap = split_overlap(examples)
    settings = teacher.settings_for(model)
    name = training_storage.set_name(model)
    result = publish_training_set(
        training_storage.url,
        name,
        examples,
        formats=training_storage.format_list(),
        license_policy=policy,
        manifest_fields={
            "teacher_model": model,
            "simulated": simulated,
            "sampling": settings.sampling_params(),
            "counts": stage_counts(path, model),
            "drops_by_reason": drops_by_reason(path, model),
            "checks": {
                **{g.name: {"passed": g.passed, "value": g.value, "limit": g.limit} for g in gate_results},
                "split_disjoint": {"passed": not any(overlap.values()), "value": overlap},
            },
            "config": {
                "sampling": settings.sampling_params(),
                "system_prompt": settings.system_prompt,
                "quality_thresholds": dataclasses.asdict(QualityThresholds.from_env()),
                "quality_gates": dataclasses.asdict(QualityGates.from_env()),
                "near_duplicates": dataclasses.asdict(NearDupParams()),
                "validation_fraction": training_storage.validation_fraction,
                "formats": training_storage.format_list(),
                "judge": _judge_config(catalog_db, settings),
            },
            "dagster_run_id": context.run_id,
        },
        card_context={"quality": quality_summary(scores)},
    )
    verb = "published" if result.published else "unchanged, kept"
    context.log.info(f"{verb} {name} {result.version} at {result.path}")
    return dg.MaterializeResult(
        metadata={
            "version": dg.MetadataValue.text(result.version),
            "path": dg.MetadataValue.path(result.path),
            "published_new_version": dg.MetadataValue.bool(result.published),
            "reason": dg.MetadataValue.text(result.reason),
            "content_hash": dg.MetadataValue.text(result.content_hash),
            "parent_version": dg.MetadataValue.text(result.parent_version or ""),
            "training_set_name": dg.MetadataValue.text(name),
            "simulated": dg.MetadataValue.bool(simulated),
            "dagster/row_count": dg.MetadataValue.int(examples.height),
            "rows_by_split": dg.MetadataValue.md(counts_markdown(value_counts(examples, "split"), "split")),
            "files": dg.MetadataValue.md(
                counts_markdown({f: int(info["size"]) for f, info in result.files.items()}, "file (bytes)")
            ),
            "license_warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in licenses.warnings) or "_none_"),
        }
    )


def _judge_config(catalog_db: CatalogResource, teacher_settings) -> dict | None:
    """The judge's part of the version's config, when judgments exist for this teacher (never the key)."""
    judged = catalog.read_table(
        catalog_db.catalog_path, "judge_scores", "WHERE teacher_model = ? LIMIT 1", [teacher_settings.model]
    )
    if judged.is_empty():
        return None
    judge = JudgeSettings.from_env(teacher_settings)
    return {"model": judge.model, "weight": judge.weight, "min_score": judge.min_score}


training_set_assets = [training_examples, training_set]
training_set_checks = [training_examples_split_disjoint, training_examples_schema, training_examples_not_contaminated]
