"""Prompt stages: raw prompt files in, the pool of prompts worth paying the teacher for out."""

import dagster as dg
import polars as pl

from assets.checks import ratio_check
from assets.constants import CATALOG_POOL, OWNERS
from assets.metadata import counts_markdown, preview_table, table_metadata, value_counts
from assets.resources import CatalogResource, PromptSourceResource
from distillset.curation.decontam import BenchmarkIndex, default_benchmarks
from distillset.curation.near_dedup import NearDupParams
from distillset.curation.pool import build_prompt_pool_in_catalog, cluster_size_histogram
from distillset.prompts.files import RAW_PROMPTS_SCHEMA, REJECTS_SCHEMA, read_prompt_chunks

MAX_REJECTS_RATIO = 0.10


@dg.asset(
    group_name="prompts",
    kinds={"duckdb", "polars"},
    owners=OWNERS,
    pool=CATALOG_POOL,
    description=(
        "Every prompt file under DISTILLSET_PROMPTS_URL (JSONL, Parquet, CSV; plain, Alpaca, GSM8K, "
        "OpenAI messages, ShareGPT, MT-Bench), normalized into conversations with provenance: source "
        "file, line, file hash, license. Malformed rows go to the `rejects` table with a reason."
    ),
)
def raw_prompts(
    context: dg.AssetExecutionContext, catalog_db: CatalogResource, prompt_source: PromptSourceResource
) -> dg.MaterializeResult:
    # Streamed: each chunk of rows is appended as it is read, in one transaction (the old table
    # stays until the whole read is committed), so memory holds one chunk however large the input.
    with catalog_db.write_chunks() as writer:
        writer.replace_table("raw_prompts", RAW_PROMPTS_SCHEMA)
        writer.replace_partition("rejects", REJECTS_SCHEMA, column="stage", value="raw_prompts")

        def append(prompts: pl.DataFrame, rejects: pl.DataFrame) -> None:
            writer.append("raw_prompts", prompts)
            writer.append("rejects", rejects)

        result = read_prompt_chunks(
            prompt_source.url,
            append,
            default_license=prompt_source.default_license,
            max_chars=prompt_source.max_prompt_chars,
            follow_symlinks=prompt_source.follow_symlinks,
            storage_options=prompt_source.storage_options(),
            chunk_rows=catalog_db.chunk_rows,
        )
    rows_seen = result.prompts + result.rejects
    context.log.info(
        f"raw_prompts: {result.prompts} prompts from {result.files.height} files, {result.rejects} rows rejected "
        f"({result.chunks} chunks of at most {catalog_db.chunk_rows} rows)"
    )
    return dg.MaterializeResult(
        metadata={
            **table_metadata(
                result.prompt_head,
                preview_columns=["prompt_id", "source_format", "turns", "license", "source_file", "source_line"],
                table="raw_prompts",
            ),
            "dagster/row_count": dg.MetadataValue.int(result.prompts),
            "rejected_rows": dg.MetadataValue.int(result.rejects),
            "rejects_ratio": dg.MetadataValue.float(result.rejects / rows_seen if rows_seen else 0.0),
            "rejects_by_reason": dg.MetadataValue.md(counts_markdown(dict(result.rejects_by_reason))),
            "rejects_preview": preview_table(
                result.reject_head, ["reason", "source_file", "source_line", "detail", "raw_excerpt"], table="rejects"
            ),
            "files": preview_table(result.files, rows=50),
            "rows_by_format": dg.MetadataValue.md(counts_markdown(dict(result.by_format), "format")),
            "rows_by_license": dg.MetadataValue.md(counts_markdown(dict(result.by_license), "license")),
            "prompts_url": dg.MetadataValue.text(prompt_source.url),
        }
    )


@dg.asset_check(asset=raw_prompts, blocking=True, description="The table has exactly the documented columns and types.")
def raw_prompts_schema(catalog_db: CatalogResource) -> dg.AssetCheckResult:
    columns = catalog_db.columns("raw_prompts")
    expected = list(RAW_PROMPTS_SCHEMA)
    return dg.AssetCheckResult(
        passed=columns == expected,
        metadata={"columns": ", ".join(columns), "expected": ", ".join(expected)},
    )


@dg.asset_check(asset=raw_prompts, blocking=True, description="At least one prompt was read.")
def raw_prompts_not_empty(catalog_db: CatalogResource) -> dg.AssetCheckResult:
    rows = catalog_db.count("raw_prompts")
    return dg.AssetCheckResult(passed=rows > 0, metadata={"rows": rows})


