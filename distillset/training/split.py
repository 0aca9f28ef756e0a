"""The train/validation split: deterministic, stable across versions and teachers, and checked for leaks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import duckdb
import polars as pl

# Hex digits of the key's sha256 that place it on [0, 1).
_POSITION_DIGITS = 15


def split_position(key: str) -> float:
    """Where ``key`` falls on [0, 1): a key goes to validation when this is below the fraction."""
    return int(hashlib.sha256(f"split:{key}".encode()).hexdigest()[:_POSITION_DIGITS], 16) / 16**_POSITION_DIGITS


def assign_split(split_keys: pl.Series, validation_fraction: float) -> pl.Series:
    """``"train"`` / ``"validation"`` for each key, from a hash of the key (stable across runs).

    The key must not depend on the answer: ``build_training_examples`` passes the prompt's
    ``text_hash`` (normalized prompt text), so a prompt stays on its side when the teacher, the
    sampling or the answer changes, and when other prompts come and go; validation never leaks into
    train between versions. When the hash puts no row in validation but there are at least 2 rows
    and ``validation_fraction > 0``, the row with the smallest hash goes there (still deterministic).
    """
    _check_fraction(validation_fraction)
    keys = split_keys.cast(pl.Utf8).to_list()
    forced = fallback_validation_key(keys, validation_fraction, rows=len(keys))
    return split_of_keys(keys, validation_fraction, forced_validation_key=forced)


def split_of_keys(
    keys: Sequence[str | None], validation_fraction: float, *, forced_validation_key: str | None = None
) -> pl.Series:
    """The split of each key by its hash alone, plus every row of ``forced_validation_key`` in
    validation (``fallback_validation_key`` of the whole set: a chunk of rows is split like the set)."""
    _check_fraction(validation_fraction)
    splits = [
        "validation"
        if split_position(k) < validation_fraction or (forced_validation_key is not None and k == forced_validation_key)
        else "train"
        for k in keys
    ]
    return pl.Series("split", splits, dtype=pl.Utf8)


def fallback_validation_key(keys: Iterable[str | None], validation_fraction: float, *, rows: int) -> str | None:
    """The key whose rows go to validation because the hash put none there, or None.

    ``keys`` must hold the smallest keys by hash position of a set of ``rows`` rows (all of them,
    or the first few in ``split_position`` order, as ``split_fallback_sql`` selects): when the
    smallest position is not below the fraction, no row is in validation, and the key with the
    smallest (position, key) goes there, provided there are at least 2 rows and the fraction is > 0.
    """
    if validation_fraction <= 0 or rows < 2:
        return None
    candidates = [(split_position(k), k) for k in keys]
    if not candidates:
        return None
    position, key = min(candidates)
    return key if position >= validation_fraction else None


def split_fallback_sql(keys_sql: str, limit: int = 16) -> str:
    """A query for the distinct keys of ``keys_sql`` (a query with one column ``key``) that come
    first by ``split_position``: the candidates ``fallback_validation_key`` needs, without every key.

    The position's hex digits sort like the position itself (fixed width), so DuckDB's ``sha256``
    orders them; keys whose positions round to the same float come next to each other.
    """
    return (
        f"SELECT key FROM (SELECT DISTINCT CAST(key AS VARCHAR) AS key FROM ({keys_sql})) "
        f"ORDER BY left(sha256('split:' || coalesce(key, 'None')), {_POSITION_DIGITS}), key LIMIT {int(limit)}"
    )


def _check_fraction(validation_fraction: float) -> None:
    if not 0.0 <= validation_fraction <= 1.0:
        raise ValueError(f"validation_fraction must be between 0 and 1, got {validation_fraction}")


OVERLAP_COLUMNS = ("example_id", "prompt_id", "messages_json")


def split_overlap(examples: pl.DataFrame) -> dict[str, int]:
    """How many example ids, prompt ids and conversations appear in both train and validation."""
    train = examples.filter(pl.col("split") == "train")
    validation = examples.filter(pl.col("split") == "validation")
    return {column: len(set(train[column].to_list()) & set(validation[column].to_list())) for column in OVERLAP_COLUMNS}


def split_overlap_in_catalog(con: duckdb.DuckDBPyConnection, table: str, teacher_model: str) -> dict[str, int]:
    """``split_overlap`` of one teacher's rows of ``table``, computed by DuckDB (set intersections
    it can spill to disk) rather than over a frame of the rows."""
    overlap = {}
    for column in OVERLAP_COLUMNS:
        side = f'SELECT "{column}" FROM "{table}" WHERE teacher_model = ? AND split = ?'
        sql = f"SELECT count(*) FROM ({side} INTERSECT {side})"
        overlap[column] = int(con.execute(sql, [teacher_model, "train", teacher_model, "validation"]).fetchone()[0])
    return overlap
