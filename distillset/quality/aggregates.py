"""The figures of a scored set, aggregated in DuckDB (``sql/quality/summary.sql``).

The summary and the gates are computed from these figures, whether the scored rows are a
partition of the catalog's ``quality_scores`` (:func:`partition_aggregates`: memory holds the
aggregates, never the rows) or a frame (:func:`frame_aggregates`: the ``distillset score`` command,
the manifest): one implementation for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import polars as pl

from distillset.catalog import Location, connect, load_sql, table_exists
from distillset.catalog import exists as catalog_exists
from distillset.quality.verifiable import RESULTS

HISTOGRAM_BINS = 10
QUANTILES = ("min", "p25", "median", "p75", "max")


@dataclass(frozen=True)
class ScoreAggregates:
    """Counts and score statistics of a scored set (``rows == 0``: nothing was scored).

    ``verifiable`` and ``failed_rules`` count rows per ``verifiable_result`` and per failed rule
    (only the values that occur); ``bins`` holds the 10 score-histogram counts; ``quantiles``
    the score at ``QUANTILES`` (None without rows).
    """

    rows: int = 0
    passed: int = 0
    refusals: int = 0
    truncated: int = 0
    mean_score: float | None = None
    quantiles: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(QUANTILES))
    bins: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BINS)
    verifiable: dict[str, int] = field(default_factory=dict)
    failed_rules: dict[str, int] = field(default_factory=dict)

    def verifiable_counts(self) -> dict[str, int]:
        """Rows per ``verifiable_result`` (``correct``, ``wrong``, ``no_final_answer``, ``unverifiable``)."""
        return {**dict.fromkeys(RESULTS, 0), **self.verifiable}

    def rate(self, count: int) -> float | None:
        """``count`` as a share of the rows (None without rows)."""
        return count / self.rows if self.rows else None


def score_aggregates(con: duckdb.DuckDBPyConnection, relation: str, params: list | None = None) -> ScoreAggregates:
    """The aggregates of the rows of ``relation`` (a table name or a parenthesized query, its
    ``?`` placeholders bound to ``params``) on ``con``."""
    sql = f"WITH quality_scored AS NOT MATERIALIZED (SELECT * FROM {relation})\n{load_sql('quality/summary')}"
    rows, passed, refusals, truncated, mean, quantiles, bins, verifiable, failed = con.execute(
        sql, params or []
    ).fetchone()
    if not rows:
        return ScoreAggregates()
    histogram = [0] * HISTOGRAM_BINS
    for index, count in (bins or {}).items():
        histogram[int(index)] = int(count)
    return ScoreAggregates(
        rows=int(rows),
        passed=int(passed),
        refusals=int(refusals),
        truncated=int(truncated),
        mean_score=float(mean),
        quantiles={name: float(value) for name, value in zip(QUANTILES, quantiles, strict=True)},
        bins=histogram,
        verifiable={str(k): int(v) for k, v in (verifiable or {}).items()},
        failed_rules={str(k): int(v) for k, v in (failed or {}).items()},
    )


def partition_aggregates(catalog_path: Location, teacher_model: str, table: str = "quality_scores") -> ScoreAggregates:
    """The aggregates of one teacher's rows of ``table`` in the catalog (empty when it does not exist)."""
    if not catalog_exists(catalog_path):
        return ScoreAggregates()
    with connect(catalog_path, read_only=True) as con:
        if not table_exists(con, table):
            return ScoreAggregates()
        return score_aggregates(con, f'(SELECT * FROM "{table}" WHERE teacher_model = ?)', [teacher_model])


def frame_aggregates(scores: pl.DataFrame) -> ScoreAggregates:
    """The aggregates of a frame returned by ``score_frame`` (a frame without rows or columns: empty)."""
    if scores.height == 0:
        return ScoreAggregates()
    if "verifiable_result" not in scores.columns:
        scores = scores.with_columns(pl.lit(None, dtype=pl.Utf8).alias("verifiable_result"))
    con = duckdb.connect()
    try:
        con.register("_scores", scores.select(_SUMMARY_COLUMNS).to_arrow())
        return score_aggregates(con, "_scores")
    finally:
        con.close()


# The columns summary.sql reads: registering only these keeps the text columns out of DuckDB.
_SUMMARY_COLUMNS = ("passed", "is_refusal", "is_truncated", "score", "verifiable_result", "failed_rules")