def _rejects(catalog_db: CatalogResource, _partition: str | None) -> tuple[int, int]:
    rejects = catalog_db.count("rejects", where="stage = 'raw_prompts'")
    return rejects, catalog_db.count("raw_prompts") + rejects


raw_prompts_rejects_ratio = ratio_check(
    asset=raw_prompts,
    name="raw_prompts_rejects_ratio",
    description=(
        f"Rejected rows stay under {MAX_REJECTS_RATIO:.0%} of the rows read (a few bad rows never fail a run; many "
        "mean a wrong file)."
    ),
    limit=MAX_REJECTS_RATIO,
    counts=_rejects,
    labels=("rejects", "rows_read"),
    partitioned=False,
    empty_passes=True,
)


@dg.asset(
    deps=[raw_prompts],
    group_name="prompts",
    kinds={"duckdb", "polars"},
    owners=OWNERS,
    pool=CATALOG_POOL,
    description=(
        "The prompts worth paying the teacher for: exact duplicates (normalized text), benchmark-"
        "contaminated prompts (13-gram overlap with GSM8K test, IFEval...) and MinHash near-duplicates "
        "removed. Each dropped prompt lands in `prompt_drops` with its reason and the prompt it duplicates."
    ),
)
def prompt_pool(
    context: dg.AssetExecutionContext, catalog_db: CatalogResource, prompt_source: PromptSourceResource
) -> dg.MaterializeResult:
    benchmarks = default_benchmarks(prompt_source.extra_benchmarks)
    index = BenchmarkIndex.build(benchmarks, cache_dir=catalog_db.cache_dir / "decontam")
    # Built inside the catalog: ids and hashes, one chunk of texts at a time, the MinHash index;
    # DuckDB writes the pool itself from raw_prompts.
    with catalog_db.write_chunks() as writer:
        counts = build_prompt_pool_in_catalog(
            writer, benchmarks=index, near_dup=NearDupParams(), chunk_rows=catalog_db.chunk_rows
        )
    drops = counts.drops
    preview = catalog_db.read("prompt_pool", limit=20)
    contaminated = drops.filter(pl.col("reason") == "contaminated")
    context.log.info(
        f"prompt_pool: {counts.kept} prompts for the teacher, {drops.height} dropped {value_counts(drops, 'reason')}"
    )
    return dg.MaterializeResult(
        metadata={
            **table_metadata(
                preview, preview_columns=["prompt_id", "category", "turns", "reference"], table="prompt_pool"
            ),
            "dagster/row_count": dg.MetadataValue.int(counts.kept),
            "input_rows": dg.MetadataValue.int(counts.input_rows),
            "dropped_rows": dg.MetadataValue.int(drops.height),
            "drops_by_reason": dg.MetadataValue.md(counts_markdown(value_counts(drops, "reason"))),
            "drops_preview": preview_table(drops, rows=20, table="prompt_drops"),
            "contamination_report": preview_table(contaminated, ["prompt_id", "detail"], rows=20, table="prompt_drops"),
            "cluster_sizes": dg.MetadataValue.md(
                counts_markdown(cluster_size_histogram(counts.kept, drops), "cluster size")
            ),
            "benchmarks": dg.MetadataValue.text(", ".join(b.name for b in benchmarks)),
        }
    )


@dg.asset_check(
    asset=prompt_pool, blocking=True, description="The pool is not empty and has no duplicate prompt ids or texts."
)
def prompt_pool_unique(catalog_db: CatalogResource) -> dg.AssetCheckResult:
    rows = catalog_db.count("prompt_pool")
    dup_ids = dup_texts = 0
    if rows:
        ids, texts = catalog_db.query("SELECT count(DISTINCT prompt_id), count(DISTINCT text_hash) FROM prompt_pool")[0]
        dup_ids, dup_texts = rows - ids, rows - texts
    return dg.AssetCheckResult(
        passed=rows > 0 and dup_ids == 0 and dup_texts == 0,
        metadata={"rows": rows, "duplicate_ids": dup_ids, "duplicate_texts": dup_texts},
    )


prompt_assets = [raw_prompts, prompt_pool]
prompt_checks = [raw_prompts_schema, raw_prompts_not_empty, raw_prompts_rejects_ratio, prompt_pool_unique]
