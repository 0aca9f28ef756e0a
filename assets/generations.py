"""Deduplicated generations: what survives failed calls, exact and near-duplicate answers."""

import dagster as dg
import polars as pl

from assets.checks import ratio_check
from assets.constants import CATALOG_POOL, OWNERS
from assets.metadata import counts_markdown, preview_table, table_metadata, value_counts
from assets.partitions import teacher_partitions
from assets.resources import CatalogResource
from assets.teacher import teacher_generations
from distillset.curation.generations import deduplicate_generations
from distillset.curation.near_dedup import NearDupParams
from distillset.curation.pool import cluster_size_histogram

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
    generations = catalog_db.read("teacher_generations", partition=model)
    prompts = catalog_db.read("prompt_pool")
    kept, drops = deduplicate_generations(generations, prompts, near_dup=NearDupParams())
    catalog_db.write_partition("deduplicated_generations", kept, model)
    catalog_db.write_partition("generation_drops", drops, model)
    context.log.info(
        f"deduplicated_generations: {kept.height} kept, {drops.height} dropped {value_counts(drops, 'reason')}"
    )
    clusters = kept.group_by("cluster_id").len() if kept.height else pl.DataFrame()
    return dg.MaterializeResult(
        metadata={
            **table_metadata(
                kept, preview_columns=["prompt_id", "cluster_id", "response"], table="deduplicated_generations"
            ),
            "input_rows": dg.MetadataValue.int(generations.height),
            "dropped_rows": dg.MetadataValue.int(drops.height),
            "drop_ratio": dg.MetadataValue.float(drops.height / generations.height if generations.height else 0.0),
            "drops_by_reason": dg.MetadataValue.md(counts_markdown(value_counts(drops, "reason"))),
            "drops_preview": preview_table(drops, rows=20, table="generation_drops"),
            "cluster_sizes": dg.MetadataValue.md(
                counts_markdown(cluster_size_histogram(kept.height, drops), "cluster size")
            ),
            "clusters": dg.MetadataValue.int(clusters.height),
        }
    )


def _dropped(catalog_db: CatalogResource, model: str | None) -> tuple[int, int]:
    kept = catalog_db.read("deduplicated_generations", partition=model).height
    dropped = catalog_db.read("generation_drops", partition=model).height
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
