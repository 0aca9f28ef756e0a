"""A dead run never blocks the next one; `distillset run` never waits silently; signals stop it.

Protects:
- a run killed with SIGKILL inside any stage (prompt stages, teacher generation, curation,
  scoring, examples, publishing) leaves nothing that blocks the next run: the next
  `distillset run` fails the dead run, frees its pool slot, completes by itself, pays only for
  what was in flight, and publishes a complete version;
- a pool slot held by a LIVE run makes `distillset run` say what it waits for (which pool, which
  run, alive) and give up after `--wait-timeout` with exit code 3; a slot held by a run whose
  process is gone is freed and the run goes on;
- SIGTERM and SIGINT stop a run at any moment (here: in the middle of the teacher stage) with exit
  code 143 / 130, the run is marked canceled, and the next run finishes the work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest

from assets.run_owner import owner_tags
from distillset.publish.reader import list_versions, verify_version
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.ledger import Ledger
from helpers.cli import cli_env, distillset, small_prompt_folder, start_distillset
from orchestration.run import open_instance

STAGES = [
    "raw_prompts",
    "prompt_pool",
    "teacher_generations",
    "deduplicated_generations",
    "quality_scores",
    "training_examples",
    "training_set",
]
CONCURRENCY = 4
POOL = "distillset_catalog"
# An endpoint set in TEACHER_BASE_URL (here the simulator) is never handed the GSM8K references, so
# it answers word problems by luck: the accuracy and pass-rate gates are not what these tests test.
RELAXED_GATES = {"DISTILLSET_GATE_MIN_VERIFIABLE_ACCURACY": "0", "DISTILLSET_GATE_MIN_PASS_RATE": "0"}


def _instance(env: dict[str, str]) -> dg.DagsterInstance:
    # Under the home's lock, as distillset opens it: a first run may be creating the storage.
    return open_instance(Path(env["DISTILLSET_HOME"]) / "dagster")


def _latest_run(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    runs = instance.get_runs(limit=1)
    return runs[0] if runs else None


def _wait_for_step_start(env: dict[str, str], before: set[str], step: str, process: subprocess.Popen) -> str:
    """The id of the new run once it has started ``step`` (the instance is read as a user's UI would)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, f"distillset run ended before {step} started:\n{process.stdout.read()}"
        if not _run_ids(env) - before:
            time.sleep(0.05)
            continue
        with _instance(env) as instance:
            run = _latest_run(instance)
            if run is not None and run.run_id not in before:
                started = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
                if any(entry.step_key == step for entry in started):
                    return run.run_id
        time.sleep(0.05)
    pytest.fail(f"step {step} did not start within 180 s")


def _run_ids(env: dict[str, str]) -> set[str]:
    if not os.path.exists(os.path.join(env["DISTILLSET_HOME"], "dagster", "dagster.yaml")):
        return set()
    with _instance(env) as instance:
        return {run.run_id for run in instance.get_runs()}


def test_a_run_killed_in_any_stage_never_blocks_the_next_one(tmp_path):
    prompts = small_prompt_folder(tmp_path, gsm8k_rows=20, mt_bench_rows=5)
    requests = 20 + 5 * 2  # MT-Bench rows are two-turn
    with TeacherSimulator(latency_s=0.1) as sim:
        env = cli_env(
            tmp_path, prompts, TEACHER_BASE_URL=sim.base_url, TEACHER_MAX_CONCURRENCY=str(CONCURRENCY), **RELAXED_GATES
        )
        killed = []
        for stage in STAGES:
            before = _run_ids(env)
            process = start_distillset("run", env=env)
            run_id = _wait_for_step_start(env, before, stage, process)
            process.kill()  # SIGKILL: no cleanup at all; the worker dies with it (PR_SET_PDEATHSIG)
            process.communicate(timeout=60)
            killed.append(run_id)
        paid_while_killing = sim.stats()["completions"]

        done = distillset("run", env=env, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "marked failed" in done.stdout, done.stdout  # the last killed run was found dead and failed
        assert "published new version" in done.stdout
        # Every answer paid while killing was kept (the teacher stage was killed once: at most its
        # requests in flight were paid again), and nothing was paid twice after that.
        assert sim.stats()["completions"] <= requests + CONCURRENCY, (paid_while_killing, sim.stats()["completions"])
        assert Ledger(tmp_path / "home" / "ledger.sqlite").count_answers() == requests

    storage = str(tmp_path / "home" / "training_sets")
    versions = list_versions(storage, "distill-llama-3-1-405b-instruct")
    assert versions and all(
        verify_version(storage, "distill-llama-3-1-405b-instruct", v.version) == [] for v in versions
    )
    with _instance(env) as instance:
        for run_id in killed:
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE, run_id
        assert not instance.event_log_storage.get_concurrency_info(POOL).claimed_slots


def _hold_pool_slot(env: dict[str, str], tags: dict[str, str]) -> str:
    """A run record holding the catalog pool's one slot, owned by the process ``tags`` name."""
    assert distillset("run", env=env).returncode == 0  # a real first run: the instance and the pool exist
    with _instance(env) as instance:
        run_id = str(uuid.uuid4())
        instance.add_run(
            dg.DagsterRun(job_name="distill_job", run_id=run_id, status=dg.DagsterRunStatus.STARTED, tags=tags)
        )
        status = instance.event_log_storage.claim_concurrency_slot(POOL, run_id, "raw_prompts")
        assert status.is_claimed
    return run_id


def test_a_slot_held_by_a_live_run_is_waited_for_then_given_up_with_a_clear_message(tmp_path):
    env = cli_env(tmp_path, small_prompt_folder(tmp_path, gsm8k_rows=5))
    holder = _hold_pool_slot(env, owner_tags(os.getpid()))  # this test process: alive
    started = time.monotonic()
    result = distillset("run", "--wait-timeout", "4", env=env, timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr
    assert time.monotonic() - started < 90
    assert f"waits for a slot of pool '{POOL}', held by run {holder[:8]} step raw_prompts (alive)" in result.stdout
    assert "giving up" in result.stdout and "--wait-timeout 4s" in result.stdout
    with _instance(env) as instance:
        stopped = _latest_run(instance)
        assert stopped.status == dg.DagsterRunStatus.CANCELED
        assert instance.get_run_by_id(holder).status == dg.DagsterRunStatus.STARTED  # a live run is left alone


def test_a_slot_held_by_a_dead_run_is_freed_and_the_run_goes_on(tmp_path):
    env = cli_env(tmp_path, small_prompt_folder(tmp_path, gsm8k_rows=5))
    gone = subprocess.Popen(["true"])
    gone.wait()
    holder = _hold_pool_slot(env, owner_tags(gone.pid) | {"distillset/pid": str(gone.pid)})
    result = distillset("run", "--wait-timeout", "60", env=env, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"run {holder} (distill_job) had died" in result.stdout
    with _instance(env) as instance:
        assert instance.get_run_by_id(holder).status == dg.DagsterRunStatus.FAILURE


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_run_mid_stage_and_the_next_run_finishes(tmp_path, signum, code):
    prompts = small_prompt_folder(tmp_path, gsm8k_rows=0, mt_bench_rows=12)
    requests = 24  # two turns each
    with TeacherSimulator(latency_s=0.3) as sim:
        env = cli_env(tmp_path, prompts, TEACHER_BASE_URL=sim.base_url, TEACHER_MAX_CONCURRENCY="2", **RELAXED_GATES)
        process = start_distillset("run", env=env)
        run_id = _wait_for_step_start(env, set(), "teacher_generations", process)
        # Some answers paid, most not: wait for the first one rather than a fixed time (a loaded
        # machine may take seconds from the step's start to its first request).
        deadline = time.monotonic() + 120
        while sim.stats()["completions"] == 0 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        stopped_at = time.monotonic()
        process.send_signal(signum)
        output, _ = process.communicate(timeout=60)
        assert process.returncode == code, output
        assert time.monotonic() - stopped_at < 30
        assert f"{signal.Signals(signum).name} received" in output and "STOPPED by" in output
        paid = sim.stats()["completions"]
        assert 0 < paid < requests
        with _instance(env) as instance:
            # Dagster records an interrupted step's run as failed; one killed after the grace, canceled.
            assert instance.get_run_by_id(run_id).status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
            assert not instance.event_log_storage.get_concurrency_info(POOL).claimed_slots

        done = distillset("run", env=env, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        assert sim.stats()["completions"] <= requests + 2
