"""Benchmark: answers verified per second, per verifier (distillset.verify).

* ``math``: for every GSM8K test row shipped in ``data/benchmarks/gsm8k_test.jsonl``, responses
  built from its reference in four shapes (boxed, "The final answer is", "**Answer:**" with
  thousands separators, "####"), half of them right and half off by one, checked against the
  full worked-solution reference with ``verify_math``. The first pass over the rows is "cold"
  (nothing parsed yet); a second pass over the same responses shows the parse cache.
* ``code``: the 40 shipped MBPP training-split tasks (``data/code_tasks/mbpp_train_sample.jsonl``)
  with their reference solutions, through ``verify_many`` with 1, 2 and 4 sandbox workers; each
  answer is one isolated subprocess (namespaces, tmpfs, rlimits) running the task's asserts.
* ``ifeval``: for each of the 541 shipped IFEval prompts, a constructed response (a few
  paragraphs with a title, bullets, highlights and a postscript), checked strictly
  (``verify_ifeval``) and strictly + loosely (``ifeval_scores``, nine checker passes per instruction).

Prints a Markdown table. Absolute numbers depend on the machine (and on its load: sandbox runs
are process start-ups, so they scale with free cores).

Usage: ``python bench/bench_verify.py [--math-rows 1319] [--code-repeats 2] [--workers 1 2 4]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from distillset.settings.paths import DATA_DIR
from distillset.verify import (
    SandboxLimits,
    VerifiableTask,
    ifeval_scores,
    task_from_metadata,
    verify_ifeval,
    verify_many,
    verify_math,
)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _math_responses(rows: list[dict]) -> list[tuple[str, str]]:
    pairs = []
    for index, row in enumerate(rows):
        final = int(row["answer"].rsplit("####", 1)[1].strip().replace(",", ""))
        value = final if index % 2 == 0 else final + 1
        shapes = (
            f"Let me compute step by step.\nSo the total is {value}.\nThe final answer is: $\\boxed{{{value}}}$",
            f"First we find the parts, then add them.\nThe final answer is {value}.",
            f"Adding everything up gives the result.\n**Answer: {value:,}**",
            f"Computation done.\n#### {value}",
        )
        pairs.append((shapes[index % 4], row["answer"]))
    return pairs


def bench_math(rows: int) -> list[tuple[str, int, float, str]]:
    pairs = _math_responses(_rows(DATA_DIR / "benchmarks" / "gsm8k_test.jsonl")[:rows])
    results = []
    for label in ("cold", "cached"):
        started = time.perf_counter()
        verdicts = [verify_math(answer, reference) for answer, reference in pairs]
        elapsed = time.perf_counter() - started
        correct = sum(v.passed for v in verdicts)
        results.append((f"math ({label})", len(pairs), elapsed, f"{correct} correct, {len(pairs) - correct} wrong"))
    return results


def bench_code(repeats: int, workers: list[int]) -> list[tuple[str, int, float, str]]:
    rows = _rows(DATA_DIR / "code_tasks" / "mbpp_train_sample.jsonl")
    tasks = [task_from_metadata(None, row) for row in rows] * repeats
    answers = [f"```python\n{row['code']}\n```" for row in rows] * repeats
    limits = SandboxLimits(timeout_s=10)
    results = []
    for count in workers:
        started = time.perf_counter()
        verdicts = verify_many(answers, tasks, code_limits=limits, max_workers=count)
        elapsed = time.perf_counter() - started
        correct = sum(v.passed for v in verdicts)
        results.append((f"code, {count} worker(s)", len(answers), elapsed, f"{correct} of {len(answers)} correct"))
    return results


_IFEVAL_RESPONSE = (
    "<<A Short Report>>\n\n"
    "This report answers the request in a few paragraphs. It stays *focused* on the question and "
    "keeps the **main points** easy to find.\n\n"
    "* the first point is about scope\n* the second point is about time\n* the third point is about cost\n\n"
    "SECTION 1\nThe details follow here, with [placeholder] values to fill in later.\n\n"
    "SECTION 2\nThe conclusion is short: the plan works, and it can start next week.\n\n"
    "P.S. Any other questions?"
)


def bench_ifeval() -> list[tuple[str, int, float, str]]:
    rows = _rows(DATA_DIR / "benchmarks" / "ifeval.jsonl")
    tasks = [VerifiableTask.ifeval(row["instruction_id_list"], row["kwargs"]) for row in rows]
    started = time.perf_counter()
    verdicts = [verify_ifeval(_IFEVAL_RESPONSE, task) for task in tasks]
    strict = time.perf_counter() - started
    started = time.perf_counter()
    scores = ifeval_scores(
        [_IFEVAL_RESPONSE] * len(rows), [r["instruction_id_list"] for r in rows], [r["kwargs"] for r in rows]
    )
    both = time.perf_counter() - started
    followed = sum(v.passed for v in verdicts)
    return [
        ("ifeval (strict verdict)", len(rows), strict, f"{followed} prompts fully followed"),
        ("ifeval (strict + loose scores)", len(rows), both, f"prompt_loose {scores['prompt_loose']:.3f}"),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--math-rows", type=int, default=1319)
    parser.add_argument("--code-repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    results = bench_math(args.math_rows) + bench_code(args.code_repeats, args.workers) + bench_ifeval()
    print(f"Machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, euid {os.geteuid()}\n")
    print("| verifier | answers | seconds | answers/s | result |")
    print("|---|---:|---:|---:|---|")
    for label, count, elapsed, note in results:
        print(f"| {label} | {count:,} | {elapsed:.2f} | {count / elapsed:,.0f} | {note} |")


if __name__ == "__main__":
    main()
