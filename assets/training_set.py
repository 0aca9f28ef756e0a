"""The product: training examples with lineage, their blocking checks, and the published version."""

import dagster as dg

from assets.constants import CATALOG_POOL, OWNERS
from assets.generations import deduplicated_generations
from assets.judge import judge_scores
from assets.lineage import lineage_metadata
from assets.metadata import counts_markdown, preview_table, table_metadata
from assets.partitions import run_teacher_partition, teacher_partitions
from assets.quality import quality_scores
from assets.resources import (
    PARTITION_COLUMN,
    CatalogResource,
    JudgeResource,
    PromptSourceResource,
    QualityResource,
    TeacherResource,
    TrainingSetStorageResource,
)
from assets.run_tags import VERSION_TAG, tag_run
from distillset import catalog
from distillset.curation.decontam import BenchmarkIndex, default_benchmarks
from distillset.publish.partial import partial_decision
from distillset.publish.protocol import LicenseBlockedError, publish_training_set
from distillset.publish.reader import verify_version
from distillset.publish.source import CatalogSource
from distillset.scorecards.cards import scorecard_lines
from distillset.scorecards.store import TEACHER, ScorecardStore
from distillset.settings.paths import SCORECARDS_FILE
from distillset.teacher.batch.share import batch_share
from distillset.training.examples import TRAINING_EXAMPLES_COLUMNS
from distillset.training.manifest import version_manifest
from distillset.training.partition import build_examples_in_catalog, contaminated_examples, examples_split_overlap


def _batch_share(catalog_db: CatalogResource, model: str, settings) -> dict:
    """How many teacher calls behind the published examples came through provider batches (every turn).

    The request keys of every turn of the kept answers come from one DuckDB query, streamed.
    """
    if not catalog_db.columns("training_examples") or "request_hashes" not in catalog_db.columns("teacher_generations"):
        return batch_share(catalog_db.ledger(), [], settings)
    hashes = (
        row[0]
        for row in catalog.iter_rows(
            catalog_db.catalog_path,
            "SELECT DISTINCT h FROM (SELECT unnest(g.request_hashes) AS h FROM teacher_generations g "
            "WHERE g.teacher_model = ? AND g.request_hash IN "
            "(SELECT request_hash FROM training_examples WHERE teacher_model = ?)) WHERE h IS NOT NULL",
            [model, model],
        )
    )
    return batch_share(catalog_db.ledger(), hashes, settings, distinct=True)


@dg.asset(
    deps=[deduplicated_generations, quality_scores, judge_scores],
    partitions_def=teacher_partitions,
    group_name="training_set",
    kinds={"duckdb", "polars"},
    owners=OWNERS,
    pool=CATALOG_POOL,
    metadata=lineage_metadata(),
    description=(
        "The examples the next version will publish: deduplicated answers that passed every quality "
        "rule, with lineage (prompt, source file and line, license, request hash, score, cluster) and "
        "a deterministic train/validation split by hash of the prompt's normalized text (a prompt stays on its side "
        "across versions, teachers and sampling), each row's teacher origin, served model and simulated flag. "
        "When judge_scores has rows "
        "for the teacher, quality_score blends in the judgment (DISTILLSET_JUDGE_WEIGHT) and examples "
        "judged below DISTILLSET_JUDGE_MIN_SCORE are left out. Column lineage shows where each column "
        "comes from; `distillset explain <example_id>` follows one row back to its source line, prompt and "
        "teacher call."
    ),
)
def training_examples(
    context: dg.AssetExecutionContext,
    catalog_db: CatalogResource,
    judge: JudgeResource,
    training_storage: TrainingSetStorageResource,
) -> dg.MaterializeResult:
    model = context.partition_key
    judging = judge.settings()
    # Streamed: DuckDB joins the partition's tables; chunks of DISTILLSET_CHUNK_ROWS rows are finished
    # (example id, split) and appended in one transaction.
    with catalog_db.write_chunks() as writer:
        written = build_examples_in_catalog(
            writer,
            model,
            chunk_rows=catalog_db.chunk_rows,
            validation_fraction=training_storage.validation_fraction,
            judge_weight=judging.weight,
            judge_min_score=judging.min_score,
            run_id=context.run_id,
        )
    judged = (
        f", quality_score blends {written.judgments} judgments (weight {judging.weight})" if written.judgments else ""
    )
    context.log.info(f"training_examples: {written.rows} examples {written.splits}{judged}")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(
                written.head,
                preview_columns=[
                    "example_id",
                    "split",
                    "quality_score",
                    "messages_json",
                    "source_file",
                    "source_line",
                    "request_hash",
                ],
                table="training_examples",
            ),
            "dagster/row_count": dg.MetadataValue.int(written.rows),
            **lineage_metadata(),
            "rows_by_split": dg.MetadataValue.md(counts_markdown(written.splits, "split")),
            "judge_scores_used": dg.MetadataValue.bool(written.judgments > 0),
            "judge_weight": dg.MetadataValue.float(judging.weight if written.judgments else 0.0),
        }
    )


