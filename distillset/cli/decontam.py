"""``distillset decontam``: flag rows that share an n-gram with a benchmark test set.

Writes every input row plus ``contaminated`` (bool), ``benchmark``, ``matched_ngram`` and
``benchmark_row`` (null when clean). Benchmarks: the shipped ones, ``DISTILLSET_BENCHMARKS`` and
each ``--benchmark`` entry (same syntax, see ``distillset.curation.decontam``). The index is cached under
``--cache-dir`` (default ``$DISTILLSET_HOME/cache/decontam``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from distillset.cli.common import settings_or_exit
from distillset.cli.tables import TableError, check_output, read_table, row_ids, texts_of, write_table
from distillset.curation.decontam import BenchmarkIndex, DecontamParams, default_benchmarks, parse_benchmark_spec

NAME = "decontam"
HELP = "flag rows that overlap a benchmark test set (word 13-grams, CJK character 20-grams)"
ADDED_COLUMNS = ("contaminated", "benchmark", "matched_ngram", "benchmark_row")


def configure(parser: argparse.ArgumentParser) -> None:
    defaults = DecontamParams()
    parser.add_argument("input", help="a .jsonl or .parquet file")
    parser.add_argument("--text-field", required=True, help="the field checked")
    parser.add_argument("--out", required=True, help="output .jsonl or .parquet file")
    parser.add_argument(
        "--benchmark", action="append", default=[], metavar="NAME=PATH[:FIELD]", help="an extra benchmark (repeatable)"
    )
    parser.add_argument("--word-ngram", type=int, default=defaults.word_ngram, help="words per n-gram")
    parser.add_argument("--char-ngram", type=int, default=defaults.char_ngram, help="characters per n-gram (CJK)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="index cache folder")


def run(args: argparse.Namespace) -> int:
    try:
        # Checked first: a bad --out must not cost building the benchmark index before failing.
        check_output(args.out, args.input)
        params = DecontamParams(word_ngram=args.word_ngram, char_ngram=args.char_ngram)
        frame = read_table(args.input, args.text_field)
        settings = settings_or_exit(NAME)
        benchmarks = default_benchmarks(settings.curation.benchmarks) + parse_benchmark_spec(",".join(args.benchmark))
        cache_dir = args.cache_dir or settings.cache_dir / "decontam"
        index = BenchmarkIndex.build(benchmarks, params=params, cache_dir=cache_dir)
        hits = index.find(row_ids(frame), texts_of(frame, args.text_field))
        ids = pl.DataFrame({"id": row_ids(frame)})
        flags = ids.join(hits, on="id", how="left", maintain_order="left").with_columns(
            pl.col("benchmark").is_not_null().alias("contaminated")
        )
        result = frame.drop([c for c in ADDED_COLUMNS if c in frame.columns]).hstack(flags.select(ADDED_COLUMNS))
        write_table(result, args.out)
    except (TableError, ValueError, OSError) as exc:
        print(f"distillset decontam: error: {exc}", file=sys.stderr)
        return 2
    counts = hits.group_by("benchmark").len().sort("benchmark").rows()
    detail = ", ".join(f"{name}: {count}" for name, count in counts) or "none"
    print(
        f"decontam: {len(frame)} rows, {len(hits)} contaminated ({detail}), "
        f"{index.size} benchmark n-grams{' (cached index)' if index.loaded_from_cache else ''} -> {args.out}"
    )
    return 0
