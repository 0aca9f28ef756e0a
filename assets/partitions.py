"""The teacher partitions: one partition per teacher release (a model id such as
``meta-llama/Llama-3.1-405B-Instruct``), added at run time by ``distillset run`` and by the
new-release sensor."""

import dagster as dg

teacher_partitions = dg.DynamicPartitionsDefinition(name="teacher_models")


def run_teacher_partition(context: dg.AssetCheckExecutionContext) -> str:
    """The teacher partition an asset check runs for.

    Checks run in the same run as the partition they check, and that run carries the partition
    as a tag; a check launched alone, outside a partitioned run, has nothing to check.
    """
    key = context.run.tags.get("dagster/partition")
    if not key:
        raise dg.Failure("this check needs a teacher partition: run it with its asset for one teacher")
    return key
