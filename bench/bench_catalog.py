"""Benchmark: the catalog's backends side by side (issue 14, "Shared state").

The embedded DuckDB file, DuckLake with its data in a local folder, and DuckLake with its data in
S3 (moto's server in this process), each with its metadata in a fresh PostgreSQL database
(``--postgres``, default ``postgresql://postgres@127.0.0.1:5432``; created and dropped here).
Measured per backend, in one run: opening the catalog to read (mean of ``--opens``), replacing one
partition of ``--rows`` rows (mean of ``--writes``, several partitions), and reading a partition back.

Usage:
    python bench/bench_catalog.py                       # 50,000 rows, 20 opens, 5 writes
    python bench/bench_catalog.py --rows 200000 --backends file,ducklake-folder
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))


@contextlib.contextmanager
def _database(server: str) -> Iterator[str]:
    import psycopg

    name = f"distillset_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _moto() -> Iterator[str]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="distillset-bench")
    try:
        yield endpoint
    finally:
        server.stop()


@contextlib.contextmanager
def _location(backend: str, home: Path, server: str) -> Iterator:
    from distillset.catalog_lake import catalog_location

    if backend == "file":
        yield home / "catalog.duckdb"
        return
    with _database(server) as url:
        if backend == "ducklake-folder":
            yield catalog_location(f"ducklake:postgres:{url}", str(home / "lake-data"), home)
        else:
            with _moto() as endpoint:
                data = f"s3://distillset-bench/{uuid.uuid4().hex[:8]}/"
                yield catalog_location(f"ducklake:postgres:{url}", data, home, s3_endpoint_url=endpoint)


def _frame(rows: int, model: str):
    import polars as pl

    return pl.DataFrame(
        {
            "teacher_model": [model] * rows,
            "prompt_id": [f"p{i:08d}" for i in range(rows)],
            "response": [f"answer {i} " * 20 for i in range(rows)],
        }
    )


def measure(backend: str, *, rows: int, opens: int, writes: int, server: str) -> dict:
    from distillset import catalog

    with tempfile.TemporaryDirectory() as tmp, _location(backend, Path(tmp), server) as location:
        catalog.replace_table(location, "warm", _frame(10, "w"))  # creates the file / the lake
        started = time.perf_counter()
        for _ in range(opens):
            with catalog.connect(location, read_only=True) as con:
                con.execute("SELECT 1").fetchone()
        open_s = (time.perf_counter() - started) / opens
        frames = [_frame(rows, f"m{i}") for i in range(writes)]
        started = time.perf_counter()
        for i, frame in enumerate(frames):
            catalog.replace_partition(location, "t", frame, column="teacher_model", value=f"m{i}")
        write_s = (time.perf_counter() - started) / writes
        started = time.perf_counter()
        read = catalog.read_table(location, "t", "WHERE teacher_model = ?", ["m0"])
        read_s = time.perf_counter() - started
        assert read.height == rows
    return {"backend": backend, "open_ms": open_s * 1000, "write_s": write_s, "read_s": read_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--opens", type=int, default=20)
    parser.add_argument("--writes", type=int, default=5)
    parser.add_argument("--backends", default="file,ducklake-folder,ducklake-s3")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args(argv)
    print(f"{args.rows:,} rows per partition, {args.opens} opens, {args.writes} partition writes")
    print(f"{'backend':<16} {'open (ms)':>10} {'replace_partition (s)':>22} {'read partition (s)':>19}")
    for backend in args.backends.split(","):
        r = measure(backend, rows=args.rows, opens=args.opens, writes=args.writes, server=args.postgres)
        print(f"{r['backend']:<16} {r['open_ms']:>10.1f} {r['write_s']:>22.3f} {r['read_s']:>19.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
