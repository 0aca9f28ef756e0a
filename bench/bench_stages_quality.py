"""Benchmark: peak memory and time of the quality_scores and training_examples stages (issue 19).

Fills a catalog with ``--rows`` synthetic rows (``prompt_pool``, ``deduplicated_generations`` of one
teacher, from ``bench_quality.synthetic_frame``; then ``quality_scores`` by the scoring stage), and
runs each stage's engine code the way its asset does, in a fresh child process per stage and per
checkout, on a copy of that catalog:

* ``quality_scores``: score the partition, write it, compute the summary and gates (and the
  ``quality_gates`` check's gates once more);
* ``training_examples``: build the examples, write them, and run the three checks (split disjoint,
  schema, not contaminated against the shipped benchmarks).

Each ``--code`` checkout runs with its own virtualenv (``<checkout>/.venv/bin/python``): the
streamed code where ``distillset.quality.partition`` exists, else the frame-at-once code of main.
Peak RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the child; "RSS after imports" is
what the interpreter, polars and DuckDB take before the stage starts.

Usage: ``python bench/bench_stages_quality.py --rows 100000 --code /work/main --code .``
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

TEACHER = "bench/teacher"
HERE = Path(__file__).resolve()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill_catalog(path: Path, rows: int, chunk_rows: int) -> None:
    """The input tables, and quality_scores scored by the streamed stage (same rows as main's)."""
    import hashlib

    import polars as pl
    from bench_quality import synthetic_frame

    from distillset import catalog, ids

    frame = synthetic_frame(rows)
    prompt_ids = [hashlib.sha256(f"prompt-{i}".encode()).hexdigest()[:16] for i in range(rows)]
    texts = [f"{t} (#{i})" for i, t in enumerate(frame["prompt_text"].to_list())]
    pool = pl.DataFrame(
        {
            "prompt_id": prompt_ids,
            "prompt_text": texts,
            "reference": frame["reference"].to_list(),
            "text_hash": [ids.sha256_hex(ids.normalize_text(t)) for t in texts],
            "source_file": ["bench.jsonl"] * rows,
            "source_line": list(range(1, rows + 1)),
            "source_sha256": ["0" * 64] * rows,
            "license": ["MIT"] * rows,
        },
        schema_overrides={"reference": pl.Utf8},
    )
    responses = frame["response"].to_list()
    generations = pl.DataFrame(
        {
            "teacher_model": [TEACHER] * rows,
            "prompt_id": prompt_ids,
            "status": ["ok"] * rows,
            "messages_json": [
                ids.canonical_json([{"role": "user", "content": t}, {"role": "assistant", "content": r}])
                for t, r in zip(texts, responses, strict=True)
            ],
            "response": responses,
            "finish_reason": frame["finish_reason"].to_list(),
            "request_hash": [hashlib.sha256(f"request-{i}".encode()).hexdigest() for i in range(rows)],
            "served_model": [TEACHER] * rows,
            "simulated": [True] * rows,
            "generated_at": [datetime(2026, 12, 1, tzinfo=UTC)] * rows,
            "cluster_id": [f"c{i}" for i in range(rows)],
        }
    )
    catalog.replace_table(path, "prompt_pool", pool)
    catalog.replace_table(path, "deduplicated_generations", generations)
    del pool, generations, frame
    from distillset.quality.partition import score_partition

    score_partition(path, TEACHER, chunk_rows=chunk_rows)


def _quality_frames(path: Path) -> int:
    import polars as pl

    from distillset import catalog
    from distillset.quality.gates import evaluate_gates
    from distillset.quality.score import score_frame
    from distillset.quality.summary import quality_summary

    generations = catalog.read_table(path, "deduplicated_generations", "WHERE teacher_model = ?", [TEACHER])
    prompts = catalog.read_table(path, "prompt_pool")
    rows = generations.select("prompt_id", "response", "finish_reason").join(
        prompts.select("prompt_id", "prompt_text", "reference"), on="prompt_id", how="left"
    )
    scores = score_frame(rows, key_column="prompt_id")
    scores = scores.with_columns(pl.lit(TEACHER).alias("teacher_model")).select(
        "teacher_model", pl.exclude("teacher_model")
    )
    catalog.replace_partition(path, "quality_scores", scores, column="teacher_model", value=TEACHER)
    quality_summary(scores)
    evaluate_gates(scores)
    evaluate_gates(catalog.read_table(path, "quality_scores", "WHERE teacher_model = ?", [TEACHER]))
    return scores.height


def _quality_streamed(path: Path, chunk_rows: int) -> int:
    from distillset.quality.aggregates import partition_aggregates
    from distillset.quality.gates import gates_of
    from distillset.quality.partition import score_partition
    from distillset.quality.summary import summary_of

    scored = score_partition(path, TEACHER, chunk_rows=chunk_rows)
    aggregates = partition_aggregates(path, TEACHER)
    summary_of(aggregates)
    gates_of(aggregates)
    gates_of(partition_aggregates(path, TEACHER))
    return scored.rows


def _training_frames(path: Path) -> int:
    from distillset import catalog
    from distillset.curation.decontam import BenchmarkIndex, default_benchmarks
    from distillset.training.examples import build_training_examples
    from distillset.training.split import split_overlap

    def read(table: str):
        return catalog.read_table(path, table, "WHERE teacher_model = ?", [TEACHER])

    examples = build_training_examples(
        read("deduplicated_generations"),
        read("quality_scores"),
        catalog.read_table(path, "prompt_pool"),
        validation_fraction=0.05,
        judgments=read("judge_scores"),
        run_id="bench",
    )
    catalog.replace_partition(path, "training_examples", examples, column="teacher_model", value=TEACHER)
    del examples
    split_overlap(read("training_examples"))
    read("training_examples").columns  # noqa: B018 (the schema check reads the partition)
    examples = read("training_examples")
    index = BenchmarkIndex.build(default_benchmarks(), cache_dir=path.parent / "decontam")
    index.find(examples["example_id"].to_list(), examples["messages_json"].to_list())
    return examples.height


def _training_streamed(path: Path, chunk_rows: int) -> int:
    from distillset import catalog
    from distillset.curation.decontam import BenchmarkIndex, default_benchmarks
    from distillset.training.partition import build_examples_in_catalog, contaminated_examples, examples_split_overlap

    with catalog.write_chunks(path) as writer:
        written = build_examples_in_catalog(
            writer, TEACHER, chunk_rows=chunk_rows, validation_fraction=0.05, run_id="bench"
        )
    examples_split_overlap(path, TEACHER)
    catalog.count_rows(path, "training_examples", "WHERE teacher_model = ?", [TEACHER])
    catalog.table_columns(path, "training_examples")
    index = BenchmarkIndex.build(default_benchmarks(), cache_dir=path.parent / "decontam")
    contaminated_examples(path, TEACHER, index, chunk_rows=chunk_rows)
    return written.rows


def _child(stage: str, path: Path, chunk_rows: int) -> None:
    import importlib.util

    import duckdb  # noqa: F401 (imported before the clock: the stage is measured, not start-up)
    import polars  # noqa: F401

    import distillset.quality.score  # noqa: F401

    streamed = importlib.util.find_spec("distillset.quality.partition") is not None
    baseline = _rss_mb()
    started = time.perf_counter()
    cpu = time.process_time()
    if stage == "quality_scores":
        rows = _quality_streamed(path, chunk_rows) if streamed else _quality_frames(path)
    else:
        rows = _training_streamed(path, chunk_rows) if streamed else _training_frames(path)
    print(
        json.dumps(
            {
                "streamed": streamed,
                "rows": rows,
                "wall_s": time.perf_counter() - started,
                "cpu_s": time.process_time() - cpu,
                "baseline_mb": baseline,
                "peak_mb": _rss_mb(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk-rows", type=int, default=50_000, help="DISTILLSET_CHUNK_ROWS of the streamed code")
    parser.add_argument("--code", action="append", help="a checkout to measure (repeatable; default: this one)")
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "CATALOG"), help=argparse.SUPPRESS)
    parser.add_argument("--fill", metavar="CATALOG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]
        fill_catalog(Path(args.fill), args.rows, args.chunk_rows)
        return
    if args.child:
        sys.path.insert(0, str(Path.cwd()))
        _child(args.child[0], Path(args.child[1]), args.chunk_rows)
        return
    checkouts = [Path(c).resolve() for c in (args.code or [HERE.parent.parent])]
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as folder:
        base = Path(folder) / "base" / "catalog.duckdb"
        started = time.perf_counter()
        # Filled in a child too: Linux keeps a forked child's peak RSS from its parent, so the
        # parent must stay small for the stages' figures to be their own.
        fill = [sys.executable, str(HERE), "--fill", str(base), "--rows", str(args.rows)]
        subprocess.run([*fill, "--chunk-rows", str(args.chunk_rows)], check=True)
        print(f"catalog of {args.rows:,} rows filled in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        print("| stage | code | rows | wall s | CPU s | RSS after imports MB | peak RSS MB |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for stage in ("quality_scores", "training_examples"):
            for checkout in checkouts:
                run = Path(folder) / f"{checkout.name}-{stage}"
                run.mkdir()
                shutil.copy(base, run / "catalog.duckdb")
                python = checkout / ".venv" / "bin" / "python"
                out = subprocess.run(
                    [
                        str(python),
                        str(HERE),
                        "--child",
                        stage,
                        str(run / "catalog.duckdb"),
                        "--chunk-rows",
                        str(args.chunk_rows),
                    ],
                    cwd=checkout,
                    capture_output=True,
                    text=True,
                )
                if out.returncode:
                    raise SystemExit(f"{stage} on {checkout} failed:\n{out.stderr}")
                result = json.loads(out.stdout.strip().splitlines()[-1])
                code = f"{checkout.name} ({'streamed' if result['streamed'] else 'frames'})"
                print(
                    f"| {stage} | {code} | {result['rows']:,} | {result['wall_s']:.1f} | {result['cpu_s']:.1f} "
                    f"| {result['baseline_mb']:.0f} | {result['peak_mb']:.0f} |",
                    flush=True,
                )
                shutil.rmtree(run)


if __name__ == "__main__":
    main()
