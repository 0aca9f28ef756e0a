"""The new-release sensor against the real teacher simulator over HTTP.

Protects: a Llama release the endpoint starts serving becomes, in ONE tick, a new `teacher_models`
partition and a run of `distill_job` for it (run key `release:<model>`); a second tick with the
returned cursor, a restart that lost the cursor after the partition was registered, and a
teacher already registered by `distillset run` start nothing; the first tick on a fresh
deployment treats every matching release as new; an unreachable endpoint or no configured
source skips the tick with a reason; the API key never lands in the cursor, a skip reason or the
sensor's log.
"""

from __future__ import annotations

import json
import socket

import dagster as dg
import pytest

from assets.resources import ReleaseSourceResource
from distillset.settings import SettingsError, load_settings
from distillset.simulator.server import TeacherSimulator
from orchestration.resources import build_resources
from orchestration.sensors import build_release_sensor, read_cursor

new_teacher_release_sensor = build_release_sensor(load_settings({}).refresh)

DEFAULT_TEACHER = "meta-llama/Llama-3.1-405B-Instruct"
SCOUT = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
SECRET = "sk-sensor-secret-5678"


@pytest.fixture
def simulator(monkeypatch):
    with TeacherSimulator(models=[DEFAULT_TEACHER], api_key=SECRET) as running:
        monkeypatch.setenv("TEACHER_BASE_URL", running.base_url)
        monkeypatch.setenv("TEACHER_API_KEY", SECRET)
        for name in ("DISTILLSET_RELEASE_HUB_URL", "DISTILLSET_RELEASE_PATTERN"):
            monkeypatch.delenv(name, raising=False)
        yield running


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as ephemeral:
        yield ephemeral


def _tick(instance: dg.DagsterInstance, cursor: str | None = None):
    # The resources a deployment builds from its environment (the fixtures set TEACHER_BASE_URL...).
    resources = {k: v for k, v in build_resources(load_settings()).items() if k in ("teacher", "release_source")}
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, sensor_name=new_teacher_release_sensor.name, resources=resources
    )
    return new_teacher_release_sensor(context)


def _apply(instance: dg.DagsterInstance, result: dg.SensorResult) -> None:
    """What the daemon does with a tick's partition requests before launching its runs."""
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def test_a_new_release_becomes_a_partition_and_a_run_in_one_tick(simulator, instance):
    instance.add_dynamic_partitions("teacher_models", [DEFAULT_TEACHER])  # as `distillset run` does
    quiet = _tick(instance)
    assert quiet.run_requests == [] and "no new release" in quiet.skip_reason.skip_message

    simulator.set_models([DEFAULT_TEACHER, SCOUT, "meta-llama/Llama-4-Scout-17B-16E"])
    result = _tick(instance, quiet.cursor)

    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [(SCOUT, f"release:{SCOUT}")]
    assert result.run_requests[0].tags["distillset/launched_by"] == "new_teacher_release_sensor"
    [add] = result.dynamic_partitions_requests
    assert (add.partitions_def_name, list(add.partition_keys)) == ("teacher_models", [SCOUT])
    assert read_cursor(result.cursor) == {DEFAULT_TEACHER, SCOUT}

    again = _tick(instance, result.cursor)
    assert again.run_requests == [] and again.dynamic_partitions_requests == []
    assert read_cursor(again.cursor) == {DEFAULT_TEACHER, SCOUT}


def test_a_restart_that_lost_the_cursor_does_not_start_a_registered_release_again(simulator, instance):
    simulator.set_models([DEFAULT_TEACHER, SCOUT])
    first = _tick(instance)
    _apply(instance, first)
    assert set(instance.get_dynamic_partitions("teacher_models")) == {DEFAULT_TEACHER, SCOUT}

    after_restart = _tick(instance, cursor=None)
    assert after_restart.run_requests == [] and after_restart.dynamic_partitions_requests == []


def test_the_first_tick_on_a_fresh_deployment_treats_every_match_as_new(simulator, instance):
    simulator.set_models([DEFAULT_TEACHER, SCOUT, "mistralai/Mistral-7B-Instruct-v0.3", "meta-llama/Llama-Guard-3-8B"])
    result = _tick(instance)
    assert sorted(r.partition_key for r in result.run_requests) == [DEFAULT_TEACHER, SCOUT]
    assert len({r.run_key for r in result.run_requests}) == 2
    assert sorted(result.dynamic_partitions_requests[0].partition_keys) == [DEFAULT_TEACHER, SCOUT]


