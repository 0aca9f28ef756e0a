"""What a version may contain: the rows' required columns and checks, and the content hash."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import polars as pl

from distillset.ids import canonical_json
from distillset.settings.tree import TRAINING_SET_NAME
from distillset.training.examples import TRAINING_EXAMPLES_COLUMNS

EXAMPLE_COLUMNS = tuple(TRAINING_EXAMPLES_COLUMNS)


def content_hash(examples: pl.DataFrame, formats: Sequence[str]) -> str:
    """sha256 over the sorted (example_id, messages_json, split) rows and the export formats."""
    digest = hashlib.sha256()
    rows = examples.select("example_id", "messages_json", "split").sort("example_id")
    for row in rows.iter_rows():
        digest.update(canonical_json(list(row)).encode("utf-8"))
        digest.update(b"\n")
    digest.update(canonical_json(sorted(formats)).encode("utf-8"))
    return digest.hexdigest()


def check_name(name: str) -> None:
    """Raise ValueError unless ``name`` can be a training set's folder name."""
    if not TRAINING_SET_NAME.match(name or "") or ".." in name:
        raise ValueError(f"training set name {name!r} must be letters, digits, '.', '_' or '-' (max 128)")


def validated_examples(name: str, examples: pl.DataFrame) -> pl.DataFrame:
    """``examples`` sorted by id, after checking the name, the columns and the rows.

    Raises:
        ValueError: a bad name, a missing column, no rows, nulls in a key column, a repeated
            example id or an unknown split.
    """
    check_name(name)
    missing = [c for c in EXAMPLE_COLUMNS if c not in examples.columns]
    if missing:
        raise ValueError(f"training examples lack column(s) {missing} (see docs/engine.md, training_examples)")
    if examples.height == 0:
        raise ValueError("no training examples to publish")
    for column in ("example_id", "messages_json", "split", "teacher_model"):
        nulls = examples[column].null_count()
        if nulls:
            raise ValueError(f"{nulls} training example(s) have no {column}")
    duplicates = examples["example_id"].is_duplicated().sum()
    if duplicates:
        raise ValueError(f"{duplicates} rows share an example_id: example ids must be unique in a version")
    bad_splits = sorted(set(examples["split"].unique().to_list()) - {"train", "validation"})
    if bad_splits:
        raise ValueError(f"split must be 'train' or 'validation', found {bad_splits}")
    return examples.sort("example_id")
