"""Deduplicated generations: what survives failed calls, exact and near-duplicate answers."""

import dagster as dg

from assets.checks import ratio_check
from assets.constants import CATALOG_POOL, OWNERS
from assets.metadata import counts_markdown, preview_table, table_metadata
from assets.partitions import teacher_partitions
from assets.resources import CatalogResource
from assets.teacher import require_every_shard, teacher_generations
from distillset.curation.generations import deduplicate_generations_in_catalog
from distillset.curation.near_dedup import NearDupParams

MAX_DROP_RATIO = 0.5


@dg.asset(
    deps=[teacher_generations],
    partitions_def=teacher_partitions,
    group_name="curation",
    kinds={"duckdb", "polars"},
    owners=OWNERS,
    pool=CATALOG_POOL,
    description=(
        "Teacher answers that survive curation: failed calls, exact duplicates of (prompt, answer) "
        "and MinHash near-duplicates removed. Every dropped row is in `generation_drops` with its "
        "reason, the kept row it duplicates and the similarity."
    ),
)
def deduplicated_generations(context: dg.AssetExecutionContext, catalog_db: CatalogResource) -> dg.MaterializeResult:
    model = context.partition_key
    require_every_shard(context, catalog_db, model)  # DISTILLSET_SHARDS > 1: all of them, one sharding
    # Streamed in the catalog: one chunk of answers at a time, hashes and MinHash signatures of
    # the rest; metadata below comes from SQL aggregates and a few rows, never the whole table.
    with catalog_db.write_chunks() as writer:
        counts = deduplicate_generations_in_catalog(
            writer, model=model, near_dup=NearDupParams(), chunk_rows=catalog_db.chunk_rows
        )
    preview = catalog_db.read("deduplicated_generations", partition=model, limit=10)
    drops_preview = catalog_db.read("generation_drops", partition=model, limit=20)
    context.log.info(f"deduplicated_generations: {counts.kept} kept, {counts.dropped} dropped {counts.drops_by_reason}")
    return dg.MaterializeResult(
        metadata={
            **table_metadata(
                preview, preview_columns=["prompt_id", "cluster_id", "response"], table="deduplicated_generations"
            ),
            "dagster/row_count": dg.MetadataValue.int(counts.kept),
            "input_rows": dg.MetadataValue.int(counts.input_rows),
            "dropped_rows": dg.MetadataValue.int(counts.dropped),
            "drop_ratio": dg.MetadataValue.float(counts.dropped / counts.input_rows if counts.input_rows else 0.0),
            "drops_by_reason": dg.MetadataValue.md(counts_markdown(counts.drops_by_reason)),
            "drops_preview": preview_table(drops_preview, rows=20, table="generation_drops"),
            "cluster_sizes": dg.MetadataValue.md(
                counts_markdown(_cluster_sizes(catalog_db, model, counts.kept), "cluster size")
            ),
            "clusters": dg.MetadataValue.int(
                catalog_db.query(
                    "SELECT count(DISTINCT cluster_id) FROM deduplicated_generations WHERE teacher_model = ?", [model]
                )[0][0]
            ),
        }
    )


def _cluster_sizes(catalog_db: CatalogResource, model: str, kept: int) -> dict[str, int]:
    """``cluster_size_histogram`` counted in SQL: kept rows per cluster size (1 = no duplicate)."""
    rows = catalog_db.query(
        "SELECT n + 1, count(*) FROM (SELECT count(*) AS n FROM generation_drops "
        "WHERE teacher_model = ? AND duplicate_of IS NOT NULL GROUP BY duplicate_of) GROUP BY 1 ORDER BY 1",
        [model],
    )
    histogram = {"1": kept - sum(int(clusters) for _, clusters in rows)}
    histogram.update({str(size): int(clusters) for size, clusters in rows})
    return histogram


def _dropped(catalog_db: CatalogResource, model: str | None) -> tuple[int, int]:
    where, params = ("teacher_model = ?", [model]) if model is not None else ("", None)
    kept = catalog_db.count("deduplicated_generations", where=where, params=params)
    dropped = catalog_db.count("generation_drops", where=where, params=params)
    return dropped, kept + dropped


deduplicated_generations_drop_ratio = ratio_check(
    asset=deduplicated_generations,
    name="deduplicated_generations_drop_ratio",
    description=(
        f"Curation drops at most {MAX_DROP_RATIO:.0%} of the answers (more means a broken teacher or template)."
    ),
    limit=MAX_DROP_RATIO,
    counts=_dropped,
    labels=("dropped", "rows"),
)


generation_assets = [deduplicated_generations]
generation_checks = [deduplicated_generations_drop_ratio]
