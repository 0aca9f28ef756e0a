"""Benchmark: the near-duplicate index of the streamed stages, one pass vs two passes (issue 19).

N (prompt, answer) texts like ``deduplicated_generations`` compares (``bench_scale``'s synthetic
prompts and its instant teacher's answers) are written to a DuckDB table. Then, each in a fresh
child process (peak RSS is the child's ``ru_maxrss``, beside its RSS after the imports), the
clusters are computed streaming the table in chunks of ``--chunk-rows``:

* ``one-pass``: ``near_dedup.near_duplicate_clusters_chunks`` (signatures and shingle sets of
  every text kept until verification);
* ``two-pass``: ``near_index.two_pass_clusters`` (band keys of every text; the candidates' texts
  read again by id with ``catalog.iter_chunks_of_ids``).

Both results are written to Parquet and compared (they must be equal).

Usage:
    .venv/bin/python bench/bench_near_index.py --docs 100000 300000 1000000
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

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / "bench"))


def build(n: int, folder: Path) -> Path:
    """The table ``pairs(id, text)`` of ``n`` prompt + answer texts in ``folder/pairs.duckdb``."""
    import bench_scale
    import duckdb
    import polars as pl

    key = bench_scale.write_prompts(n, folder)
    texts = []
    for file in sorted(folder.glob("*.jsonl")):
        for line in file.open():
            row = json.loads(line)
            prompt = row["prompt"] if "prompt" in row else row["question"]
            texts.append(prompt + "\n\n" + bench_scale._answer(prompt, key))
    path = folder / "pairs.duckdb"
    with duckdb.connect(str(path)) as con:
        frame = pl.DataFrame({"id": [f"r{i:07d}" for i in range(len(texts))], "text": texts})
        con.register("_frame", frame.to_arrow())
        con.execute("CREATE TABLE pairs AS SELECT * FROM _frame")
    return path


def child(mode: str, path: Path, chunk_rows: int, out: Path) -> None:
    """One clustering of ``pairs`` in this process; prints a JSON line of its measurements."""
    import duckdb

    from distillset import catalog
    from distillset.curation.near_dedup import NearDupParams, near_duplicate_clusters_chunks
    from distillset.curation.near_index import two_pass_clusters

    after_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    params = NearDupParams()
    asked: list[int] = []
    with duckdb.connect(str(path), read_only=True) as con:
        n = con.execute("SELECT count(*) FROM pairs").fetchone()[0]
        stream, again = con.cursor(), con.cursor()

        def chunks():
            for chunk in catalog.iter_chunks(stream, "SELECT id, text FROM pairs", chunk_rows=chunk_rows):
                yield chunk["id"].to_list(), chunk["text"].to_list()

        def texts_of_ids(wanted):
            asked.append(len(wanted))
            sql = "SELECT id, text FROM pairs"
            for chunk in catalog.iter_chunks_of_ids(again, sql, id_column="id", ids=wanted, chunk_rows=chunk_rows):
                yield chunk["id"].to_list(), chunk["text"].to_list()

        started = time.perf_counter()
        if mode == "one-pass":
            clusters = near_duplicate_clusters_chunks(chunks(), params=params, capacity=n)
        else:
            clusters = two_pass_clusters(chunks(), texts_of_ids, params=params, verification="union-find", capacity=n)
        seconds = time.perf_counter() - started
    clusters.write_parquet(out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "mode": mode,
                "docs": n,
                "seconds": seconds,
                "after_imports_mb": after_imports,
                "peak_mb": peak,
                "kept": int(clusters["kept"].sum()),
                "read_again": sum(asked),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, nargs="+", default=[100_000])
    parser.add_argument("--chunk-rows", type=int, default=50_000, help="rows per streamed chunk (the stages' default)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--build", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build(int(args.build[0]), Path(args.build[1]))
        return
    if args.child:
        mode, path, chunk_rows, out = args.child
        child(mode, Path(path), int(chunk_rows), Path(out))
        return
    import polars as pl

    print("| docs | index | seconds | RSS after imports MB | peak RSS MB | texts read again | kept |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n in args.docs:
        with tempfile.TemporaryDirectory(prefix="bench-near-index-") as scratch:
            # Built in its own process: a child's ru_maxrss starts at its parent's RSS at the fork,
            # so the parent must not hold the texts.
            path = Path(scratch) / "pairs.duckdb"
            subprocess.run([sys.executable, __file__, "--build", str(n), scratch], check=True)
            outs = {}
            for mode in ("one-pass", "two-pass"):
                outs[mode] = Path(scratch) / f"{mode}.parquet"
                command = [sys.executable, __file__, "--child", mode, str(path), str(args.chunk_rows), str(outs[mode])]
                result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
                print(
                    f"| {n:,} | {mode} | {result['seconds']:.1f} | {result['after_imports_mb']:,.0f} | "
                    f"{result['peak_mb']:,.0f} | {result['read_again']:,} | {result['kept']:,} |",
                    flush=True,
                )
            same = pl.read_parquet(outs["one-pass"]).equals(pl.read_parquet(outs["two-pass"]))
            print(f"| {n:,} | same clusters | {same} | | | | |", flush=True)
            if not same:
                raise SystemExit("the two indexes disagree")


if __name__ == "__main__":
    main()
