"""The teacher partitions: one partition per teacher release (a model id such as
``meta-llama/Llama-3.1-405B-Instruct``), added at run time by ``distillset run`` and by the
new-release sensor."""

import warnings

import dagster as dg

# Partitioned asset checks (one result per teacher, not one for the latest run) are a Dagster preview
# feature; the dagster version is pinned (pyproject.toml), and tests/flow/test_flow.py checks that
# results are kept per partition, so an incompatible change shows up there, not in production.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)

teacher_partitions = dg.DynamicPartitionsDefinition(name="teacher_models")


def run_teacher_partition(context: dg.AssetCheckExecutionContext) -> str:
    """The teacher partition an asset check runs for.

    Checks run in the same run as the partition they check, and that run carries the partition
    as a tag; a check launched alone, outside a partitioned run, has nothing to check.
    """
    # A teacher x shard run (DISTILLSET_SHARDS > 1) tags each dimension too: its teacher is one.
    key = context.run.tags.get(f"dagster/partition/{TEACHER_DIMENSION}") or context.run.tags.get("dagster/partition")
    if not key:
        raise dg.Failure("this check needs a teacher partition: run it with its asset for one teacher")
    return key


# DISTILLSET_SHARDS > 1 (orchestration/shards.py): teacher_generations is partitioned by teacher x
# prompt shard; the stages after it stay on teacher_partitions and read every shard of their teacher.
SHARD_DIMENSION = "shard"
TEACHER_DIMENSION = "teacher"
TEACHER_GENERATIONS = dg.AssetKey("teacher_generations")


def teacher_shard_partitions(shards: int) -> dg.MultiPartitionsDefinition:
    """teacher x shard: the static shards ``"0"`` .. ``str(shards - 1)`` of each teacher release."""
    return dg.MultiPartitionsDefinition(
        {
            SHARD_DIMENSION: dg.StaticPartitionsDefinition([str(shard) for shard in range(shards)]),
            TEACHER_DIMENSION: teacher_partitions,
        }
    )


def shard_partition_key(model: str, shard: int) -> dg.MultiPartitionKey:
    """The teacher x shard partition of ``model``'s ``shard``."""
    return dg.MultiPartitionKey({SHARD_DIMENSION: str(shard), TEACHER_DIMENSION: model})


def per_teacher_mapping() -> dg.MultiToSingleDimensionPartitionMapping:
    """A teacher partition <-> every shard partition of that teacher (both directions of the edge
    between teacher_generations and its teacher-partitioned neighbours)."""
    # A beta class of the pinned dagster version; tests/flow/test_shards_flow.py runs a sharded flow.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=TEACHER_DIMENSION)


def shard_count(partitions_def: dg.PartitionsDefinition | None) -> int:
    """The shards of a teacher_generations partitions definition: 1 unless it is teacher x shard."""
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return len(partitions_def.get_partitions_def_for_dimension(SHARD_DIMENSION).get_partition_keys())
    return 1


def graph_shard_count(context: dg.AssetExecutionContext) -> int:
    """The shards of teacher_generations in the definitions ``context`` runs in (DISTILLSET_SHARDS
    as the definitions were built with it: one source for every process of a run)."""
    # The job's asset graph holds the assets it does not execute too (a sharded distill_job's upstream).
    asset_graph = context.job_def.asset_layer.asset_graph
    if not asset_graph.has(TEACHER_GENERATIONS):
        return 1
    return shard_count(asset_graph.get(TEACHER_GENERATIONS).partitions_def)


def teacher_and_shard(context: dg.AssetExecutionContext) -> tuple[str, int | None, int]:
    """``(teacher model, shard or None, shard count)`` of a teacher_generations step."""
    key = context.partition_key
    shards = shard_count(context.assets_def.partitions_def)
    if isinstance(key, dg.MultiPartitionKey):
        dimensions = key.keys_by_dimension
        return dimensions[TEACHER_DIMENSION], int(dimensions[SHARD_DIMENSION]), shards
    return key, None, shards
