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
    key = context.run.tags.get("dagster/partition")
    if not key:
        raise dg.Failure("this check needs a teacher partition: run it with its asset for one teacher")
    return key
