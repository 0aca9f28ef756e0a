"""Batch mode in Dagster: the run submits and ends pending, the sensor launches the run that ingests.

Protects: with TEACHER_BATCH=true and a real endpoint (the simulator over HTTP, through
TEACHER_BASE_URL), `teacher_generations` submits its batches and ends without a materialization
(an observation says the batches are pending) and nothing downstream runs; `teacher_batch_sensor`
skips while the provider is still working, then requests a run of `distill_job` for the partition
once the batches finished; that run ingests the answers, submits the second turn of the MT-Bench
conversations, and the run after it ingests those and publishes a training set; no request is
ever sent online and the manifest counts the answers that came through batches.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from distillset.settings import load_settings
from distillset.settings.paths import DATA_DIR
from distillset.simulator.batch import BatchFaults
from distillset.simulator.server import TeacherSimulator
from helpers.flow import MODEL, last_metadata, materialize_flow, step_failures
from orchestration.batch_sensor import build_batch_sensor
from orchestration.resources import build_resources


def _tick(instance: dg.DagsterInstance):
    sensor = build_batch_sensor(load_settings().teacher.batch_poll_s)
    resources = {k: v for k, v in build_resources(load_settings()).items() if k in ("teacher", "catalog_db")}
    return sensor(dg.build_sensor_context(instance=instance, sensor_name=sensor.name, resources=resources))


def test_the_sensor_path_ingests_finished_batches_and_publishes(tmp_path, monkeypatch):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    lines = (DATA_DIR / "sample_prompts" / "mt_bench_questions.jsonl").read_text().splitlines(keepends=True)[:8]
    (prompts / "writing.jsonl").write_text("".join(lines))
    (prompts / "writing.jsonl.license").write_text("Apache-2.0\n")
    for name, value in {
        "DISTILLSET_HOME": str(tmp_path / "home"),
        "DISTILLSET_PROMPTS_URL": str(prompts),
        "DISTILLSET_SCORECARD_LIMIT": "0",
        "TEACHER_BATCH": "true",
    }.items():
        monkeypatch.setenv(name, value)
    with TeacherSimulator(batch_faults=BatchFaults(delay_s=3600)) as endpoint:
        monkeypatch.setenv("TEACHER_BASE_URL", endpoint.base_url)
        with dg.DagsterInstance.ephemeral() as instance:
            first = materialize_flow(instance)
            assert first.success, step_failures(first)
            assert not first.asset_materializations_for_node("teacher_generations")
            assert not first.asset_materializations_for_node("training_set")
            [observation] = [
                e.event_specific_data.asset_observation
                for e in first.all_events
                if e.event_type_value == "ASSET_OBSERVATION"
                and e.event_specific_data.asset_observation.asset_key.path == ["teacher_generations"]
            ]
            assert observation.metadata["batch_status"].value == "pending"
            assert observation.metadata["batch/pending_lines"].value == 8

            waiting = _tick(instance)
            assert "still running" in waiting.skip_message

            endpoint.batches.faults.delay_s = 0
            published = None
            run_keys = []
            for _ in range(4):  # turn 1, turn 2, then nothing pending: bounded, never a loop for ever
                tick = _tick(instance)
                if isinstance(tick, dg.SkipReason):
                    break
                [request] = tick.run_requests
                assert (
                    request.partition_key == MODEL and request.tags["distillset/launched_by"] == "teacher_batch_sensor"
                )
                run_keys.append(request.run_key)
                run = materialize_flow(instance)
                assert run.success, step_failures(run)
                if run.asset_materializations_for_node("training_set"):
                    published = last_metadata(run, "training_set")
                    teacher = last_metadata(run, "teacher_generations")
                    break
        assert endpoint.stats()["completions"] == 0, "batch mode sent requests online"
        assert endpoint.batches.stats()["lines_answered"] == 16  # 8 two-turn conversations
    assert len(run_keys) == 2 and len(set(run_keys)) == 2
    assert published is not None and published["published_new_version"] is True
    assert teacher["teacher/batch_answers"] == 8  # the last run ingested the second turns
    manifest = json.loads((Path(published["path"]) / "manifest.json").read_text())
    batches = manifest["teacher"]["batches"]
    assert batches["answers"] == batches["calls"] > 0 and batches["price_factor"] == 0.5
    card = (Path(published["path"]) / "README.md").read_text()
    assert "came through the Batch API" in card


def test_the_sensor_skips_with_a_reason_when_there_is_nothing_to_poll(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLSET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TEACHER_BASE_URL", raising=False)
    with dg.DagsterInstance.ephemeral() as instance:
        assert "no TEACHER_BASE_URL" in _tick(instance).skip_message
        with TeacherSimulator() as endpoint:
            monkeypatch.setenv("TEACHER_BASE_URL", endpoint.base_url)
            assert "no ledger yet" in _tick(instance).skip_message
            (tmp_path / "home").mkdir()
            from distillset.teacher.ledger import Ledger

            Ledger(tmp_path / "home" / "ledger.sqlite")
            assert "no open provider batches" in _tick(instance).skip_message