def test_the_release_pattern_comes_from_the_environment(simulator, instance, monkeypatch):
    simulator.set_models([DEFAULT_TEACHER, SCOUT])
    monkeypatch.setenv("DISTILLSET_RELEASE_PATTERN", r"^meta-llama/Llama-4")
    assert [r.partition_key for r in _tick(instance).run_requests] == [SCOUT]
    monkeypatch.setenv("DISTILLSET_RELEASE_PATTERN", r"(broken")
    with pytest.raises(SettingsError, match="DISTILLSET_RELEASE_PATTERN"):
        load_settings()  # a deployment refuses to load with a broken pattern, naming the variable
    monkeypatch.delenv("DISTILLSET_RELEASE_PATTERN")
    # A broken pattern given in the launchpad (resource config) skips the tick with the reason.
    resources = {k: v for k, v in build_resources(load_settings()).items() if k in ("teacher",)}
    resources["release_source"] = ReleaseSourceResource(release_pattern=r"(broken")
    context = dg.build_sensor_context(
        instance=instance, sensor_name=new_teacher_release_sensor.name, resources=resources
    )
    skipped = new_teacher_release_sensor(context)
    assert isinstance(skipped, dg.SkipReason) and "(broken" in skipped.skip_message


def test_an_unreachable_endpoint_skips_the_tick_with_the_reason(instance, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("TEACHER_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("TEACHER_API_KEY", SECRET)
    cursor = json.dumps({"seen": [DEFAULT_TEACHER]})
    result = _tick(instance, cursor)
    assert isinstance(result, dg.SkipReason)
    assert "unreachable" in result.skip_message and f"127.0.0.1:{port}" in result.skip_message
    assert SECRET not in result.skip_message


def test_a_rejected_key_skips_without_showing_the_key(simulator, instance, monkeypatch):
    monkeypatch.setenv("TEACHER_API_KEY", SECRET + "-revoked")
    result = _tick(instance)
    assert isinstance(result, dg.SkipReason) and "401" in result.skip_message
    assert SECRET not in result.skip_message


def test_no_source_configured_skips_with_how_to_configure_one(instance, monkeypatch):
    for name in ("TEACHER_BASE_URL", "DISTILLSET_RELEASE_HUB_URL"):
        monkeypatch.delenv(name, raising=False)
    result = _tick(instance)
    assert isinstance(result, dg.SkipReason)
    assert "TEACHER_BASE_URL" in result.skip_message and "DISTILLSET_RELEASE_HUB_URL" in result.skip_message


def test_the_key_never_reaches_the_cursor_or_the_log(simulator, instance, capfd):
    simulator.set_models([DEFAULT_TEACHER, SCOUT])
    result = _tick(instance)
    assert len(result.run_requests) == 2
    assert SECRET not in result.cursor
    # Outside the daemon the sensor's logger writes to stderr.
    logged = capfd.readouterr().err
    assert SCOUT in logged  # the sensor did log the new releases...
    assert SECRET not in logged  # ...and nothing secret


def test_the_sensor_is_stopped_until_turned_on_and_polls_hourly_by_default():
    assert new_teacher_release_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert new_teacher_release_sensor.minimum_interval_seconds == 3600
    assert new_teacher_release_sensor.job_name == "distill_job"


def test_the_interval_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("DISTILLSET_RELEASE_SENSOR_INTERVAL_S", "600")
    assert build_release_sensor(load_settings().refresh).minimum_interval_seconds == 600
    for bad in ("ten", "5"):
        monkeypatch.setenv("DISTILLSET_RELEASE_SENSOR_INTERVAL_S", bad)
        with pytest.raises(SettingsError, match="DISTILLSET_RELEASE_SENSOR_INTERVAL_S"):
            load_settings()


def test_an_unreadable_cursor_counts_as_empty_and_registered_partitions_still_count(simulator, instance):
    simulator.set_models([DEFAULT_TEACHER, SCOUT])
    instance.add_dynamic_partitions("teacher_models", [DEFAULT_TEACHER])
    for unreadable in ("not json", "[1, 2]", '{"seen": 5}'):
        result = _tick(instance, cursor=unreadable)
        assert [r.partition_key for r in result.run_requests] == [SCOUT]


def test_the_project_definitions_carry_the_sensor_on_distill_job():
    from orchestration.definitions import defs

    sensor = defs.resolve_sensor_def("new_teacher_release_sensor")
    assert sensor.job_name == "distill_job"
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