@dg.asset_check(
    partitions_def=teacher_partitions,
    asset=training_examples,
    blocking=True,
    description="Train and validation share no example, prompt or conversation.",
)
def training_examples_split_disjoint(
    context: dg.AssetCheckExecutionContext, catalog_db: CatalogResource
) -> dg.AssetCheckResult:
    overlap = examples_split_overlap(catalog_db.catalog_path, run_teacher_partition(context))
    return dg.AssetCheckResult(
        passed=not any(overlap.values()), metadata={f"shared_{k}s": v for k, v in overlap.items()}
    )


@dg.asset_check(
    partitions_def=teacher_partitions,
    asset=training_examples,
    blocking=True,
    description="There is at least one example, and the columns are the documented ones.",
)
def training_examples_schema(
    context: dg.AssetCheckExecutionContext, catalog_db: CatalogResource
) -> dg.AssetCheckResult:
    rows = catalog_db.count("training_examples", where="teacher_model = ?", params=[run_teacher_partition(context)])
    columns = catalog_db.columns("training_examples")
    return dg.AssetCheckResult(
        passed=rows > 0 and columns == TRAINING_EXAMPLES_COLUMNS,
        metadata={"rows": rows, "columns": ", ".join(columns)},
    )


@dg.asset_check(
    partitions_def=teacher_partitions,
    asset=training_examples,
    blocking=True,
    description="No example (prompt or answer) shares a long n-gram with a benchmark test set.",
)
def training_examples_not_contaminated(
    context: dg.AssetCheckExecutionContext, catalog_db: CatalogResource, prompt_source: PromptSourceResource
) -> dg.AssetCheckResult:
    index = BenchmarkIndex.build(
        default_benchmarks(prompt_source.extra_benchmarks), cache_dir=catalog_db.cache_dir / "decontam"
    )
    hits = contaminated_examples(
        catalog_db.catalog_path, run_teacher_partition(context), index, chunk_rows=catalog_db.chunk_rows
    )
    return dg.AssetCheckResult(
        passed=hits.height == 0,
        metadata={"contaminated_examples": hits.height, "hits": preview_table(hits, rows=20)},
    )


