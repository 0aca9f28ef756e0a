"""Benchmark: client instructions per request, teacher stage vs the bare SDK loop (low noise).

On the shared 2-core box wall-clock ratios swing by 2x with the load; the number of instructions
the client executes much less (two runs agreed to ~0.1% at load 7-12, but `generate`'s count,
whose ledger-writer thread and GC depend on thread timing, varied by 4% at load 12-18:
bench/README.md). This counts them with valgrind's cachegrind (``--cache-sim=no``) for a run
of N and of 2N requests of each client against the instant bench server of ``bench_teacher.py``;
the difference over N is the marginal cost of one request (imports, warm-up and per-call set-up
cancel out). It also counts the cyclic GC's collections per generation over 3,000 requests
(without valgrind).

Usage (needs valgrind; ~10 minutes on the loaded box, ~5 more per extra tree):
    python bench/bench_teacher_instructions.py            # N = 1000
    python bench/bench_teacher_instructions.py --n 500
    # side by side in one run: this tree's generate and another checkout's (its distillset is
    # imported through PYTHONPATH; the bare loop is measured once)
    python bench/bench_teacher_instructions.py --trees . /tmp/baseline-checkout
"""

from __future__ import annotations

import argparse
import gc
import json
import os
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


def _env(tree: str | None) -> dict[str, str] | None:
    """The child's environment: ``tree``'s distillset first on the path (None: this one's)."""
    if tree is None:
        return None
    return {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}


def _instructions(client: str, base_url: str, n: int, tree: str | None = None) -> int:
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
        env=_env(tree),
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


def _collections_in(client: str, base_url: str, tree: str | None) -> list[int]:
    """``_collections`` in a child process (so ``tree``'s distillset is the one counted)."""
    out = subprocess.run(
        [sys.executable, __file__, "--gc-child", client, "--base-url", base_url],
        capture_output=True,
        text=True,
        check=True,
        env=_env(tree),
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument(
        "--trees",
        nargs="+",
        help="checkouts whose generate is measured, side by side (default: the one this script is in)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--gc-child", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.base_url, args.n)
        return
    if args.gc_child:
        print(json.dumps(_collections(args.gc_child, args.base_url)))
        return
    # (label, client, tree): the bare loop once, then generate from every tree asked for.
    clients = [("raw", "raw", None)] + [(f"generate ({tree})", "generate", tree) for tree in (args.trees or [None])]
    if not args.trees:
        clients[1] = ("generate", "generate", None)
    with bt.BenchServer(0.0) as server:
        jobs = [(label, client, tree, k * args.n) for label, client, tree in clients for k in (1, 2)]
        with ThreadPoolExecutor(2) as pool:
            counts = pool.map(lambda job: _instructions(job[1], server.base_url, job[3], job[2]), jobs)
            counted = {(job[0], job[3]): count for job, count in zip(jobs, counts, strict=True)}
        gcs = {label: _collections_in(client, server.base_url, tree) for label, client, tree in clients}
    per = {label: (counted[(label, 2 * args.n)] - counted[(label, args.n)]) / args.n for label, _c, _t in clients}
    print("| client | instructions per request | raw / client | GC collections per 3,000 requests (gen 0 / 1 / 2) |")
    print("|---|---:|---:|---|")
    for label, _client, _tree in clients:
        gc_text = " / ".join(map(str, gcs[label]))
        print(f"| {label} | {per[label] / 1e6:.3f} M | {per['raw'] / per[label]:.3f}x | {gc_text} |")


if __name__ == "__main__":
    main()
