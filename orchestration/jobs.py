"""Jobs: the whole flow for one teacher partition, and the optional judge stage on its own."""

import dagster as dg

from distillset.judge import judge_enabled

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

judge_job = dg.define_asset_job(
    name="judge_job",
    selection=dg.AssetSelection.assets(JUDGE_ASSET).downstream(),
    description=(
        "The optional LLM-as-judge stage for one teacher release, then the training examples and the "
        "training set again, so the published quality_score blends in the judgments. Needs the "
        "teacher's deduplicated generations (run distill_job first)."
    ),
)
