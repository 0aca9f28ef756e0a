"""Table files for the ``dedup`` and ``decontam`` commands: JSONL or Parquet, chosen by extension.

Rows keep every field they came with; the commands only add columns. A row's id is the value of
the first id-like field present (``ID_FIELDS``), or its 0-based row index when there is none.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

ID_FIELDS = ("id", "prompt_id", "example_id", "uid")
SUFFIXES = (".jsonl", ".ndjson", ".parquet")


class TableError(ValueError):
    """A table cannot be read or lacks what the command needs (reported, exit code 2)."""


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise TableError(f"{path}: unsupported file type {path.suffix!r} (use .jsonl or .parquet)")


def read_table(path: Path, text_field: str) -> pl.DataFrame:
    """Every row of a JSONL or Parquet file, checked to have ``text_field``.

    Raises:
        TableError: a missing or unreadable file, an unknown extension or a missing field.
    """
    path = Path(path)
    _check_suffix(path)
    if not path.is_file():
        raise TableError(f"input file not found: {path}")
    try:
        if path.suffix.lower() == ".parquet":
            frame = pl.read_parquet(path)
        else:
            frame = pl.read_ndjson(path, infer_schema_length=None) if path.stat().st_size else pl.DataFrame()
    except Exception as exc:  # polars raises several error types for a malformed file
        raise TableError(f"cannot read {path}: {exc}") from exc
    if text_field not in frame.columns:
        if frame.is_empty() and not frame.columns:
            return pl.DataFrame({text_field: []}, schema={text_field: pl.String})
        raise TableError(f"{path}: no field {text_field!r} (fields: {', '.join(frame.columns)})")
    return frame


def texts_of(frame: pl.DataFrame, text_field: str) -> list[str]:
    """The text column as strings (null becomes empty; non-strings are cast)."""
    return frame[text_field].cast(pl.String, strict=False).fill_null("").to_list()


def row_ids(frame: pl.DataFrame) -> list[str]:
    """The id of each row as a string: the first id-like field, else the 0-based row index.

    Raises:
        TableError: the id field has nulls or repeated values.
    """
    for field in ID_FIELDS:
        if field in frame.columns:
            values = frame[field].cast(pl.String, strict=False)
            if values.null_count() or values.n_unique() != len(values):
                raise TableError(f"field {field!r} has empty or repeated ids; ids must be unique")
            return values.to_list()
    return [str(index) for index in range(len(frame))]


def write_table(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` as JSONL or Parquet (by extension), creating the folder."""
    path = Path(path)
    _check_suffix(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        frame.write_parquet(path)
    else:
        frame.write_ndjson(path)
