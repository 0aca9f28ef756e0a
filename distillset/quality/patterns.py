"""The refusal / deflection / self-identification phrase table.

The shipped table is ``data/quality/refusal_patterns.csv``; users add phrases with one more CSV of
the same columns (``settings.quality.refusal_patterns``, from ``DISTILLSET_REFUSAL_PATTERNS``),
passed as ``extra``. A
pattern is a literal phrase, case-insensitive, whose spaces match any whitespace (see
``sql/quality/pattern_regex.sql``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl

from distillset.settings.paths import DATA_DIR

SHIPPED_PATTERNS = DATA_DIR / "quality" / "refusal_patterns.csv"
PATTERN_KINDS = ("refusal", "deflection", "self_identification")
REQUIRED_COLUMNS = ("pattern", "language", "kind")
OPTIONAL_COLUMNS = ("added", "note")


def read_pattern_csv(path: Path) -> list[dict]:
    """The rows of one pattern CSV, validated.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a required column is missing, a pattern is empty or a kind is unknown
            (the message names the file and the line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"refusal pattern file not found: {path}")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{path}: missing column(s) {', '.join(missing)}; expected "
                f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}"
            )
        rows = []
        for line, row in enumerate(reader, start=2):
            pattern = (row.get("pattern") or "").strip()
            kind = (row.get("kind") or "").strip()
            if not pattern:
                raise ValueError(f"{path}:{line}: empty pattern")
            if kind not in PATTERN_KINDS:
                raise ValueError(f"{path}:{line}: kind {kind!r} is not one of {', '.join(PATTERN_KINDS)}")
            rows.append(
                {
                    "pattern": pattern,
                    "language": (row.get("language") or "").strip(),
                    "kind": kind,
                    "added": (row.get("added") or "").strip() or None,
                    "note": (row.get("note") or "").strip() or None,
                    "source": str(path),
                }
            )
    return rows


def load_patterns(extra: Path | None = None) -> pl.DataFrame:
    """The shipped patterns plus those of ``extra`` (one frame, the ``refusal_patterns`` table)."""
    rows = read_pattern_csv(SHIPPED_PATTERNS)
    if extra is not None:
        rows += read_pattern_csv(extra)
    schema = {name: pl.Utf8 for name in ("pattern", "language", "kind", "added", "note", "source")}
    return pl.DataFrame(rows, schema=schema)
