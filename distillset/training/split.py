"""The train/validation split: deterministic, stable across runs, and checked for leaks."""

from __future__ import annotations

import hashlib

import polars as pl


def assign_split(example_ids: pl.Series, validation_fraction: float) -> pl.Series:
    """``"train"`` / ``"validation"`` for each id, from a hash of the id (stable across runs).

    An id keeps its split when other examples come and go, so validation never leaks into train
    between versions. When the hash puts no row in validation but there are at least 2 rows and
    ``validation_fraction > 0``, the row with the smallest hash goes there (still deterministic).
    """
    if not 0.0 <= validation_fraction <= 1.0:
        raise ValueError(f"validation_fraction must be between 0 and 1, got {validation_fraction}")
    ids = example_ids.cast(pl.Utf8).to_list()
    positions = [int(hashlib.sha256(f"split:{i}".encode()).hexdigest()[:15], 16) / 16**15 for i in ids]
    splits = ["validation" if p < validation_fraction else "train" for p in positions]
    if validation_fraction > 0 and len(ids) >= 2 and "validation" not in splits:
        splits[min(range(len(ids)), key=lambda k: (positions[k], ids[k]))] = "validation"
    return pl.Series("split", splits, dtype=pl.Utf8)


def split_overlap(examples: pl.DataFrame) -> dict[str, int]:
    """How many example ids, prompt ids and conversations appear in both train and validation."""
    train = examples.filter(pl.col("split") == "train")
    validation = examples.filter(pl.col("split") == "validation")
    return {
        column: len(set(train[column].to_list()) & set(validation[column].to_list()))
        for column in ("example_id", "prompt_id", "messages_json")
    }
