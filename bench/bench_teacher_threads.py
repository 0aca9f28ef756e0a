"""Benchmark: where the teacher stage's CPU goes, by thread, against the bare SDK loop (wall clock).

``bench_teacher.py`` gives throughput and the client's CPU per request; valgrind
(``bench_teacher_instructions.py``) serialises threads and hides what crossing them costs. This runs
the same two clients against the same instant bench server, interleaved, each in a fresh child
process (so a tree's ``distillset`` can be imported through ``PYTHONPATH``, side by side), and
reports per request: wall-clock throughput, CPU split into user and system time and by thread
(the event loop's thread, the ledger writer, the rest), context switches, the cyclic GC's gen-0
collections, and the ledger writer's transactions and answers per transaction.

Usage:
    python bench/bench_teacher_threads.py                      # 5,000 prompts, 5 rounds
    python bench/bench_teacher_threads.py --trees . /tmp/base  # generate from two checkouts, interleaved
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_teacher as bt  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")


def _tasks() -> dict[int, tuple[float, float, int, int]]:
    """Every thread of this process: (user s, system s, voluntary, involuntary context switches)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/self/task/{tid}/status") as handle:
                status = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        out[int(tid)] = (
            int(fields[11]) / _TICK,
            int(fields[12]) / _TICK,
            int(status["voluntary_ctxt_switches"]),
            int(status["nonvoluntary_ctxt_switches"]),
        )
    return out


