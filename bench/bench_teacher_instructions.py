"""Benchmark: client instructions per request, teacher stage vs the bare SDK loop (noise-free).

On the shared 2-core box wall-clock ratios swing by 2x with the load; the number of instructions
the client executes does not (two runs agree to ~0.1%). This counts them with valgrind's
cachegrind (``--cache-sim=no``) for a run of N and of 2N requests of each client against the
instant bench server of ``bench_teacher.py``; the difference over N is the marginal cost of one
request (imports, warm-up and per-call set-up cancel out). It also counts the cyclic GC's
collections per generation over 3,000 requests (without valgrind).

Usage (needs valgrind; ~10 minutes on the loaded box):
    python bench/bench_teacher_instructions.py            # N = 1000
    python bench/bench_teacher_instructions.py --n 500
"""

from __future__ import annotations

import argparse
import gc
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_teacher as bt  # noqa: E402


def _child(client: str, base_url: str, n: int) -> None:
    run = bt.run_raw if client == "raw" else bt.run_generate
    run(base_url, 200, 64)  # warm-up: imports, connections
    if n:
        run(base_url, n, 64)


def _instructions(client: str, base_url: str, n: int) -> int:
    out = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            client,
            "--base-url",
            base_url,
            "--n",
            str(n),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    return int(re.search(r"I\s+refs:\s+([\d,]+)", out).group(1).replace(",", ""))


def _collections(client: str, base_url: str, n: int = 3000) -> list[int]:
    counts = [0, 0, 0]

    def count(phase: str, info: dict) -> None:
        if phase == "stop":
            counts[info["generation"]] += 1

    run = bt.run_raw if client == "raw" else bt.run_generate
    run(base_url, 300, 64)
    gc.callbacks.append(count)
    try:
        run(base_url, n, 64)
    finally:
        gc.callbacks.remove(count)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.base_url, args.n)
        return
    with bt.BenchServer(0.0) as server:
        jobs = [(c, k * args.n) for c in ("raw", "generate") for k in (1, 2)]
        with ThreadPoolExecutor(2) as pool:
            counted = dict(
                zip(jobs, pool.map(lambda job: _instructions(job[0], server.base_url, job[1]), jobs), strict=True)
            )
        gcs = {c: _collections(c, server.base_url) for c in ("raw", "generate")}
    per = {c: (counted[(c, 2 * args.n)] - counted[(c, args.n)]) / args.n for c in ("raw", "generate")}
    print("| client | instructions per request | raw / client | GC collections per 3,000 requests (gen 0 / 1 / 2) |")
    print("|---|---:|---:|---|")
    for c in ("raw", "generate"):
        print(f"| {c} | {per[c] / 1e6:.3f} M | {per['raw'] / per[c]:.3f}x | {' / '.join(map(str, gcs[c]))} |")


if __name__ == "__main__":
    main()
