"""The one Definitions object: every asset, check, job, schedule, sensor and resource.

The settings are read from the environment once, here (``load_settings`` validates every variable
and names each bad one); they fill resource config defaults, the schedule's cron and the sensor's
interval, and what the UI shows of some assets (code versions, storage kind, freshness:
``orchestration/asset_specs.py``). The asset graph and the jobs are the same whatever the environment says,
except for ``DISTILLSET_SHARDS`` > 1, which partitions the teacher stage by teacher x shard and splits the
flow into three jobs (``orchestration/shards.py``).
"""

import dagster as dg

from assets.generations import generation_assets, generation_checks
from assets.judge import judge_assets, judge_checks
from assets.prompts import prompt_assets, prompt_checks
from assets.quality import quality_assets, quality_checks
from assets.scorecards import scorecard_assets, scorecard_checks
from assets.teacher import teacher_assets, teacher_checks
from assets.training_set import training_set_assets, training_set_checks
from distillset.settings import Settings, load_settings
from orchestration.asset_specs import present_assets
from orchestration.batch_sensor import build_batch_sensor
from orchestration.executor import build_executor
from orchestration.jobs import build_jobs
from orchestration.resources import build_resources
from orchestration.schedules import build_schedules, build_sharded_refresh_sensor
from orchestration.sensors import build_release_sensor, stale_run_sensor
from orchestration.shards import shard_assets

# The flow; the optional LLM-as-judge stage (judge_assets) is always in the graph and in distill_job,
# and pays a judge only when its resource is enabled (orchestration/jobs.py says why).
all_assets = [
    *prompt_assets,
    *scorecard_assets,
    *teacher_assets,
    *generation_assets,
    *quality_assets,
    *training_set_assets,
]
all_asset_checks = [
    *prompt_checks,
    *scorecard_checks,
    *teacher_checks,
    *generation_checks,
    *quality_checks,
    *training_set_checks,
]


def build_definitions(settings: Settings) -> dg.Definitions:
    """The Definitions for one settings tree (tests build their own from a ``Settings``).

    The settings also decide what the UI shows of some assets (``orchestration/asset_specs.py``):
    content-derived code versions, code references, the storage kind and freshness of ``training_set``.
    """
    shards = settings.executor.shards
    assets, checks = shard_assets([*all_assets, *judge_assets], [*all_asset_checks, *judge_checks], shards)
    return dg.Definitions(
        assets=present_assets(assets, settings),
        asset_checks=checks,
        jobs=build_jobs(shards),
        schedules=build_schedules(settings.refresh, shards),
        sensors=[
            build_release_sensor(settings.refresh, shards),
            stale_run_sensor,
            # Sharded: the nightly refresh is a sensor (backfills); batch mode is refused by the settings.
            *(
                [build_batch_sensor(settings.teacher.batch_poll_s)]
                if shards == 1
                else [build_sharded_refresh_sensor(settings.refresh.nightly_cron)]
            ),
        ],
        resources=build_resources(settings),
        # In process by default: the flow is a chain, one process per step would add start-up time
        # and no parallelism; parallelism comes from runs (one per teacher partition), which the run
        # queue bounds. Cluster mode (DISTILLSET_EXECUTOR=celery) puts those runs' steps on Celery
        # workers on several machines (orchestration/executor.py).
        executor=build_executor(settings.executor),
    )


defs = build_definitions(load_settings())
