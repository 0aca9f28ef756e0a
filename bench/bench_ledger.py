"""Benchmark: one teacher, 1, 2 and 4 worker processes sharing one ledger (issue 14).

The teacher is the simulator with 200 ms latency per answer (``TeacherSimulator(latency_s=0.2)``),
in this process; each worker is a process of its own running ``generate`` with its own ``Ledger``
on one shared ledger, as separate runs (or machines) would: a SQLite file, and a fresh PostgreSQL
database (``--postgres``, default ``postgresql://postgres@127.0.0.1:5432``; created and dropped
by the benchmark). Two ways of sharing the work:

- ``shards``: worker k gets the prompts with ``index % workers == k`` (what a teacher x shard
  partition will do): throughput should grow with the workers until the endpoint (or, on this
  2-core machine, the CPU) is the limit;
- ``overlap``: every worker gets every prompt (two ``distillset run`` at once): leases make them
  pay each request once between them; the wall time shows what waiting for each other costs.

Lease overhead per request is the time requests waited for their claims (they ride on the
worker's ledger-writer transactions; the wait overlaps other requests in flight) divided by the
requests paid, with the number of claims per paid request (more than 1: polls while waiting).

Usage:
    python bench/bench_ledger.py                 # 1,200 prompts, 32 in flight per worker, both ledgers
    python bench/bench_ledger.py --prompts 4000 --concurrency 64 --backends postgresql
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))


def _worker(base_url: str, ledger_path: str, texts: list[tuple[int, str]], concurrency: int, start_at: float):
    from distillset.settings import TeacherSettings
    from distillset.teacher.endpoints import TeacherEndpoint
    from distillset.teacher.generate import generate
    from distillset.teacher.ledger import Ledger
    from distillset.teacher.rows import Conversation

    conversations = [Conversation(prompt_id=f"p{i}", system=None, turns=[text]) for i, text in texts]
    settings = TeacherSettings(max_concurrency=concurrency)
    endpoint = TeacherEndpoint(base_url=base_url, api_key=None, simulated=True)
    ledger = Ledger(ledger_path)
    time.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    result = generate(conversations, settings, endpoint, ledger)
    leases = result.leases
    return {
        "started": started,
        "ended": time.time(),
        "paid": result.stats.requests_paid,
        "reused": result.stats.cache_hits,
        "claims": leases.claims,
        "claim_s": leases.claim_s,
        "waits": leases.waits,
    }


@contextlib.contextmanager
def _ledger(backend: str, postgres: str) -> Iterator[str]:
    """A fresh, empty ledger of ``backend``: a SQLite file or a PostgreSQL database (dropped after)."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield str(Path(folder) / "ledger.sqlite")
        return
    import psycopg

    name = f"distillset_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{postgres}/postgres", autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{postgres}/{name}"
    finally:
        with psycopg.connect(f"{postgres}/postgres", autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(mode: str, workers: int, prompts: int, concurrency: int, latency_s: float, ledger_path: str) -> dict:
    from distillset.simulator.server import TeacherSimulator

    texts = [(i, f"Explain, for a bench run, topic number {i} about rivers and their deltas.") for i in range(prompts)]
    shares = [texts[k::workers] for k in range(workers)] if mode == "shards" else [texts] * workers
    with TeacherSimulator(latency_s=latency_s) as sim:
        context = mp.get_context("spawn")
        start_at = time.time() + 8.0  # every worker has imported and opened the ledger by then
        with context.Pool(workers) as pool:
            outcomes = pool.starmap(
                _worker, [(sim.base_url, ledger_path, share, concurrency, start_at) for share in shares]
            )
        completions = sim.stats()["completions"]
    wall = max(o["ended"] for o in outcomes) - min(o["started"] for o in outcomes)
    paid = sum(o["paid"] for o in outcomes)
    return {
        "mode": mode,
        "workers": workers,
        "prompts": prompts,
        "paid": paid,
        "completions": completions,
        "wall_s": wall,
        "req_s": prompts / wall,
        "claim_ms_per_paid": 1000 * sum(o["claim_s"] for o in outcomes) / max(paid, 1),
        "claims_per_paid": sum(o["claims"] for o in outcomes) / max(paid, 1),
        "waits": sum(o["waits"] for o in outcomes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=1200)
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight per worker")
    parser.add_argument("--latency", type=float, default=0.2, help="simulator latency per answer, seconds")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--postgres", default="postgresql://postgres@127.0.0.1:5432", help="the server (a database is made on it)"
    )
    args = parser.parse_args()
    print(
        "| ledger | sharing | workers | in flight each | prompts | paid | wall s | answers/s "
        "| claim ms per paid request | claims per paid request | waits |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for backend in args.backends:
        for mode in ("shards", "overlap"):
            for workers in args.workers:
                if mode == "overlap" and workers == 1:
                    continue
                with _ledger(backend, args.postgres) as ledger:
                    r = run(mode, workers, args.prompts, args.concurrency, args.latency, ledger)
                assert r["completions"] == r["paid"] == args.prompts, r  # nothing paid twice
                _print_row(backend, r, args.concurrency)


def _print_row(backend: str, r: dict, concurrency: int) -> None:
    print(
        f"| {backend} | {r['mode']} | {r['workers']} | {concurrency} | {r['prompts']:,} | {r['paid']:,} | "
        f"{r['wall_s']:.1f} | {r['req_s']:.0f} | {r['claim_ms_per_paid']:.2f} | "
        f"{r['claims_per_paid']:.2f} | {r['waits']} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
