"""Jobs: the whole flow for one teacher partition, and the optional judge stage with what follows it.

The asset graph and the jobs are the same whatever the environment says. ``judge_scores`` is always
upstream of ``training_examples`` and always in ``distill_job``; whether it pays a judge is its
resource's ``enabled`` config (default ``DISTILLSET_JUDGE_ENABLED``, overridable in the launchpad).
Turned off, the step records that it judged nothing and leaves earlier judgments in place.
(Leaving the asset out of ``distill_job`` instead would leave it never materialized, and the UI
then asks "Are you sure?" before every launch of the flow.) ``judge_job`` runs the judge whatever
that setting says, then rebuilds the training examples and the training set.
"""

import dagster as dg

from assets.constants import JUDGE_TAG
from assets.run_tags import LAUNCHED_BY_TAG

# A launch from the UI carries only the job's tags; the CLI, the schedule and the sensor set their own
# value, which wins over the job's.
_UI_LAUNCH = {LAUNCHED_BY_TAG: "ui"}

JUDGE_ASSET = dg.AssetKey("judge_scores")

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

jobs = [distill_job, judge_job]
