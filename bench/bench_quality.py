"""Benchmark: SQL quality scoring throughput and memory against reading the same rows.

Generates ``--rows`` synthetic rows (English and Chinese answers, refusals, GSM8K-style answers
with references, code blocks, tables, loops, truncations), writes them to Parquet, then in child
processes (so each peak RSS is its own) measures:

* ``read``: ``polars.read_parquet`` of the file (the floor any scorer pays), and one polars regex
  pass over the answers (the least a single rule costs), both in the same child;
* ``score``: reading the file plus ``distillset.quality.score.score_frame``.

Prints a table with rows/s, the score/read time ratio and peak RSS. Absolute times depend on the
machine; the ratio is the figure to compare across runs.

Usage: ``python bench/bench_quality.py [--rows 1000000] [--repeats 1]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_EN_PROMPTS = [
    "Explain how a hash table handles collisions, with an example in Python.",
    "Write a short poem about the sea at night.",
    "What are the main causes of inflation? Give three examples.",
    "Summarize the plot of Hamlet in a paragraph.",
]
_ZH_PROMPTS = [
    "请解释一下快速排序算法的原理，并给出时间复杂度。",
    "用三句话介绍一下长城的历史。",
    "如何在Python中读取一个CSV文件？",
]
_EN_ANSWERS = [
    "A hash table stores keys in buckets chosen by a hash function. When two keys land in the same "
    "bucket, the table resolves the collision either by chaining (each bucket holds a small list) or by "
    "open addressing (probing for the next free slot).\n\n```python\ntable = {}\ntable['a'] = 1\n"
    "print(table['a'])\n```\n\nChaining keeps insertion simple; open addressing is friendlier to caches.",
    "The sea at night is a quiet engine,\nits dark breath folding over stones,\nthe moon a coin it never "
    "spends,\nthe shore a promise it keeps alone.",
    "Inflation usually comes from three sources:\n\n1. Demand-pull: spending grows faster than output.\n"
    "2. Cost-push: wages or energy prices rise and firms pass them on.\n3. Built-in expectations: "
    "workers and firms expect prices to rise and set wages accordingly.\n\n| cause | example |\n|---|---|\n"
    "| demand | stimulus checks |\n| cost | oil shock |",
    "Prince Hamlet learns from his father's ghost that his uncle Claudius murdered the king. He feigns "
    "madness, stages a play to test Claudius's guilt, accidentally kills Polonius, and finally duels "
    "Laertes; almost everyone dies, and Fortinbras takes the crown.",
    "I'm sorry, but I can't help with that request.",
    "As an AI language model, I don't have personal opinions, but here is a balanced overview.",
    "The answer is the answer is the answer is the answer is the answer is the answer is the answer is "
    "the answer is the answer is the answer is the answer is the answer is the answer is the answer is",
]
_ZH_ANSWERS = [
    "快速排序选择一个基准元素，把数组分成小于基准和大于基准的两部分，然后递归地排序这两部分。平均时间复杂度是"
    "O(n log n)，最坏情况是O(n^2)。",
    "长城始建于春秋战国时期，秦朝将各段城墙连接起来。明朝大规模重修，形成了今天看到的样子。它是世界文化遗产。",
    "在Python中可以使用csv模块或者pandas：\n\n```python\nimport pandas as pd\ndf = pd.read_csv('data.csv')\n```\n\n"
    "这样就可以得到一个DataFrame。",
    "抱歉，我无法提供这方面的帮助。",
    "作为一个AI语言模型，我没有个人观点。",
]
_MATH = [
    (
        "Natalia sold 48 clips in April and half as many in May. How many clips did she sell?",
        "In May she sold 48/2 = 24 clips.\nAltogether 48 + 24 = 72 clips.\n#### 72",
        "72",
    ),
    (
        "Weng earns $12 an hour. She worked 50 minutes. How much did she earn?",
        "She earns 12/60 = $0.2 per minute, so 0.2 x 50 = $10.\nThe answer is $10.",
        "10",
    ),
    ("A shop sells 1,234 apples a day. How many in one day?", "It sells \\boxed{1,234} apples.", "1234"),
    (
        "Betty needs $100 and has half. Parents give $15, grandparents twice that. How much more?",
        "She has 50 + 15 + 30 = 95, so she needs 6 more.",
        "5",
    ),
]


def synthetic_frame(rows: int, seed: int = 7) -> pl.DataFrame:
    """``rows`` synthetic rows drawn from the templates above (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, size=rows, p=[0.55, 0.25, 0.20])
    en_p, en_a = rng.integers(0, len(_EN_PROMPTS), rows), rng.integers(0, len(_EN_ANSWERS), rows)
    zh_p, zh_a = rng.integers(0, len(_ZH_PROMPTS), rows), rng.integers(0, len(_ZH_ANSWERS), rows)
    math = rng.integers(0, len(_MATH), rows)
    prompts = np.where(
        kind == 0,
        np.array(_EN_PROMPTS, dtype=object)[en_p],
        np.where(
            kind == 1, np.array(_ZH_PROMPTS, dtype=object)[zh_p], np.array([m[0] for m in _MATH], dtype=object)[math]
        ),
    )
    answers = np.where(
        kind == 0,
        np.array(_EN_ANSWERS, dtype=object)[en_a],
        np.where(
            kind == 1, np.array(_ZH_ANSWERS, dtype=object)[zh_a], np.array([m[1] for m in _MATH], dtype=object)[math]
        ),
    )
    references = np.where(kind == 2, np.array([m[2] for m in _MATH], dtype=object)[math], None)
    finish = np.where(rng.random(rows) < 0.03, "length", "stop")
    return pl.DataFrame(
        {
            "row_key": pl.int_range(rows, eager=True).cast(pl.Utf8),
            "prompt_text": prompts.tolist(),
            # A row number makes every answer distinct, as real answers are.
            "response": [f"{a} (#{i})" for i, a in enumerate(answers.tolist())],
            "reference": references.tolist(),
            "finish_reason": finish.tolist(),
        },
        schema={
            "row_key": pl.Utf8,
            "prompt_text": pl.Utf8,
            "response": pl.Utf8,
            "reference": pl.Utf8,
            "finish_reason": pl.Utf8,
        },
    )


