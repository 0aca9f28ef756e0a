"""Benchmark: distillset's own instructions per teacher request, with the SDK call stubbed out.

``bench_teacher_instructions.py`` counts the whole client (SDK, aiohttp, ours). This counts what
``distillset.teacher.generate`` adds around the call: the SDK's ``chat.completions.create`` is
replaced by a coroutine that yields once (``asyncio.sleep(0)``) and returns a prebuilt
``ChatCompletion``, so no HTTP and no SDK work is counted, while ledger lookups, claims, writes,
answer records, rows and frame chunks are. Instructions (valgrind cachegrind, ``--cache-sim=no``)
for N and 2N requests, difference over N, for each checkout given (its ``distillset`` imported
through PYTHONPATH; this script and ``bench_teacher.py``'s input come from this checkout, so an
older tree needs no copy of it).

Usage (needs valgrind; ~5 minutes per tree on the loaded box):
    python bench/bench_teacher_stub_instructions.py --trees . /tmp/baseline-checkout --n 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_BASE_URL = "http://127.0.0.1:9/v1"  # never contacted: the call is stubbed


def _child(n: int) -> None:
    from openai.resources.chat.completions import AsyncCompletions
    from openai.types.chat import ChatCompletion

    from distillset.settings import TeacherSettings
    from distillset.teacher.endpoints import TeacherEndpoint
    from distillset.teacher.generate import generate
    from distillset.teacher.ledger import Ledger

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_teacher as bt

    settings = TeacherSettings(base_url=_BASE_URL, max_concurrency=64)
    response = ChatCompletion.model_validate(
        {
            "id": "stub",
            "object": "chat.completion",
            "created": 1,
            "model": settings.model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "A fixed answer of some length for the bench."},
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
        }
    )

    async def create(self, **_kwargs):
        await asyncio.sleep(0)  # a real call suspends: keep the workers interleaving
        return response

    AsyncCompletions.create = create
    endpoint = TeacherEndpoint(base_url=_BASE_URL, api_key=None, simulated=False)
    with tempfile.TemporaryDirectory() as tmp:
        for k, m in enumerate((200, n)):  # warm-up, then the counted run
            if m:
                result = generate(bt.conversations(m), settings, endpoint, Ledger(Path(tmp) / f"l{k}.sqlite"))
                assert result.stats.requests_paid == m, result.stats


def _instructions(tree: str, n: int) -> int:
    root = Path(tree).resolve()
    out = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
        + [sys.executable, __file__, "--child", "--n", str(n)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    ).stderr
    return int(re.search(r"I\s+refs:\s+([\d,]+)", out).group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--trees", nargs="+", default=[str(Path(__file__).resolve().parent.parent)])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.n)
        return
    jobs = [(tree, k * args.n) for tree in args.trees for k in (1, 2)]
    with ThreadPoolExecutor(2) as pool:
        counted = dict(zip(jobs, pool.map(lambda job: _instructions(*job), jobs), strict=True))
    print("| `generate` with a stub SDK call | instructions per request |")
    print("|---|---:|")
    for tree in args.trees:
        per = (counted[(tree, 2 * args.n)] - counted[(tree, args.n)]) / args.n
        print(f"| {tree} | {per / 1e3:.0f} k |")


if __name__ == "__main__":
    main()
