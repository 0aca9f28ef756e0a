"""Jobs: the whole flow for one teacher partition."""

import dagster as dg

# Partitioned by teacher release: the partitioning is inferred from the selected assets
# (raw_prompts and prompt_pool are unpartitioned and run once per run).
distill_job = dg.define_asset_job(
    name="distill_job",
    selection=dg.AssetSelection.all(),
    description="The whole flow, raw prompts to a published training set, for one teacher release.",
)
