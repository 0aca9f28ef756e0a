"""Benchmark: best-of-N cost per kept verified example and coverage, early stop vs fixed N.

For each simulated teacher accuracy (0.3, 0.5, 0.8) and N (1, 2, 4, 8), the teacher stage
(``distillset.teacher.generate``, real HTTP to the simulator on loopback, a fresh ledger each time)
samples the shipped GSM8K prompts with k = 1, verifies every sample with the math verifier, and
``distillset.curation.best_of_n.select_samples`` keeps one verified answer per prompt. Twice: with
early stop (the default) and with a fixed N (a pass-rate window of [0, 1] turns early stop off
while keeping every prompt). Reported: samples paid per prompt, coverage (share of prompts with a
kept verified answer), completion tokens per kept example and the cost per 1,000 kept examples
at $3 / $15 per million prompt / completion tokens (an illustrative hosted 405B price).

Then the verifier throughput (answers per second per verifier, the code sandbox included), from
``bench/bench_verify.py`` at a quick size.

Usage: ``python bench/best_of_n.py [--prompts 240] [--accuracy 0.3 0.5 0.8] [--n 1 2 4 8] [--skip-verifiers]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import polars as pl

from distillset.curation.best_of_n import SelectionPolicy, select_samples
from distillset.settings import TeacherSettings
from distillset.settings.paths import DATA_DIR
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.generate import generate
from distillset.teacher.ledger import Ledger
from distillset.teacher.rows import Conversation
from distillset.verify import VerifiableTask

PRICE_IN, PRICE_OUT = 3.0, 15.0


def _gsm8k(limit: int) -> list[dict]:
    path = DATA_DIR / "sample_prompts" / "gsm8k_train_sample.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit]


def _run(rows: list[dict], accuracy: float, n: int, early_stop: bool, workdir: Path) -> dict:
    key = {r["question"]: r["answer"].rsplit("####", 1)[1].strip().replace(",", "") for r in rows}
    convs = [
        Conversation(f"q{i}", None, [r["question"]], task=VerifiableTask.math(r["answer"])) for i, r in enumerate(rows)
    ]
    window = {} if early_stop else {"pass_rate_min": 0.0, "pass_rate_max": 1.0}
    settings = TeacherSettings(
        samples_per_prompt=n,
        max_concurrency=32,
        price_input_per_mtok=PRICE_IN,
        price_output_per_mtok=PRICE_OUT,
        **window,
    )
    ledger = Ledger(workdir / f"ledger-{accuracy}-{n}-{early_stop}.sqlite")
    started = time.perf_counter()
    with TeacherSimulator(answer_key=key, accuracy=accuracy) as sim:
        endpoint = TeacherEndpoint(base_url=sim.base_url, api_key=None, simulated=True)
        result = generate(convs, settings, endpoint, ledger)
    prompts = pl.DataFrame({"prompt_id": [c.prompt_id for c in convs], "prompt_text": [r["question"] for r in rows]})
    policy = SelectionPolicy(
        samples_per_prompt=n, price_input_per_mtok=PRICE_IN, price_output_per_mtok=PRICE_OUT, **window
    )
    selection = select_samples(result.generations, prompts, policy)
    summary = selection.summary
    kept = summary["examples_kept"]
    answered = result.generations.filter(pl.col("status") == "ok")
    return {
        "samples_per_prompt": summary["samples_paid_per_prompt"],
        "coverage": summary["coverage"] or 0.0,
        "completion_tokens_per_kept": answered["completion_tokens"].sum() / kept if kept else float("nan"),
        "usd_per_1000_kept": 1000 * summary["cost_per_kept_example_usd"] if kept else float("nan"),
        "seconds": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--prompts", type=int, default=240)
    parser.add_argument("--accuracy", type=float, nargs="+", default=[0.3, 0.5, 0.8])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--skip-verifiers", action="store_true")
    args = parser.parse_args(argv)
    rows = _gsm8k(args.prompts)
    print(f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {len(rows)} GSM8K prompts, k = 1\n")
    print(
        "| accuracy | N | policy | samples paid / prompt | coverage | expected coverage "
        "| completion tokens / kept | $ / 1,000 kept | seconds |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench-best-of-n-") as tmp:
        for accuracy in args.accuracy:
            for n in args.n:
                for early_stop in (True, False):
                    if n == 1 and not early_stop:
                        continue  # N = 1 is the same either way
                    r = _run(rows, accuracy, n, early_stop, Path(tmp))
                    print(
                        f"| {accuracy:.1f} | {n} | {'early stop' if early_stop else 'fixed N'} "
                        f"| {r['samples_per_prompt']:.2f} | {r['coverage']:.3f} | {1 - (1 - accuracy) ** n:.3f} "
                        f"| {r['completion_tokens_per_kept']:.0f} | {r['usd_per_1000_kept']:.3f} "
                        f"| {r['seconds']:.1f} |",
                        flush=True,
                    )
    if not args.skip_verifiers:
        import bench_verify

        print("\nVerifier throughput (bench/bench_verify.py, quick size):\n")
        bench_verify.main(["--math-rows", "300", "--code-repeats", "1", "--workers", "1", "2"])


if __name__ == "__main__":
    main()
