"""Table files for the ``dedup`` and ``decontam`` commands: JSONL or Parquet, chosen by extension.

Rows keep every field they came with; the commands only add columns. A row's id is the value of
the first id-like field present (``ID_FIELDS``), or its 0-based row index when there is none.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from distillset.jsonl import iter_json_objects

ID_FIELDS = ("id", "prompt_id", "example_id", "uid")
SUFFIXES = (".jsonl", ".ndjson", ".parquet")


class TableError(ValueError):
    """A table cannot be read or lacks what the command needs (reported, exit code 2)."""


def _check_suffix(path: Path) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise TableError(f"{path}: unsupported file type {path.suffix!r} (use .jsonl or .parquet)")


def check_output(path: Path, source: Path) -> None:
    """Refuse an output the command could not write, before any work is done.

    Raises:
        TableError: an unknown extension, the input itself, an existing folder, or a location that
            cannot be created or written.
    """
    path = Path(path)
    _check_suffix(path)
    if path.exists() and path.is_dir():
        raise TableError(f"--out {path} is a folder; give a file name ending in .jsonl or .parquet")
    if Path(source).exists() and path.exists() and path.resolve() == Path(source).resolve():
        raise TableError(f"--out {path} is the input file; the input is never overwritten")
    # The nearest folder that exists is where the output's folders would be created.
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise TableError(f"--out {path}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise TableError(f"--out {path}: not writable (permission denied in {ancestor})")


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
        raise TableError(_read_error(path, exc)) from None
    if text_field not in frame.columns:
        if frame.is_empty() and not frame.columns:
            return pl.DataFrame({text_field: []}, schema={text_field: pl.String})
        raise TableError(f"{path}: no field {text_field!r} (fields: {', '.join(frame.columns)})")
    return frame


def _read_error(path: Path, exc: Exception) -> str:
    """One line saying why ``path`` could not be read: for JSONL, the file and the first bad line."""
    if path.suffix.lower() != ".parquet":
        try:
            for _ in iter_json_objects(path):
                pass
        except ValueError as bad_line:  # names the file and the line (UnicodeDecodeError included)
            if isinstance(bad_line, UnicodeDecodeError):
                return f"{path}: not valid UTF-8 ({bad_line.reason} at byte {bad_line.start})"
            return str(bad_line)
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot read {path}: {first_line}"


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
