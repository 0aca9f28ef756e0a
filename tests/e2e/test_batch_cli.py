"""`distillset run` in batch mode: it waits for its batches with progress, and a kill resumes them.

Protects: with TEACHER_BATCH=true against a real endpoint (the simulator over HTTP, its batches
finishing after a delay), `distillset run` polls every TEACHER_BATCH_POLL_S, prints progress
(batches, lines done, ETA), goes on through the flow and publishes, sending nothing online; a
`kill -9` of the command while it waits leaves the batch at the provider, and the next run picks
it up: every request line is answered exactly once over both runs.
"""

from __future__ import annotations

import os
import signal
import time

from distillset.simulator.batch import BatchFaults
from distillset.simulator.server import TeacherSimulator
from helpers.cli import cli_env, distillset, small_prompt_folder, start_distillset


def _env(tmp_path, simulator: TeacherSimulator) -> dict[str, str]:
    prompts = small_prompt_folder(tmp_path, gsm8k_rows=0, mt_bench_rows=4)
    return cli_env(
        tmp_path, prompts, TEACHER_BASE_URL=simulator.base_url, TEACHER_BATCH="true", TEACHER_BATCH_POLL_S="0.2"
    )


def test_run_waits_for_its_batches_with_progress_and_publishes(tmp_path):
    with TeacherSimulator(batch_faults=BatchFaults(delay_s=1.0)) as simulator:
        result = distillset("run", env=_env(tmp_path, simulator))
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        assert simulator.stats()["completions"] == 0, "batch mode sent requests online"
        assert simulator.batches.stats()["lines_answered"] == 8  # 4 two-turn conversations
        assert len(simulator.batches.created()) == 2  # turn 2 waits for turn 1's batch
    assert "lines done" in output and "eta" in output
    assert "published new version" in output
    assert "8 teacher calls paid (8 through provider batches)" in output


def test_a_killed_run_leaves_its_batch_running_and_the_next_run_resumes_it(tmp_path):
    with TeacherSimulator(batch_faults=BatchFaults(delay_s=3600)) as simulator:
        env = _env(tmp_path, simulator)
        process = start_distillset("run", env=env)
        try:
            deadline = time.monotonic() + 180
            while not any(b["status"] == "in_progress" for b in simulator.batches.created()):
                assert process.poll() is None, process.stdout.read()[-4000:]
                assert time.monotonic() < deadline, "the run never submitted its batch"
                time.sleep(0.1)
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
            process.stdout.close()
        assert len(simulator.batches.created()) == 1
        simulator.batches.faults.delay_s = 0
        result = distillset("run", env=env)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        stats = simulator.batches.stats()
        assert all(count == 1 for count in stats["answered_by_hash"].values()), "a request was submitted twice"
        assert stats["lines_answered"] == 8 and len(simulator.batches.created()) == 2
        assert simulator.stats()["completions"] == 0
