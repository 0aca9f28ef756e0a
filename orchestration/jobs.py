"""Jobs: the whole flow for one teacher partition, and the optional judge stage on its own."""

import dagster as dg

from distillset.quality.judge import judge_enabled

JUDGE_ASSET = dg.AssetKey("judge_scores")

# Partitioned by teacher release: the partitioning is inferred from the selected assets
# (raw_prompts and prompt_pool are unpartitioned and run once per run). The LLM-as-judge stage
# costs one judge call per answer, so it joins the flow only when DISTILLSET_JUDGE_ENABLED says so
# (read when the code location loads); it stays in the asset graph either way.
_distill_selection = dg.AssetSelection.all()
if not judge_enabled():
    _distill_selection = _distill_selection - dg.AssetSelection.assets(JUDGE_ASSET)

distill_job = dg.define_asset_job(
    name="distill_job",
    selection=_distill_selection,
    description=(
        "The whole flow, raw prompts to a published training set, for one teacher release "
        "(with the LLM-as-judge stage only when DISTILLSET_JUDGE_ENABLED is true)."
    ),
)

# With the judge enabled, training_examples (and so training_set) are downstream of judge_scores
# and this job refreshes them too; without it, judge_scores is a leaf and the next distill_job run
# blends the judgments in (assets/training_set.py explains why there is no edge then).
judge_job = dg.define_asset_job(
    name="judge_job",
    selection=dg.AssetSelection.assets(JUDGE_ASSET).downstream(),
    description=(
        "The optional LLM-as-judge stage for one teacher release (needs its deduplicated generations: "
        "run distill_job first). With DISTILLSET_JUDGE_ENABLED it also rebuilds the training examples "
        "and the training set; otherwise the next distill_job run blends the judgments into "
        "quality_score (at no teacher cost: answers and judgments come from the ledger)."
    ),
)
