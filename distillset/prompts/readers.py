"""Rows out of one prompt file's bytes, per file type: JSON Lines, JSON, Parquet, CSV.

A row that cannot even be parsed (bad JSON, bad UTF-8, a broken CSV record) comes out as a
``SourceRow`` carrying a reject reason, so one bad line is one reject rather than a lost file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl

from distillset import ids

EXCERPT_CHARS = 200


@dataclass
class SourceRow:
    line: int | None
    value: Any
    excerpt: str | None
    # A reason code when the row could not even be parsed (bad JSON, bad UTF-8...).
    parse_error: tuple[str, str] | None = None


def _read_jsonl(data: bytes) -> Iterator[SourceRow]:
    # Decoded line by line, so one line of bad bytes is one reject rather than a lost file.
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.lstrip().startswith(b"["):
        # A JSON array saved as .jsonl (a common export mistake) would be one invalid_json reject
        # per physical line; it is read as the array it is, or refused once.
        array = _json_array(data)
        if array is not None:
            yield from array
            return
        if not _first_line_parses(data):
            yield _broken_array(data)
            return
    for number, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            continue
        excerpt = excerpt_of(raw.decode("utf-8", errors="replace"))
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield SourceRow(number, None, excerpt, ("invalid_utf8", f"the line is not valid UTF-8 at byte {exc.start}"))
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield SourceRow(
                number, None, excerpt, ("invalid_json", f"the line is not valid JSON: {exc.msg} at column {exc.colno}")
            )
            continue
        yield SourceRow(number, value, excerpt)


def _json_array(data: bytes) -> list[SourceRow] | None:
    """The rows of a whole-file JSON array, numbered by position, or None if it is not one."""
    try:
        whole = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(whole, list):
        return None
    return [SourceRow(n, value, excerpt_of(ids.canonical_json(value))) for n, value in enumerate(whole, start=1)]


def _first_line_parses(data: bytes) -> bool:
    first = next(line for line in data.split(b"\n") if line.strip())
    try:
        json.loads(first.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return True


def _broken_array(data: bytes) -> SourceRow:
    """The one reject of a file that opens a JSON array it never completes."""
    text = data.decode("utf-8", errors="replace")
    try:
        json.loads(text)
        where = ""
    except json.JSONDecodeError as exc:
        where = f" ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    detail = f"this is a JSON array, not JSON Lines, and it is not valid JSON either{where}"
    return SourceRow(None, None, excerpt_of(text), ("invalid_json", detail))


def _read_json(data: bytes) -> Iterator[SourceRow]:
    # A .json file is usually JSON Lines; a whole-file array (or one object) is accepted too,
    # its rows numbered by position since lines mean nothing in a pretty-printed array.
    array = _json_array(data)
    if array is not None:
        yield from array
        return
    try:
        whole = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        yield from _read_jsonl(data)
        return
    yield SourceRow(1, whole, excerpt_of(ids.canonical_json(whole)))


def _read_parquet(data: bytes) -> Iterator[SourceRow]:
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - polars raises several types for a corrupt file
        yield SourceRow(
            None, None, None, ("unreadable_file", f"not a readable Parquet file: {type(exc).__name__}: {exc}")
        )
        return
    for number, value in enumerate(frame.iter_rows(named=True), start=1):
        yield SourceRow(number, value, excerpt_of(json.dumps(value, ensure_ascii=False, default=str)))


def _read_csv(data: bytes) -> Iterator[SourceRow]:
    # The stdlib csv reader rather than polars: with surrogateescape decoding, a row holding bad
    # UTF-8 bytes can be rejected alone, where polars refuses (or silently replaces) the whole file.
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield SourceRow(None, None, None, ("unreadable_file", f"not a readable CSV file: {exc}"))
        return
    if header is None:
        return
    number = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader cannot resynchronise after a malformed record; the rest of the file is refused.
            reason = "too_long" if "field larger than field limit" in str(exc) else "unreadable_file"
            yield SourceRow(number + 1, None, None, (reason, f"CSV parsing stopped at data row {number + 1}: {exc}"))
            return
        if not any(field.strip() for field in fields):
            continue
        number += 1
        excerpt = excerpt_of(
            ",".join(fields).encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
        )
        if any(_has_bad_bytes(field) for field in fields):
            yield SourceRow(number, None, excerpt, ("invalid_utf8", "the row is not valid UTF-8"))
        elif len(fields) != len(header):
            yield SourceRow(
                number, None, excerpt, ("unknown_shape", f"the row has {len(fields)} fields, the header {len(header)}")
            )
        else:
            yield SourceRow(number, dict(zip(header, fields, strict=True)), excerpt)


ROW_READERS = {"jsonl": _read_jsonl, "json": _read_json, "parquet": _read_parquet, "csv": _read_csv}


def _has_bad_bytes(text: str) -> bool:
    # surrogateescape maps each undecodable byte to a lone surrogate, which strict UTF-8 refuses.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def excerpt_of(text: str) -> str:
    # NUL is kept out of the catalog: DuckDB and many viewers truncate strings at it.
    return text[:EXCERPT_CHARS].replace("\x00", "\ufffd")
