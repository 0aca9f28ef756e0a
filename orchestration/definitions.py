"""The one Definitions object: every asset, check, job, schedule, sensor and resource."""

import dagster as dg

from assets.generations import generation_assets, generation_checks
from assets.judge import judge_assets, judge_checks
from assets.prompts import prompt_assets, prompt_checks
from assets.quality import quality_assets, quality_checks
from assets.teacher import teacher_assets, teacher_checks
from assets.training_set import training_set_assets, training_set_checks
from orchestration.jobs import distill_job, judge_job
from orchestration.resources import build_resources
from orchestration.schedules import schedules
from orchestration.sensors import sensors

# The default flow. The optional LLM-as-judge stage (judge_assets) is in the graph and the UI
# always, but distill_job leaves it out unless DISTILLSET_JUDGE_ENABLED (orchestration/jobs.py).
all_assets = [*prompt_assets, *teacher_assets, *generation_assets, *quality_assets, *training_set_assets]
all_asset_checks = [*prompt_checks, *teacher_checks, *generation_checks, *quality_checks, *training_set_checks]

defs = dg.Definitions(
    assets=[*all_assets, *judge_assets],
    asset_checks=[*all_asset_checks, *judge_checks],
    jobs=[distill_job, judge_job],
    schedules=[*schedules],
    sensors=[*sensors],
    resources=build_resources(),
    # The flow is a chain: one process per step would add start-up time and no parallelism.
    # Parallelism comes from runs (one per teacher partition), which the run queue bounds.
    executor=dg.in_process_executor,
)
