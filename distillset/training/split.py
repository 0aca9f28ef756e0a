"""The train/validation split: deterministic, stable across versions and teachers, and checked for leaks."""

from __future__ import annotations

import hashlib

import polars as pl


def assign_split(split_keys: pl.Series, validation_fraction: float) -> pl.Series:
    """``"train"`` / ``"validation"`` for each key, from a hash of the key (stable across runs).

    The key must not depend on the answer: ``build_training_examples`` passes the prompt's
    ``text_hash`` (normalized prompt text), so a prompt stays on its side when the teacher, the
    sampling or the answer changes, and when other prompts come and go; validation never leaks into
    train between versions. When the hash puts no row in validation but there are at least 2 rows
    and ``validation_fraction > 0``, the row with the smallest hash goes there (still deterministic).
    """
    if not 0.0 <= validation_fraction <= 1.0:
        raise ValueError(f"validation_fraction must be between 0 and 1, got {validation_fraction}")
    keys = split_keys.cast(pl.Utf8).to_list()
    positions = [int(hashlib.sha256(f"split:{k}".encode()).hexdigest()[:15], 16) / 16**15 for k in keys]
    splits = ["validation" if p < validation_fraction else "train" for p in positions]
    if validation_fraction > 0 and len(keys) >= 2 and "validation" not in splits:
        smallest = min(range(len(keys)), key=lambda k: (positions[k], keys[k]))
        # Every row sharing that key goes with it, so the split stays disjoint by prompt.
        splits = ["validation" if keys[k] == keys[smallest] else s for k, s in enumerate(splits)]
    return pl.Series("split", splits, dtype=pl.Utf8)


def split_overlap(examples: pl.DataFrame) -> dict[str, int]:
    """How many example ids, prompt ids and conversations appear in both train and validation."""
    train = examples.filter(pl.col("split") == "train")
    validation = examples.filter(pl.col("split") == "validation")
    return {
        column: len(set(train[column].to_list()) & set(validation[column].to_list()))
        for column in ("example_id", "prompt_id", "messages_json")
    }
