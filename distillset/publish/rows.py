"""What a version may contain: the rows' required columns and checks, and the content hash."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from json.encoder import encode_basestring

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


class ContentHasher:
    """The content hash computed as rows stream by, in ``example_id`` order (``content_hash``)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def update(self, rows: pl.DataFrame) -> None:
        """Add rows (``example_id``, ``messages_json``, ``split``), already in ``example_id`` order
        and after every row added before."""
        columns = rows.select("example_id", "messages_json", "split")
        if any(columns.null_count().row(0)):
            update = self._digest.update
            for row in columns.iter_rows():
                update(canonical_json(list(row)).encode("utf-8"))
                update(b"\n")
            return
        # Every value a string: canonical_json([a, b, c]) is each string JSON-quoted (the encoder's
        # own function) between "[", "," and "]". One update of the joined lines hashes the same
        # bytes as one update per line.
        quote = encode_basestring
        lines = [
            f"[{quote(a)},{quote(b)},{quote(c)}]\n"
            for a, b, c in zip(*(columns.get_column(n).to_list() for n in columns.columns), strict=True)
        ]
        self._digest.update("".join(lines).encode("utf-8"))

    def hexdigest(self, formats: Sequence[str]) -> str:
        """The hash of every row added, the export formats and the layout."""
        digest = self._digest.copy()
        digest.update(canonical_json(sorted(formats)).encode("utf-8"))
        digest.update(f"layout:{LAYOUT_VERSION}".encode())
        return digest.hexdigest()


def content_hash(examples: pl.DataFrame, formats: Sequence[str]) -> str:
    """sha256 over the sorted (example_id, messages_json, split) rows, the export formats and the layout."""
    hasher = ContentHasher()
    hasher.update(examples.select("example_id", "messages_json", "split").sort("example_id"))
    return hasher.hexdigest(formats)


def check_name(name: str) -> None:
    """Raise ValueError unless ``name`` can be a training set's folder name."""
    if not TRAINING_SET_NAME.match(name or "") or ".." in name:
        raise ValueError(f"training set name {name!r} must be letters, digits, '.', '_' or '-' (max 128)")


def check_columns(columns: Sequence[str]) -> None:
    """Raise ValueError unless ``columns`` hold every required ``training_examples`` column."""
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"training examples lack column(s) {missing} (see docs/engine.md, training_examples)")


def normalized(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with every ``EXAMPLE_COLUMNS`` column in order: ``simulated`` null -> false, lineage
    columns a caller omitted added as nulls, ``teacher_origin`` derived from ``simulated`` when unset."""
    rows = rows.with_columns(pl.col("simulated").fill_null(False))
    for column in LINEAGE_OPTIONAL:
        if column not in rows.columns:
            rows = rows.with_columns(pl.lit(None, dtype=pl.String).alias(column))
    # The origin follows from the row's own simulated flag when the caller did not record it.
    derived = pl.when(pl.col("simulated")).then(pl.lit(SIMULATED_ORIGIN)).otherwise(pl.lit(REMOTE_ORIGIN))
    rows = rows.with_columns(pl.coalesce(pl.col("teacher_origin"), derived).alias("teacher_origin"))
    return rows.select(EXAMPLE_COLUMNS)


class RowChecks:
    """The checks of ``validated_examples`` on rows streaming by in ``example_id`` order: key
    columns without nulls, known splits, no repeated example id (adjacent, since rows are sorted)."""

    def __init__(self) -> None:
        self.rows = 0
        self._last_id: str | None = None

    def check(self, rows: pl.DataFrame) -> None:
        """Check the next rows (after those checked before).

        Raises:
            ValueError: nulls in a key column, an unknown split, a repeated example id, or rows
                out of ``example_id`` order.
        """
        for column in ("example_id", "messages_json", "split", "teacher_model"):
            nulls = rows[column].null_count()
            if nulls:
                raise ValueError(f"{nulls} training example(s) have no {column}")
        bad_splits = sorted(set(rows["split"].unique().to_list()) - {"train", "validation"})
        if bad_splits:
            raise ValueError(f"split must be 'train' or 'validation', found {bad_splits}")
        ids = rows["example_id"]
        duplicates = int(ids.is_duplicated().sum()) + int(self._last_id is not None and ids[0] == self._last_id)
        if duplicates:
            raise ValueError(f"{duplicates} rows share an example_id: example ids must be unique in a version")
        if not ids.is_sorted() or (self._last_id is not None and ids[0] < self._last_id):
            raise ValueError("training examples must stream in example_id order")
        self._last_id = ids[-1]
        self.rows += rows.height

    def finish(self) -> None:
        """Raise ValueError when no row was checked."""
        if not self.rows:
            raise ValueError("no training examples to publish")


def validated_examples(name: str, examples: pl.DataFrame) -> pl.DataFrame:
    """``examples`` sorted by id with every ``EXAMPLE_COLUMNS`` column, after checking the name and rows.

    Raises:
        ValueError: a bad name, a missing column, no rows, nulls in a key column, a repeated
            example id or an unknown split.
    """
    check_name(name)
    check_columns(examples.columns)
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
    return normalized(examples).sort("example_id")


class ProvenanceCounter:
    """The ``provenance`` figures counted over rows streaming by."""

    def __init__(self) -> None:
        self.simulated_rows = 0
        self.rows = 0
        self._counts: dict[str, Counter] = {"teacher_origin": Counter(), "served_model": Counter()}
        self._seen: set[str] = set()

    def add(self, rows: pl.DataFrame) -> None:
        """Count the next rows."""
        self.simulated_rows += int(rows["simulated"].fill_null(False).sum())
        self.rows += rows.height
        for column, counter in self._counts.items():
            if column not in rows.columns:
                continue
            self._seen.add(column)
            values = rows[column].fill_null("unknown").value_counts(name="n")
            for key, n in values.iter_rows():
                counter[str(key)] += int(n)

    def result(self) -> dict:
        """The figures of ``provenance``."""
        real_rows = self.rows - self.simulated_rows
        flag: bool | str = "mixed" if self.simulated_rows and real_rows else bool(self.simulated_rows)
        counts = {c: dict(sorted(self._counts[c].items())) if c in self._seen else {} for c in self._counts}
        return {
            "simulated": flag,
            "simulated_rows": self.simulated_rows,
            "real_rows": real_rows,
            "origins": counts["teacher_origin"],
            "served_models": counts["served_model"],
        }


def provenance(examples: pl.DataFrame) -> dict:
    """What the rows say about where their answers came from (the manifest's ``teacher`` figures).

    ``simulated`` is ``True`` when every row is simulated, ``False`` when none is, ``"mixed"``
    otherwise; ``simulated_rows`` / ``real_rows`` count them; ``origins`` and ``served_models``
    count rows per teacher endpoint origin and per model id the endpoint said it served.
    """
    counter = ProvenanceCounter()
    counter.add(examples)
    return counter.result()


def endpoint_kind(simulated: bool | str) -> str:
    """``simulated``, ``remote`` or ``mixed`` for a ``provenance()["simulated"]`` flag."""
    return "mixed" if simulated == "mixed" else "simulated" if simulated else "remote"
