"""What a version may contain: the rows' required columns and checks, and the content hash."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import polars as pl

from distillset.ids import canonical_json
from distillset.settings.tree import TRAINING_SET_NAME
from distillset.training.examples import REMOTE_ORIGIN, SIMULATED_ORIGIN, TRAINING_EXAMPLES_COLUMNS

EXAMPLE_COLUMNS = tuple(TRAINING_EXAMPLES_COLUMNS)
LINEAGE_OPTIONAL = ("teacher_origin", "served_model", "text_hash", "run_id")
"""Columns a caller may omit (rows built before they existed): filled from the row or left null."""
REQUIRED_COLUMNS = tuple(c for c in EXAMPLE_COLUMNS if c not in LINEAGE_OPTIONAL)
# Bumped when the files of a version change shape (2: typed messages, per-split files): the same
# rows published in a new layout are a new version, not "unchanged".
LAYOUT_VERSION = 2


def content_hash(examples: pl.DataFrame, formats: Sequence[str]) -> str:
    """sha256 over the sorted (example_id, messages_json, split) rows, the export formats and the layout."""
    digest = hashlib.sha256()
    rows = examples.select("example_id", "messages_json", "split").sort("example_id")
    for row in rows.iter_rows():
        digest.update(canonical_json(list(row)).encode("utf-8"))
        digest.update(b"\n")
    digest.update(canonical_json(sorted(formats)).encode("utf-8"))
    digest.update(f"layout:{LAYOUT_VERSION}".encode())
    return digest.hexdigest()


def check_name(name: str) -> None:
    """Raise ValueError unless ``name`` can be a training set's folder name."""
    if not TRAINING_SET_NAME.match(name or "") or ".." in name:
        raise ValueError(f"training set name {name!r} must be letters, digits, '.', '_' or '-' (max 128)")


def validated_examples(name: str, examples: pl.DataFrame) -> pl.DataFrame:
    """``examples`` sorted by id with every ``EXAMPLE_COLUMNS`` column, after checking the name and rows.

    Raises:
        ValueError: a bad name, a missing column, no rows, nulls in a key column, a repeated
            example id or an unknown split.
    """
    check_name(name)
    missing = [c for c in REQUIRED_COLUMNS if c not in examples.columns]
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
    examples = examples.with_columns(pl.col("simulated").fill_null(False))
    for column in LINEAGE_OPTIONAL:
        if column not in examples.columns:
            examples = examples.with_columns(pl.lit(None, dtype=pl.String).alias(column))
    # The origin follows from the row's own simulated flag when the caller did not record it.
    derived = pl.when(pl.col("simulated")).then(pl.lit(SIMULATED_ORIGIN)).otherwise(pl.lit(REMOTE_ORIGIN))
    examples = examples.with_columns(pl.coalesce(pl.col("teacher_origin"), derived).alias("teacher_origin"))
    return examples.select(EXAMPLE_COLUMNS).sort("example_id")


def provenance(examples: pl.DataFrame) -> dict:
    """What the rows say about where their answers came from (the manifest's ``teacher`` figures).

    ``simulated`` is ``True`` when every row is simulated, ``False`` when none is, ``"mixed"``
    otherwise; ``simulated_rows`` / ``real_rows`` count them; ``origins`` and ``served_models``
    count rows per teacher endpoint origin and per model id the endpoint said it served.
    """
    simulated_rows = int(examples["simulated"].fill_null(False).sum())
    real_rows = examples.height - simulated_rows
    flag: bool | str = "mixed" if simulated_rows and real_rows else bool(simulated_rows)

    def counts(column: str) -> dict[str, int]:
        if column not in examples.columns:
            return {}
        values = examples[column].fill_null("unknown").value_counts(name="n").sort(column)
        return {str(k): int(n) for k, n in values.iter_rows()}

    return {
        "simulated": flag,
        "simulated_rows": simulated_rows,
        "real_rows": real_rows,
        "origins": counts("teacher_origin"),
        "served_models": counts("served_model"),
    }


def endpoint_kind(simulated: bool | str) -> str:
    """``simulated``, ``remote`` or ``mixed`` for a ``provenance()["simulated"]`` flag."""
    return "mixed" if simulated == "mixed" else "simulated" if simulated else "remote"