class _Sampler:
    """The last-seen counters of every thread (threads that end are kept), and their names."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple] = {}
        self.names: dict[int, str] = {}
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while self.running:
            self.snap()
            time.sleep(0.05)

    def snap(self) -> None:
        for thread in threading.enumerate():
            if thread.native_id is not None:
                self.names[thread.native_id] = thread.name
        self.seen.update(_tasks())


def _child(client: str, base_url: str, n: int) -> dict:
    from distillset.teacher import ledger as ledger_module
    from distillset.teacher import ledger_sqlite

    # Write transactions counted at the backend, so a tree without ``LedgerWriter.transactions``
    # is counted the same way (claims' and answers' transactions alike).
    transactions = [0]
    plain_transaction = ledger_sqlite.SQLiteBackend.transaction

    def counted_transaction(self, con):
        transactions[0] += 1
        return plain_transaction(self, con)

    ledger_sqlite.SQLiteBackend.transaction = counted_transaction
    writers = []
    original = ledger_module.Ledger.writer

    def writer(self, **kwargs):
        made = original(self, **kwargs)
        writers.append(made)
        return made

    ledger_module.Ledger.writer = writer
    run = bt.run_raw if client == "raw" else bt.run_generate
    run(base_url, 300, 64)  # warm-up: imports, connections
    writers.clear()
    transactions[0] = 0
    gen0 = [0]

    def count(phase: str, info: dict) -> None:
        if phase == "stop" and info["generation"] == 0:
            gen0[0] += 1

    sampler = _Sampler()
    sampler.snap()
    before = dict(sampler.seen)
    me = threading.get_native_id()
    sampler.thread.start()
    gc.callbacks.append(count)
    started = time.perf_counter()
    run(base_url, n, 64)
    elapsed = time.perf_counter() - started
    gc.callbacks.remove(count)
    sampler.running = False
    sampler.thread.join()
    sampler.snap()
    sampler_tid = sampler.thread.native_id
    totals = {"loop": [0.0, 0.0, 0, 0], "writer": [0.0, 0.0, 0, 0], "other": [0.0, 0.0, 0, 0]}
    for tid, now in sampler.seen.items():
        if tid == sampler_tid:
            continue
        then = before.get(tid, (0.0, 0.0, 0, 0))
        name = sampler.names.get(tid, "")
        # generate runs its loop on this thread (no loop is running here), so "loop" is this thread.
        where = "loop" if tid == me else "writer" if name == "ledger-writer" else "other"
        for i in range(4):
            totals[where][i] += now[i] - then[i]
    import distillset

    result = {
        "distillset": str(Path(distillset.__file__).resolve().parent.parent),
        "rate": n / elapsed,
        "threads": {k: [v[0] * 1000 / n, v[1] * 1000 / n, v[2] / n, v[3] / n] for k, v in totals.items()},
        "gen0_per_3000": gen0[0] * 3000 / n,
    }
    if writers:
        w = writers[-1]
        result["transactions"] = transactions[0]
        result["answers_per_tx"] = w.answers_written / max(1, transactions[0])
    return result


def _measure(client: str, base_url: str, n: int, tree: str | None) -> dict:
    env = None if tree is None else {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
    out = subprocess.run(
        [sys.executable, __file__, "--child", client, "--base-url", base_url, "--n", str(n)],
        capture_output=True,
        text=True,
        env=env,
    )
    if out.returncode:
        raise SystemExit(f"{client} ({tree}) failed:\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if tree is not None and result["distillset"] != str(Path(tree).resolve()):
        raise SystemExit(f"the child imported distillset from {result['distillset']}, not from {tree}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--trees", nargs="+", help="checkouts whose generate is measured, interleaved")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.base_url, args.n)))
        return
    clients = [("raw", "raw", None)] + [(f"generate ({t})", "generate", t) for t in (args.trees or [None])]
    results: dict[str, list[dict]] = {label: [] for label, _c, _t in clients}
    with open("/proc/loadavg") as handle:
        load_before = handle.read().split()[:3]
    with bt.BenchServer(0.0) as server:
        for _ in range(args.rounds):
            for label, client, tree in clients:
                results[label].append(_measure(client, server.base_url, args.n, tree))
    with open("/proc/loadavg") as handle:
        load_after = handle.read().split()[:3]
    print(f"{args.n:,} requests, 64 in flight, instant server, {args.rounds} rounds interleaved")
    print(f"load average before {' '.join(load_before)}, after {' '.join(load_after)}")
    print()
    print(
        "| client | req/s (median) | vs raw (ratio of medians) | CPU ms/req (median): loop user+sys | writer "
        "| other | total | ctx switches/req (vol / invol) | gen-0 GC per 3,000 | write tx | answers/tx |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    raw_rate = statistics.median(r["rate"] for r in results["raw"])
    for label, _c, _t in clients:
        rs = results[label]

        def med(get, rs=rs):
            return statistics.median(get(r) for r in rs)

        loop_u, loop_s = med(lambda r: r["threads"]["loop"][0]), med(lambda r: r["threads"]["loop"][1])
        writer = med(lambda r: r["threads"]["writer"][0] + r["threads"]["writer"][1])
        other = med(lambda r: r["threads"]["other"][0] + r["threads"]["other"][1])
        total = med(lambda r: sum(v[0] + v[1] for v in r["threads"].values()))
        vol = med(lambda r: sum(v[2] for v in r["threads"].values()))
        invol = med(lambda r: sum(v[3] for v in r["threads"].values()))
        rate = med(lambda r: r["rate"])
        tx = med(lambda r: r.get("transactions", 0))
        per_tx = med(lambda r: r.get("answers_per_tx", 0))
        print(
            f"| {label} | {rate:,.0f} | {rate / raw_rate:.3f}x | {loop_u:.2f}+{loop_s:.2f} | {writer:.3f} | "
            f"{other:.3f} | {total:.2f} | {vol:.2f} / {invol:.2f} | {med(lambda r: r['gen0_per_3000']):.0f} | "
            f"{tx:,.0f} | {per_tx:.2f} |"
        )
    print()
    print("per round (req/s):")
    for label, _c, _t in clients:
        rates = ", ".join(f"{r['rate']:,.0f}" for r in results[label])
        print(f"  {label}: {rates}")


if __name__ == "__main__":
    main()
