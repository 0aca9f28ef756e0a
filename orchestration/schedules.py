"""The nightly refresh: every registered teacher partition, rerun on a cron (STOPPED until turned on).

A refresh rereads the prompt files, pays the teacher only for prompts the ledger has not answered
yet, and publishes a new training set version only when the content changed, so a quiet night
costs nothing and publishes nothing. Runs for several teachers may overlap: every asset that
writes the DuckDB catalog is in the ``distillset_catalog`` pool (one slot, ``orchestration/dagster.yaml``) and
the ledger is SQLite in WAL mode.

With ``DISTILLSET_SHARDS`` > 1 one teacher's flow is an asset backfill, not a run of one job, and
Dagster's scheduler launches runs only (backfill requests are for sensors:
``dagster/_daemon/sensor.py``). The nightly refresh is then ``nightly_refresh_sensor``: a sensor on the
same cron (its cursor holds the last tick it acted on) that requests one backfill per teacher.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from assets.partitions import teacher_partitions
from assets.run_tags import LAUNCHED_BY_TAG, TEACHER_TAG
from distillset.settings import DEFAULT_NIGHTLY_CRON, RefreshSettings
from orchestration.jobs import distill_job
from orchestration.shards import teacher_backfill_request

NIGHTLY_CRON_ENV = "DISTILLSET_NIGHTLY_CRON"
SCHEDULE_NAME = "nightly_refresh_schedule"
SHARDED_SENSOR_NAME = "nightly_refresh_sensor"
_NO_TEACHER = (
    "no teacher partition is registered yet: run `distillset run` (or `distillset run --teacher MODEL`), "
    "add one in the UI (Jobs → distill_job → Materialize all… → Add a partition), or turn on "
    "new_teacher_release_sensor"
)


def refresh_every_teacher(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    """One run of ``distill_job`` per registered teacher partition, keyed by the scheduled time."""
    teachers = context.instance.get_dynamic_partitions(teacher_partitions.name)
    if not teachers:
        return dg.SkipReason(_NO_TEACHER)
    # The scheduled time (not the date alone) keys the runs, so a tick retried by the daemon never
    # launches twice and a cron more frequent than daily still launches once per tick.
    tick = context.scheduled_execution_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    return [
        dg.RunRequest(
            partition_key=teacher,
            run_key=f"nightly:{tick}:{teacher}",
            # The tick's list of runs shows which teacher each is for before any of them starts.
            tags={LAUNCHED_BY_TAG: SCHEDULE_NAME, TEACHER_TAG: teacher},
        )
        for teacher in teachers
    ]


def build_nightly_refresh_schedule(cron: str = DEFAULT_NIGHTLY_CRON) -> dg.ScheduleDefinition:
    """The nightly refresh on ``cron`` (``DISTILLSET_NIGHTLY_CRON``, default ``0 2 * * *``), in UTC.

    Raises:
        ValueError: the cron string is not one Dagster accepts.
    """
    cron = cron.strip()
    try:
        # Built with the decorator (not ScheduleDefinition) so tests can invoke it with a context.
        @dg.schedule(
            name=SCHEDULE_NAME,
            job=distill_job,
            cron_schedule=cron,
            execution_timezone="UTC",
            default_status=dg.DefaultScheduleStatus.STOPPED,
            description=(
                "Refreshes every registered teacher partition: new prompt files read, only unanswered "
                "prompts paid for, a new version published only when content changed. Cron from "
                f"{NIGHTLY_CRON_ENV} (default `{DEFAULT_NIGHTLY_CRON}`, UTC). Stopped until you turn it on."
            ),
        )
        def nightly_refresh_schedule(context: dg.ScheduleEvaluationContext):
            return refresh_every_teacher(context)

        return nightly_refresh_schedule
    except dg.DagsterInvalidDefinitionError as exc:
        raise ValueError(
            f"{NIGHTLY_CRON_ENV}={cron!r} is not a valid cron string (e.g. {DEFAULT_NIGHTLY_CRON!r})"
        ) from exc


def refresh_every_teacher_in_shards(
    context: dg.SensorEvaluationContext, cron: str, now: datetime | None = None
) -> dg.SensorResult | dg.SkipReason:
    """One asset backfill of the whole graph per registered teacher, once per tick of ``cron``
    (DISTILLSET_SHARDS > 1). The first evaluation only records the latest tick, as a schedule
    turned on does not run the ticks before it."""
    from dagster._utils.schedules import get_latest_completed_cron_tick, get_next_cron_tick

    now = now or datetime.now(UTC)
    tick = get_latest_completed_cron_tick(cron, now, "UTC").astimezone(UTC)
    key = tick.strftime("%Y-%m-%dT%H:%MZ")
    upcoming = get_next_cron_tick(cron, now, "UTC").astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    if context.cursor is None:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"turned on; next tick {upcoming}"), cursor=key)
    if key <= context.cursor:
        return dg.SkipReason(f"tick {context.cursor} done; next tick {upcoming}")
    teachers = context.instance.get_dynamic_partitions(teacher_partitions.name)
    if not teachers:
        return dg.SensorResult(skip_reason=dg.SkipReason(_NO_TEACHER), cursor=key)
    return dg.SensorResult(
        run_requests=[
            teacher_backfill_request(
                context.repository_def.asset_graph, teacher, {LAUNCHED_BY_TAG: SCHEDULE_NAME, TEACHER_TAG: teacher}
            )
            for teacher in teachers
        ],
        cursor=key,
    )


def build_sharded_refresh_sensor(cron: str = DEFAULT_NIGHTLY_CRON) -> dg.SensorDefinition:
    """The nightly refresh of a sharded flow (DISTILLSET_SHARDS > 1): a sensor on ``cron`` (UTC).

    Raises:
        ValueError: the cron string is not one Dagster accepts.
    """
    from dagster._utils.schedules import is_valid_cron_string

    cron = cron.strip()
    if not is_valid_cron_string(cron):
        raise ValueError(f"{NIGHTLY_CRON_ENV}={cron!r} is not a valid cron string (e.g. {DEFAULT_NIGHTLY_CRON!r})")

    @dg.sensor(
        name=SHARDED_SENSOR_NAME,
        asset_selection=dg.AssetSelection.all(),
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "The nightly refresh with DISTILLSET_SHARDS > 1: on each tick of the cron "
            f"({NIGHTLY_CRON_ENV}, default `{DEFAULT_NIGHTLY_CRON}`, UTC), an asset backfill of the whole graph per "
            "registered teacher (the pool, every shard of the teacher stage, then the rest once per teacher); only "
            "unanswered prompts are paid for. A sensor, because Dagster's schedules cannot launch backfills. "
            "Stopped until you turn it on."
        ),
    )
    def nightly_refresh_sensor(context: dg.SensorEvaluationContext):
        return refresh_every_teacher_in_shards(context, cron)

    return nightly_refresh_sensor


def build_schedules(refresh: RefreshSettings, shards: int = 1) -> list[dg.ScheduleDefinition]:
    """The nightly refresh on ``refresh.nightly_cron`` (none with ``shards`` > 1: see
    ``build_sharded_refresh_sensor``)."""
    return [build_nightly_refresh_schedule(refresh.nightly_cron)] if shards == 1 else []