def _child(mode: str, path: str) -> None:
    # Imported before the clock starts: the comparison is per row, not interpreter start-up.
    from distillset.quality.score import QualityThresholds, score_frame

    start, start_cpu = time.perf_counter(), _cpu_s()
    frame = pl.read_parquet(path)
    read_s, read_cpu_s = time.perf_counter() - start, _cpu_s() - start_cpu
    passed = regex_s = None
    if mode == "score":
        scores = score_frame(frame, thresholds=QualityThresholds(), extra_patterns=None)
        passed = int(scores.get_column("passed").sum())
    total_s, total_cpu_s = time.perf_counter() - start, _cpu_s() - start_cpu
    if mode == "read":
        # One vectorized regex pass over the answers: the least a single rule costs.
        regex_start = time.perf_counter()
        frame.select(pl.col("response").str.contains(r"(?i)i can't help|as an ai").sum())
        regex_s = time.perf_counter() - regex_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "rows": frame.height,
                "read_s": read_s,
                "total_s": total_s,
                "read_cpu_s": read_cpu_s,
                "total_cpu_s": total_cpu_s,
                "peak_mb": peak_mb,
                "passed": passed,
                "regex_s": regex_s,
            }
        )
    )


def _cpu_s() -> float:
    # CPU time (all threads) as well as wall time: on a shared, noisy machine it moves less.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run_child(mode: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each child; the best time is kept")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.parquet"
        synthetic_frame(args.rows).write_parquet(path)
        size_mb = path.stat().st_size / 1e6
        reads = [_run_child("read", path) for _ in range(args.repeats)]
        scores = [_run_child("score", path) for _ in range(args.repeats)]
    read = min(reads, key=lambda r: r["total_s"])
    score = min(scores, key=lambda r: r["total_s"])
    score_only_s = score["total_s"] - score["read_s"]
    score_only_cpu_s = score["total_cpu_s"] - score["read_cpu_s"]
    print(
        f"rows: {args.rows:,}  parquet: {size_mb:.1f} MB  passed: {score['passed']:,} "
        f"({score['passed'] / args.rows:.1%})"
    )
    header = f"{'stage':<22}{'wall s':>9}{'cpu s':>9}{'rows/s (wall)':>15}{'peak RSS MB':>13}{'x read (wall)':>15}"
    print(header)
    print("-" * len(header))
    stages = [
        ("read parquet (polars)", read["total_s"], read["total_cpu_s"], read["peak_mb"]),
        ("score_frame only", score_only_s, score_only_cpu_s, None),
        ("read + score_frame", score["total_s"], score["total_cpu_s"], score["peak_mb"]),
    ]
    print(
        f"{'one regex pass (polars)':<22}{read['regex_s']:>9.2f}{'':>9}{args.rows / read['regex_s']:>15,.0f}"
        f"{'-':>13}{read['regex_s'] / read['total_s']:>15.1f}"
    )
    for name, wall, cpu, peak in stages:
        peak_text = f"{peak:.0f}" if peak is not None else "-"
        print(
            f"{name:<22}{wall:>9.2f}{cpu:>9.2f}{args.rows / wall:>15,.0f}{peak_text:>13}{wall / read['total_s']:>15.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
