"""Heuristic quality scoring of teacher answers, in DuckDB SQL.

:func:`score_frame` registers a frame as the ``quality_input`` relation of an in-memory DuckDB
(``row_key`` as VARCHAR, ``prompt_text``, ``response``, ``reference``, ``finish_reason``, plus a
``_row`` BIGINT ordinal that keeps input order, and the verdict of ``distillset.verify`` for rows
with a reference: ``distillset.quality.verifiable``) and the phrase table as ``refusal_patterns``; it
compiles the phrases into one regex per kind (``pattern_regex.sql``), runs the statements of
``sql/quality/`` in :data:`QUALITY_SQL_STEPS` order (one temporary table of signals per concern)
and finally ``score.sql``, which joins them and returns one row of signals, ``score``, ``passed``
and ``failed_rules`` per input row. Every rule is vectorized SQL (regexes, list
functions); the only Python per row is the verifier, and only for rows with a reference.

Configuration: the thresholds (``settings.quality.thresholds``, :class:`QualityThresholds`) and an
optional CSV of extra refusal phrases (``settings.quality.refusal_patterns``, same columns as
``data/quality/refusal_patterns.csv``) are arguments.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import polars as pl

from distillset.catalog import load_sql
from distillset.quality.patterns import load_patterns
from distillset.quality.verifiable import verifiable_verdicts
from distillset.settings import QualityThresholds

# Signal tables first (each reads only quality_input and the parameters), score.sql last.
QUALITY_SQL_STEPS: tuple[str, ...] = (
    "length",
    "refusal",
    "repetition",
    "language",
    "verifiable",
    "leaks",
    "formatting",
)

_INPUT_COLUMNS = ("prompt_text", "response", "reference", "finish_reason")
# Matches no string: the regex of a rule that has no phrase.
_NEVER_MATCHES = r"[^\s\S]"
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def score_frame(
    frame: pl.DataFrame,
    *,
    thresholds: QualityThresholds | None = None,
    key_column: str = "row_key",
    extra_patterns: Path | None = None,
) -> pl.DataFrame:
    """Score every row of ``frame`` with the SQL quality rules.

    Args:
        frame: ``key_column`` (unique, not null), ``prompt_text``, ``response`` and optionally
            ``reference`` and ``finish_reason`` (missing optional columns count as NULL).
        thresholds: rule thresholds; the defaults when omitted.
        key_column: the column that identifies a row; returned unchanged.
        extra_patterns: a CSV of extra refusal phrases, or None.

    Returns:
        ``key_column``, one column per signal, ``score``, ``passed`` and ``failed_rules``, one row
        per input row, in input order.

    Raises:
        ValueError: a required column is missing, or the key is null or not unique.
    """
    thresholds = thresholds or QualityThresholds()
    quality_input = _quality_input(frame, key_column)
    # The verifiable verdict is Python (distillset.verify, math-verify); the SQL reads it as columns.
    verdicts = verifiable_verdicts(
        quality_input.get_column("response").to_list(),
        quality_input.get_column("reference").to_list(),
        numeric_tolerance=thresholds.numeric_tolerance,
    )
    quality_input = quality_input.hstack(verdicts)
    patterns = load_patterns(extra_patterns)
    parameters = thresholds.sql_parameters()

    # One thread: a slice is SCORE_ROWS rows through ten short statements, where DuckDB's second
    # thread costs more than it parallelizes (measured at 100k answers: the rules' SQL took 3.2
    # CPU s on one thread, 5.4-6.0 on two, and no more wall time on the shared 2-core box).
    con = duckdb.connect(config={"threads": 1})
    try:
        con.register("quality_input", quality_input.to_arrow())
        con.register("refusal_patterns", patterns.to_arrow())
        regex_by_rule = dict(con.execute(load_sql("quality/pattern_regex")).fetchall())
        parameters["refusal_regex"] = regex_by_rule.get("refusal") or _NEVER_MATCHES
        parameters["self_id_regex"] = regex_by_rule.get("self_identification") or _NEVER_MATCHES
        for step in QUALITY_SQL_STEPS:
            _execute(con, load_sql(f"quality/{step}"), parameters)
        scores = _execute(con, load_sql("quality/score"), parameters).pl()
    finally:
        con.close()
    return scores.drop("_row").insert_column(0, frame.get_column(key_column))


def _quality_input(frame: pl.DataFrame, key_column: str) -> pl.DataFrame:
    missing = [c for c in (key_column, "prompt_text", "response") if c not in frame.columns]
    if missing:
        raise ValueError(f"cannot score: missing column(s) {', '.join(missing)} (have: {', '.join(frame.columns)})")
    keys = frame.get_column(key_column)
    if keys.null_count():
        raise ValueError(f"cannot score: {keys.null_count()} row(s) have a null {key_column!r}")
    if keys.n_unique() != frame.height:
        raise ValueError(f"cannot score: {key_column!r} is not unique ({frame.height - keys.n_unique()} duplicate(s))")
    # _row (the input position) keeps the order and is the join key of the signal tables: an
    # integer joins faster than the caller's key, whatever its type.
    columns = [pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"), pl.col(key_column).cast(pl.Utf8).alias("row_key")]
    for name in _INPUT_COLUMNS:
        if name in frame.columns:
            columns.append(pl.col(name).cast(pl.Utf8))
        else:
            columns.append(pl.lit(None, dtype=pl.Utf8).alias(name))
    return frame.select(columns)


def _execute(con: duckdb.DuckDBPyConnection, sql: str, parameters: dict) -> duckdb.DuckDBPyConnection:
    # DuckDB rejects named parameters a statement does not use, so pass each file only its own.
    used = {name: parameters[name] for name in _PARAMETER.findall(sql)}
    return con.execute(sql, used)
