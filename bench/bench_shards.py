"""Benchmark: one teacher's whole `distillset run` in 1, 2 and 4 prompt shards (issue 14).

The teacher is the loopback simulator with 200 ms per answer, in this process; each row is a
fresh ``DISTILLSET_HOME`` with its own SQLite ledger, the same prompt files (the shipped GSM8K and
MT-Bench samples, 320 rows) and ``TEACHER_MAX_CONCURRENCY`` requests in flight per run, executed
in process (``DISTILLSET_EXECUTOR=in_process``): with N shards the N shard runs are N processes on
this machine, each with its own concurrency, which is what N workers of a cluster give a teacher.
Reported: the wall time of the whole command, the teacher stage's wall time (first shard step
start to last shard step end, from the Dagster instance), the requests paid (each exactly once:
the simulator's count per request is checked) and the answers per second of the teacher stage.

Usage:
    python bench/bench_shards.py                       # shards 1, 2, 4; 4 in flight per run
    python bench/bench_shards.py --shards 1 2 --concurrency 8
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))


def _prompts(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sample = PROJECT / "data" / "sample_prompts"
    for name in ("gsm8k_train_sample.jsonl", "mt_bench_questions.jsonl"):
        shutil.copyfile(sample / name, folder / name)
        shutil.copyfile(sample / f"{name}.license", folder / f"{name}.license")
    return folder


def _teacher_window(dagster_home: Path) -> float:
    """Seconds from the first teacher_generations step start to the last one's end."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        starts, ends = [], []
        for run in instance.get_runs():
            for entry in instance.all_logs(run.run_id):
                event = entry.dagster_event
                if event is None or event.step_key != "teacher_generations":
                    continue
                if event.event_type_value == "STEP_START":
                    starts.append(entry.timestamp)
                elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                    ends.append(entry.timestamp)
        return max(ends) - min(starts)


def run_one(shards: int, concurrency: int, base_url: str, root: Path, prompts: Path) -> dict:
    home = root / f"home-{shards}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISTILLSET_", "TEACHER_", "DAGSTER_"))}
    env.update(
        DISTILLSET_HOME=str(home),
        DISTILLSET_PROMPTS_URL=str(prompts),
        DISTILLSET_SCORECARD_LIMIT="0",
        DISTILLSET_SHARDS=str(shards),
        TEACHER_BASE_URL=base_url,
        TEACHER_MAX_CONCURRENCY=str(concurrency),
        DISTILLSET_GATE_MIN_VERIFIABLE_ACCURACY="0",
        DISTILLSET_GATE_MIN_PASS_RATE="0",
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "run"], env=env, cwd=PROJECT, capture_output=True, text=True
    )
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"shards={shards}: distillset run failed\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return {"wall": wall, "teacher": _teacher_window(home / "dagster")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight per run")
    args = parser.parse_args()

    from distillset.simulator.server import TeacherSimulator

    print(f"load average before: {os.getloadavg()}")
    print("| shards | in flight per run | paid | paid twice | teacher stage s | answers/s | whole run s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        root = Path(tmp)
        prompts = _prompts(root / "prompts")
        for shards in args.shards:
            # A simulator per row: its counts are that row's requests only.
            with TeacherSimulator(latency_s=0.2) as sim:
                row = run_one(shards, args.concurrency, sim.base_url, root, prompts)
                counts = sim.stats()["completions_by_hash"]
            paid = sum(counts.values())
            twice = sum(1 for c in counts.values() if c > 1)
            print(
                f"| {shards} | {args.concurrency} | {paid} | {twice} | {row['teacher']:.1f} | "
                f"{paid / row['teacher']:.0f} | {row['wall']:.1f} |",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
