"""The nightly refresh: every registered teacher partition, rerun on a cron (STOPPED until turned on).

A refresh rereads the prompt files, pays the teacher only for prompts the ledger has not answered
yet, and publishes a new training set version only when the content changed, so a quiet night
costs nothing and publishes nothing. Runs for several teachers may overlap: every asset that
writes the DuckDB catalog is in the ``distillset_catalog`` pool (one slot, ``orchestration/dagster.yaml``) and
the ledger is SQLite in WAL mode.
"""

from __future__ import annotations

from datetime import UTC

import dagster as dg

from assets.partitions import teacher_partitions
from assets.run_tags import LAUNCHED_BY_TAG, TEACHER_TAG
from distillset.settings import DEFAULT_NIGHTLY_CRON, RefreshSettings
from orchestration.jobs import distill_job

NIGHTLY_CRON_ENV = "DISTILLSET_NIGHTLY_CRON"
SCHEDULE_NAME = "nightly_refresh_schedule"


def refresh_every_teacher(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    """One run of ``distill_job`` per registered teacher partition, keyed by the scheduled time."""
    teachers = context.instance.get_dynamic_partitions(teacher_partitions.name)
    if not teachers:
        return dg.SkipReason(
            "no teacher partition is registered yet: run `distillset run` (or `distillset run --teacher MODEL`), "
            "add one in the UI (Jobs → distill_job → Materialize all… → Add a partition), or turn on "
            "new_teacher_release_sensor"
        )
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


def build_schedules(refresh: RefreshSettings) -> list[dg.ScheduleDefinition]:
    """The nightly refresh on ``refresh.nightly_cron``."""
    return [build_nightly_refresh_schedule(refresh.nightly_cron)]