@dg.asset(
    deps=[training_examples],
    partitions_def=teacher_partitions,
    group_name="training_set",
    # build_definitions sets "folder" for a folder DISTILLSET_STORAGE_URL (orchestration/asset_specs.py).
    kinds={"s3", "parquet", "json"},
    owners=OWNERS,
    metadata=lineage_metadata(),
    description=(
        "A published, immutable training set version under DISTILLSET_STORAGE_URL: train.jsonl and "
        "validation.jsonl (OpenAI chat format), data.parquet with lineage columns, manifest.json and "
        "a dataset card. Unchanged content publishes no new version. Its rows carry the lineage columns of "
        "training_examples: `distillset explain <example_id>` follows one back to its source line and teacher call."
    ),
)
def training_set(
    context: dg.AssetExecutionContext,
    catalog_db: CatalogResource,
    teacher: TeacherResource,
    quality: QualityResource,
    judge: JudgeResource,
    training_storage: TrainingSetStorageResource,
    prompt_source: PromptSourceResource,
) -> dg.MaterializeResult:
    model = context.partition_key
    # The rows stream from the catalog to the files; figures come from SQL aggregates.
    source = CatalogSource(catalog_db.catalog_path, partition=model, partition_column=PARTITION_COLUMN)
    figures = source.figures()
    settings = teacher.settings_for(model)
    judged = not catalog_db.read("judge_scores", partition=model, limit=1).is_empty()
    manifest_fields, card_context = version_manifest(
        catalog_db.catalog_path,
        teacher=settings,
        thresholds=quality.threshold_settings(),
        gates=quality.gate_settings(),
        validation_fraction=training_storage.validation_fraction,
        formats=training_storage.format_list(),
        judge=judge.settings().for_teacher(settings) if judged else None,
        run_id=context.run_id,
        prompts_url=prompt_source.url,
        benchmarks=default_benchmarks(prompt_source.extra_benchmarks),
    )
    name = training_storage.set_name(model)
    card_context["scorecards"] = _scorecard_section(catalog_db, model)
    manifest_fields["teacher_batches"] = _batch_share(catalog_db, model, settings)
    partial = partial_decision(
        training_storage.url,
        name,
        examples=figures["rows"],
        skipped_for_budget=_skipped_for_budget(catalog_db, model),
        allow_partial=training_storage.allow_partial,
        storage_options=training_storage.storage_options(),
    )
    if not partial.publish:
        raise dg.Failure(description=partial.message)
    if partial.message:
        context.log.warning(partial.message)
        manifest_fields["partial"] = {"reason": partial.message, "previous_examples": partial.latest_examples}
    try:
        result = publish_training_set(
            training_storage.url,
            name,
            source,
            formats=training_storage.format_list(),
            storage_options=training_storage.storage_options(),
            license_policy=training_storage.license_policy(),
            stale_after_s=training_storage.stale_after_s,
            manifest_fields=manifest_fields,
            card_context=card_context,
        )
    except LicenseBlockedError as exc:
        raise dg.Failure(description=f"license policy blocks publication: {exc}") from exc
    verb = "published" if result.published else "unchanged, kept"
    same = f" (same content as {result.same_content_as})" if result.same_content_as else ""
    context.log.info(f"{verb} {name} {result.version} at {result.path}{same}")
    tag_run(context, {VERSION_TAG: f"{name} {result.version}" + ("" if result.published else " (unchanged)")})
    simulated_rows = figures["simulated_rows"]
    real_rows = figures["rows"] - simulated_rows
    # Entries with nothing to say are left out: the UI shows an empty text as a blank, not as "none".
    optional = {
        "parent_version": result.parent_version,
        "same_content_as": result.same_content_as,
        "partial": partial.message,
    }
    return dg.MaterializeResult(
        metadata={
            **{key: dg.MetadataValue.text(value) for key, value in optional.items() if value},
            **lineage_metadata(),
            "version": dg.MetadataValue.text(result.version),
            "path": dg.MetadataValue.path(result.path),
            "published_new_version": dg.MetadataValue.bool(result.published),
            "reason": dg.MetadataValue.text(result.reason),
            "content_hash": dg.MetadataValue.text(result.content_hash),
            "training_set_name": dg.MetadataValue.text(name),
            # Counted from the published rows: a version can be partly simulated.
            "simulated": dg.MetadataValue.bool(simulated_rows > 0),
            "simulated_rows": dg.MetadataValue.int(simulated_rows),
            "real_rows": dg.MetadataValue.int(real_rows),
            "dagster/row_count": dg.MetadataValue.int(figures["rows"]),
            "rows_by_split": dg.MetadataValue.md(counts_markdown(figures["splits"], "split")),
            "files": dg.MetadataValue.md(
                counts_markdown({f: int(info["size"]) for f, info in result.files.items()}, "file", "bytes")
            ),
            "license_warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in result.license_warnings) or "_none_"),
        }
    )


def _scorecard_section(catalog_db: CatalogResource, model: str) -> list[str]:
    """The card's "Scorecards" section: the teacher's scorecard (students come after publication)."""
    store = ScorecardStore(catalog_db.home_path / SCORECARDS_FILE)
    return scorecard_lines(store.latest(model=model, kind=TEACHER), [])


def _skipped_for_budget(catalog_db: CatalogResource, model: str) -> int:
    """Conversations the teacher stage left unanswered because its budget ran out."""
    if "status" not in catalog_db.columns("teacher_generations"):
        return 0
    return catalog_db.count(
        "teacher_generations", where=f"{PARTITION_COLUMN} = ? AND status = 'skipped'", params=[model]
    )


@dg.asset_check(
    partitions_def=teacher_partitions,
    asset=training_set,
    blocking=True,
    description=(
        "The published version reads back as its manifest says: every file present, with the manifest's "
        "sha256 and size, and the required files listed."
    ),
)
def training_set_matches_manifest(
    context: dg.AssetCheckExecutionContext, training_storage: TrainingSetStorageResource
) -> dg.AssetCheckResult:
    model = run_teacher_partition(context)
    name = training_storage.set_name(model)
    problems = verify_version(training_storage.url, name, "latest", training_storage.storage_options())
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={
            "teacher": model,
            "training_set": name,
            "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "_none_"),
        },
    )


training_set_assets = [training_examples, training_set]
training_set_checks = [
    training_examples_split_disjoint,
    training_examples_schema,
    training_examples_not_contaminated,
    training_set_matches_manifest,
]
