"""Benchmark: peak RSS of the best-of-N summary over the teacher stage's Parquet parts (issue 19).

Writes ``--rows`` synthetic ``teacher_samples`` rows (4 samples per prompt, one kept) and their
``prompt_pass_rates`` as parts of 20k rows under ``--folder``, then, in a fresh process per mode,
computes the summary the teacher stage computes when it closes: ``parquet_selection_summary``
(DuckDB SQL over the parts, this checkout) or, with ``--mode polars``, the summary columns read into
polars first, as the code before it did (``selection_summary`` of the frames; run it with a
checkout's own Python to measure that checkout). Prints the process's peak RSS before and after.

Usage:
    .venv/bin/python bench/bench_bon_summary.py --rows 1200000 --folder /tmp/bon-parts
    .venv/bin/python bench/bench_bon_summary.py --rows 1200000 --folder /tmp/bon-parts --mode polars
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import polars as pl

from distillset.curation.best_of_n import PASS_RATES_SCHEMA, SUMMARY_SAMPLE_COLUMNS, SelectionPolicy

PART_ROWS = 20_000


def write_parts(rows: int, folder: Path) -> None:
    """``rows`` samples (prompt = row // 4) and one pass-rate row per prompt, in parts."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, start in enumerate(range(0, rows, PART_ROWS)):
        index = pl.int_range(start, min(start + PART_ROWS, rows), eager=True)
        first = index % 4 == 0
        samples = pl.DataFrame(
            {
                "teacher_model": pl.repeat("m", len(index), eager=True),
                "prompt_id": (index // 4).cast(pl.String),
                "sample_index": index % 4,
                "verifier": pl.repeat(None, len(index), dtype=pl.String, eager=True),
                "verdict": pl.repeat(None, len(index), dtype=pl.String, eager=True),
                "status": pl.repeat("ok", len(index), eager=True),
                "kept": first,
                "prompt_tokens": index % 50,
                "completion_tokens": index % 90,
            }
        ).with_columns(
            pl.when(first).then(pl.lit("quality_rank")).alias("selection"),
            pl.when(~first).then(pl.lit("ranked_below")).alias("drop_reason"),
        )
        samples.write_parquet(folder / f"teacher_samples-{number:06d}.parquet")
        prompts = samples.filter(first)
        rates = pl.DataFrame(
            {
                "teacher_model": prompts["teacher_model"],
                "prompt_id": prompts["prompt_id"],
                "verifier": prompts["verifier"],
                "samples_paid": pl.repeat(4, prompts.height, eager=True),
                "samples_correct": pl.repeat(0, prompts.height, eager=True),
                "pass_rate": pl.repeat(None, prompts.height, dtype=pl.Float64, eager=True),
                "kept": pl.repeat(1, prompts.height, eager=True),
            },
            schema=PASS_RATES_SCHEMA,
        )
        rates.write_parquet(folder / f"prompt_pass_rates-{number:06d}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_200_000, help="teacher_samples rows (4 per prompt)")
    parser.add_argument("--folder", type=Path, required=True, help="where the parts are (written if missing)")
    parser.add_argument("--mode", choices=["sql", "polars"], default="sql")
    args = parser.parse_args()
    folder = args.folder / str(args.rows)
    if not folder.exists():
        write_parts(args.rows, folder)
    samples = sorted(folder.glob("teacher_samples-*.parquet"))
    rates = sorted(folder.glob("prompt_pass_rates-*.parquet"))
    policy = SelectionPolicy(samples_per_prompt=4)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if args.mode == "polars":
        from distillset.curation.best_of_n import selection_summary

        frame = pl.read_parquet(samples, columns=list(SUMMARY_SAMPLE_COLUMNS))
        summary = selection_summary(frame, pl.read_parquet(rates), policy)
    else:
        from distillset.curation.best_of_n import parquet_selection_summary

        summary = parquet_selection_summary(samples, rates, policy)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"{args.mode}: {args.rows:,} samples, peak RSS {after / 1024:,.0f} MB (+{(after - before) / 1024:,.0f} MB "
        f"over {before / 1024:,.0f} MB before), {time.perf_counter() - started:.1f} s, "
        f"{summary['examples_kept']:,} kept"
    )


if __name__ == "__main__":
    main()
