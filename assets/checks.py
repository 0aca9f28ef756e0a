"""One factory for the "at most X% of the rows are bad" checks every stage carries."""

from collections.abc import Callable

import dagster as dg

from assets.partitions import run_teacher_partition, teacher_partitions
from assets.resources import CatalogResource


def ratio_check(
    *,
    asset,
    name: str,
    description: str,
    limit: float,
    counts: Callable[[CatalogResource, str | None], tuple[int, int]],
    labels: tuple[str, str],
    partitioned: bool = True,
    empty_passes: bool = False,
    partitions_def: dg.PartitionsDefinition = teacher_partitions,
) -> dg.AssetChecksDefinition:
    """A non-blocking check that ``bad / total <= limit``.

    Args:
        asset: the checked asset.
        name: the check's name.
        description: shown in the UI.
        limit: the largest allowed share of bad rows.
        counts: ``(catalog, teacher partition or None) -> (bad, total)``.
        labels: metadata names of the two counts, e.g. ``("failed", "rows")``.
        partitioned: the check runs for one teacher partition (the run's).
        empty_passes: whether no rows at all passes (the default: nothing to check is a failure).
        partitions_def: the checked asset's partitions, when partitioned (teacher x shard for a
            sharded teacher stage); the counts are still the run's teacher's.
    """

    # A partitioned check keeps one result per teacher: with three teachers the UI shows all three.
    @dg.asset_check(
        asset=asset, name=name, description=description, partitions_def=partitions_def if partitioned else None
    )
    def _check(context: dg.AssetCheckExecutionContext, catalog_db: CatalogResource) -> dg.AssetCheckResult:
        partition = run_teacher_partition(context) if partitioned else None
        bad, total = counts(catalog_db, partition)
        ratio = bad / total if total else (0.0 if empty_passes else 1.0)
        return dg.AssetCheckResult(
            passed=(total > 0 or empty_passes) and ratio <= limit,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                labels[0]: bad,
                labels[1]: total,
                "ratio": ratio,
                "limit": limit,
                **({"teacher": partition} if partition else {}),
            },
        )

    return _check
