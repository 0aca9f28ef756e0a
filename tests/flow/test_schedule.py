"""The nightly refresh schedule.

Protects: one tick requests one `distill_job` run per registered teacher partition, with run keys
that are distinct per teacher and per tick (so a retried tick is idempotent and the next night
runs again); with no partition registered it skips and says how to register one; it is stopped
until turned on, in UTC, on `0 2 * * *` unless DISTILLSET_NIGHTLY_CRON says otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from distillset.settings import load_settings
from orchestration.schedules import build_nightly_refresh_schedule, build_schedules

nightly_refresh_schedule = build_nightly_refresh_schedule()

TEACHERS = ["meta-llama/Llama-3.1-405B-Instruct", "meta-llama/Llama-4-Scout-17B-16E-Instruct"]
NIGHT = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


@pytest.fixture
def instance(tmp_path):
    # Schedule contexts need a persistent instance (an ephemeral one has no reference to hand over).
    (tmp_path / "dagster").mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster")) as persistent:
        yield persistent


def _tick(instance: dg.DagsterInstance, when: datetime = NIGHT):
    return nightly_refresh_schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))


def test_one_run_per_registered_teacher_with_distinct_run_keys(instance):
    instance.add_dynamic_partitions("teacher_models", TEACHERS)
    requests = _tick(instance)
    assert sorted(r.partition_key for r in requests) == sorted(TEACHERS)
    run_keys = [r.run_key for r in requests]
    assert len(set(run_keys)) == 2
    assert all("2026-11-30" in key for key in run_keys)
    assert all(r.tags["distillset/launched_by"] == "nightly_refresh_schedule" for r in requests)
    # The tick shows which teacher each run is for (the tag the runs' own stages set, distillset/teacher).
    assert all(r.tags["distillset/teacher"] == r.partition_key for r in requests)


def test_the_same_tick_gives_the_same_run_keys_and_the_next_night_new_ones(instance):
    instance.add_dynamic_partitions("teacher_models", TEACHERS)
    tonight = {r.run_key for r in _tick(instance)}
    assert {r.run_key for r in _tick(instance)} == tonight
    tomorrow = {r.run_key for r in _tick(instance, NIGHT + timedelta(days=1))}
    assert tomorrow.isdisjoint(tonight)


def test_no_registered_teacher_skips_and_says_how_to_register_one(instance):
    result = _tick(instance)
    assert isinstance(result, dg.SkipReason)
    assert "distillset run" in result.skip_message


def test_defaults_stopped_nightly_in_utc_on_distill_job():
    assert nightly_refresh_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert nightly_refresh_schedule.cron_schedule == "0 2 * * *"
    assert nightly_refresh_schedule.execution_timezone == "UTC"
    assert nightly_refresh_schedule.job_name == "distill_job"


def test_the_cron_comes_from_the_environment_and_is_validated(monkeypatch):
    monkeypatch.setenv("DISTILLSET_NIGHTLY_CRON", "30 4 * * 1-5")
    assert {s.cron_schedule for s in build_schedules(load_settings().refresh)} == {"30 4 * * 1-5"}
    monkeypatch.setenv("DISTILLSET_NIGHTLY_CRON", "every night")
    with pytest.raises(ValueError, match="DISTILLSET_NIGHTLY_CRON"):
        build_schedules(load_settings().refresh)


def test_the_project_definitions_carry_the_schedule_on_distill_job():
    from orchestration.definitions import defs

    schedule = defs.resolve_schedule_def("nightly_refresh_schedule")
    assert schedule.job_name == "distill_job"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
