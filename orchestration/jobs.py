"""Jobs: the whole flow for one teacher partition, and the optional judge stage with what follows it.

The asset graph and the jobs are the same whatever the environment says. ``judge_scores`` is always
upstream of ``training_examples`` and always in ``distill_job``; whether it pays a judge is its
resource's ``enabled`` config (default ``DISTILLSET_JUDGE_ENABLED``, overridable in the launchpad).
Turned off, the step records that it judged nothing and leaves earlier judgments in place.
(Leaving the asset out of ``distill_job`` instead would leave it never materialized, and the UI
then asks "Are you sure?" before every launch of the flow.) ``judge_job`` runs the judge whatever
that setting says, then rebuilds the training examples and the training set.

With ``DISTILLSET_SHARDS`` > 1 the flow is three jobs instead (``build_jobs``): ``distill_prepare_job``
(the pool and the scorecard), ``distill_shard_job`` (one teacher x shard) and ``distill_job`` (the
stages after the teacher, once per teacher).
"""

import dagster as dg

from assets.constants import JUDGE_TAG
from assets.run_tags import LAUNCHED_BY_TAG

# A launch from the UI carries only the job's tags; the CLI, the schedule and the sensor set their own
# value, which wins over the job's.
_UI_LAUNCH = {LAUNCHED_BY_TAG: "ui"}

JUDGE_ASSET = dg.AssetKey("judge_scores")

TEACHER_GENERATIONS = dg.AssetKey("teacher_generations")
PREPARE_JOB = "distill_prepare_job"
SHARD_JOB = "distill_shard_job"

# Partitioned by teacher release: the partitioning is inferred from the selected assets
# (raw_prompts and prompt_pool are unpartitioned and run once per run).
distill_job = dg.define_asset_job(
    name="distill_job",
    selection=dg.AssetSelection.all(),
    tags=_UI_LAUNCH,
    description=(
        "The whole flow, raw prompts to a published training set, for one teacher release. The optional "
        "LLM-as-judge step pays a judge only when the judge resource is enabled (DISTILLSET_JUDGE_ENABLED)."
    ),
)

judge_job = dg.define_asset_job(
    name="judge_job",
    selection=dg.AssetSelection.assets(JUDGE_ASSET).downstream(),
    tags={JUDGE_TAG: "on", **_UI_LAUNCH},
    description=(
        "The optional LLM-as-judge stage for one teacher release (whatever DISTILLSET_JUDGE_ENABLED says), then "
        "the training examples and the training set again; needs the deduplicated generations (run distill_job first)."
    ),
)

# DISTILLSET_SHARDS > 1 (orchestration/shards.py): an asset job cannot mix the teacher and the
# teacher x shard partitions, so the flow is three jobs, launched in this order by `distillset run`.
_SHARDED = dg.AssetSelection.assets(TEACHER_GENERATIONS)
_BEFORE_SHARDS = _SHARDED.upstream() - _SHARDED

distill_prepare_job = dg.define_asset_job(
    name=PREPARE_JOB,
    selection=_BEFORE_SHARDS,
    tags=_UI_LAUNCH,
    description=(
        "Sharded flow (DISTILLSET_SHARDS > 1), first of three: the prompt pool and the teacher's scorecard "
        "(its release gate) for one teacher release."
    ),
)

distill_shard_job = dg.define_asset_job(
    name=SHARD_JOB,
    selection=_SHARDED,
    tags=_UI_LAUNCH,
    description=(
        "Sharded flow, second of three: the teacher's answers to one prompt shard (partition teacher x shard); "
        "the shards of a teacher run concurrently, on any worker."
    ),
)

sharded_distill_job = dg.define_asset_job(
    name="distill_job",
    selection=dg.AssetSelection.all() - _SHARDED.upstream(),
    tags=_UI_LAUNCH,
    description=(
        "Sharded flow, last of three: curation, quality, the optional judge and publishing for one teacher "
        "release, once over all of its shards (each must be materialized: the first stage names any missing)."
    ),
)


def build_jobs(shards: int) -> list:
    """The jobs for ``shards`` prompt shards: the whole flow in one job when 1, else three."""
    if shards == 1:
        return [distill_job, judge_job]
    return [distill_prepare_job, distill_shard_job, sharded_distill_job, judge_job]


jobs = [distill_job, judge_job]
