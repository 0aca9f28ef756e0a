"""``distillset dedup``: mark exact and near-duplicate rows of a JSONL or Parquet file.

Writes every input row with all its fields plus ``cluster_id``, ``kept``, ``duplicate_of`` and
``similarity`` (existing columns of those names are replaced). Row ids come from the first
id-like field (``id``, ``prompt_id``, ``example_id``, ``uid``) or, without one, from the 0-based
row index.
"""

from __future__ import annotations

import argparse
import sys

import polars as pl

from distillset.cli.tables import TableError, check_output, read_table, row_ids, texts_of, write_table
from distillset.curation.near_dedup import NearDupParams, near_duplicate_clusters

NAME = "dedup"
HELP = "mark exact and near-duplicate rows (MinHash LSH) of a JSONL or Parquet file"
ADDED_COLUMNS = ("cluster_id", "kept", "duplicate_of", "similarity")


def configure(parser: argparse.ArgumentParser) -> None:
    defaults = NearDupParams()
    parser.add_argument("input", help="a .jsonl or .parquet file")
    parser.add_argument("--text-field", required=True, help="the field compared")
    parser.add_argument("--out", required=True, help="output .jsonl or .parquet file")
    parser.add_argument(
        "--threshold", type=float, default=defaults.threshold, help="estimated Jaccard to call rows duplicates"
    )
    parser.add_argument("--num-perm", type=int, default=defaults.num_perm, help="MinHash signature length")
    parser.add_argument("--bands", type=int, default=None, help="LSH bands (default: FP+FN-optimal)")
    parser.add_argument("--rows", type=int, default=None, help="signature slots per band")
    parser.add_argument("--word-ngram", type=int, default=defaults.word_ngram, help="words per shingle")
    parser.add_argument("--char-ngram", type=int, default=defaults.char_ngram, help="characters per shingle (CJK)")
    parser.add_argument("--priority-field", default=None, help="numeric field: the highest value in a cluster is kept")


def run(args: argparse.Namespace) -> int:
    try:
        # Checked first: a bad --out must not cost the whole computation before failing.
        check_output(args.out, args.input)
        params = NearDupParams(
            threshold=args.threshold,
            num_perm=args.num_perm,
            bands=args.bands,
            rows=args.rows,
            word_ngram=args.word_ngram,
            char_ngram=args.char_ngram,
        )
        frame = read_table(args.input, args.text_field)
        priority = None
        if args.priority_field is not None:
            if args.priority_field not in frame.columns:
                raise TableError(f"{args.input}: no priority field {args.priority_field!r}")
            column = frame[args.priority_field]
            if not column.dtype.is_numeric():
                raise TableError(f"priority field {args.priority_field!r} is not numeric ({column.dtype})")
            priority = column.cast(pl.Float64).fill_null(float("nan")).to_list()
        clusters = near_duplicate_clusters(
            row_ids(frame), texts_of(frame, args.text_field), params=params, priority=priority
        )
        result = frame.drop([c for c in ADDED_COLUMNS if c in frame.columns]).hstack(clusters.select(ADDED_COLUMNS))
        write_table(result, args.out)
    except (TableError, ValueError, OSError) as exc:
        print(f"distillset dedup: error: {exc}", file=sys.stderr)
        return 2
    kept = int(clusters["kept"].sum())
    dropped = len(clusters) - kept
    duplicate_clusters = clusters.filter(~pl.col("kept"))["cluster_id"].n_unique()
    print(
        f"dedup: {len(clusters)} rows, {kept} kept, {dropped} dropped, "
        f"{duplicate_clusters} clusters with duplicates -> {args.out}"
    )
    return 0
