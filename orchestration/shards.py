"""One teacher spread over many workers (``DISTILLSET_SHARDS`` > 1): teacher x shard.

With N > 1 shards, ``teacher_generations`` is partitioned by ``MultiPartitionsDefinition({"shard":
"0".."N-1", "teacher": teacher_models})``: each (teacher, shard) is a run of its own, which any
worker (a Celery worker, a Kubernetes pod) may execute, so a backfill fans one teacher out over the
workers. Its teacher-partitioned neighbours stay on ``teacher_models`` and meet it through
``MultiToSingleDimensionPartitionMapping("teacher")``: the scorecard upstream gates every shard of
its teacher, and curation and publishing downstream run once per teacher over all of its shards.

With N = 1 (the default) nothing here changes the graph: the definitions are exactly the unsharded
ones. An asset job cannot mix partitions definitions, so with N > 1 the flow is three jobs
(``orchestration/jobs.py``), which `distillset run` launches in order (the shards concurrently),
and the schedule and the release sensor request an asset backfill of the whole graph instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from assets.partitions import TEACHER_GENERATIONS, per_teacher_mapping, teacher_partitions, teacher_shard_partitions
from assets.teacher import build_failure_ratio_check


def shard_assets(
    assets: Sequence[dg.AssetsDefinition], checks: Sequence[dg.AssetChecksDefinition], shards: int
) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    """``assets`` and ``checks`` with teacher_generations on teacher x shard when ``shards`` > 1
    (unchanged when 1): its edges to teacher-partitioned assets map one teacher to all its shards,
    and its failed-calls check is partitioned as it is."""
    if shards == 1:
        return list(assets), list(checks)
    sharded = teacher_shard_partitions(shards)
    mapping = per_teacher_mapping()
    by_teacher = {spec.key for asset in assets for spec in asset.specs if spec.partitions_def == teacher_partitions}

    def remap(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.key == TEACHER_GENERATIONS:
            # prompt_pool is unpartitioned (every shard reads it); the scorecard gates all shards.
            deps = [
                dg.AssetDep(dep.asset_key, partition_mapping=mapping) if dep.asset_key in by_teacher else dep
                for dep in spec.deps
            ]
            return spec.replace_attributes(partitions_def=sharded, deps=deps)
        if any(dep.asset_key == TEACHER_GENERATIONS for dep in spec.deps):
            deps = [
                dg.AssetDep(dep.asset_key, partition_mapping=mapping) if dep.asset_key == TEACHER_GENERATIONS else dep
                for dep in spec.deps
            ]
            return spec.replace_attributes(deps=deps)
        return spec

    remapped = [asset.map_asset_specs(remap) for asset in assets]
    teacher_asset = next(asset for asset in remapped if TEACHER_GENERATIONS in asset.keys)
    checked = [
        build_failure_ratio_check(teacher_asset, sharded)
        if any(key.asset_key == TEACHER_GENERATIONS for key in check.check_keys)
        else check
        for check in checks
    ]
    return remapped, checked


def teacher_backfill_subset(asset_graph, model: str):
    """The whole graph for one teacher as an asset backfill's subset: the unpartitioned assets,
    every teacher-partitioned asset's ``model`` partition and every shard of ``model``'s teacher
    stage. The backfill daemon orders the runs (the pool, the shards, then the rest per teacher)."""
    # Private API: AssetGraphSubset is what RunRequest.for_asset_graph_subset takes (dagster 1.13, pinned).
    from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
    from dagster._core.definitions.events import AssetKeyPartitionKey

    from assets.partitions import SHARD_DIMENSION, shard_partition_key

    entries = set()
    for key in asset_graph.materializable_asset_keys:
        partitions_def = asset_graph.get(key).partitions_def
        if partitions_def is None:
            entries.add(AssetKeyPartitionKey(key, None))
        elif isinstance(partitions_def, dg.MultiPartitionsDefinition):
            shards = partitions_def.get_partitions_def_for_dimension(SHARD_DIMENSION).get_partition_keys()
            entries.update(AssetKeyPartitionKey(key, shard_partition_key(model, int(s))) for s in shards)
        else:
            entries.add(AssetKeyPartitionKey(key, model))
    return AssetGraphSubset.from_asset_partition_set(entries, asset_graph)


def teacher_backfill_request(asset_graph, model: str, tags: dict[str, str]) -> dg.RunRequest:
    """A request for an asset backfill of the whole graph for ``model`` (DISTILLSET_SHARDS > 1:
    one job cannot run it, the backfill daemon launches its runs in order)."""
    return dg.RunRequest.for_asset_graph_subset(teacher_backfill_subset(asset_graph, model), tags=tags)
