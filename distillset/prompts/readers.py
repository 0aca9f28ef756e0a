"""Rows out of one prompt file, per file type: JSON Lines (also gzipped), JSON, Parquet, CSV.

Files are streamed: JSON Lines and CSV a block of bytes at a time, Parquet a row group at a
time, so memory holds one block or row group whatever the file's size (a ``.json`` file, one
JSON value, and a ``.jsonl`` file that is really one JSON array are read whole).

A row that cannot even be parsed (bad JSON, bad UTF-8, a broken CSV record) comes out as a
``SourceRow`` carrying a reject reason, so one bad line is one reject rather than a lost file.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import polars as pl
import pyarrow.parquet as pq

from distillset import ids

EXCERPT_CHARS = 200


@dataclass
class SourceRow:
    line: int | None
    value: Any
    excerpt: str | None
    # A reason code when the row could not even be parsed (bad JSON, bad UTF-8...).
    parse_error: tuple[str, str] | None = None


BLOCK_BYTES = 1 << 20
"""Bytes read from a prompt file at a time: lines (and CSV records) are put together across blocks."""

PARQUET_BATCH_ROWS = 10_000
"""Rows taken from a Parquet file at a time (never more than one row group)."""


def _lines(handle: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    """The file's lines (split on ``\\n``, the ``\\n`` removed), read ``block_bytes`` at a time.

    A line that spans blocks comes out whole; only the current line and one block are in memory.
    """
    tail = b""
    while True:
        block = handle.read(block_bytes)
        if not block:
            break
        parts = (tail + block).split(b"\n")
        tail = parts.pop()
        yield from parts
    if tail:
        yield tail


def _read_jsonl(handle: BinaryIO, block_bytes: int = BLOCK_BYTES) -> Iterator[SourceRow]:
    # Decoded line by line, so one line of bad bytes is one reject rather than a lost file.
    lines = _lines(handle, block_bytes)
    first = next(lines, None)
    if first is None:
        return
    if first.startswith(b"\xef\xbb\xbf"):
        first = first[3:]
    leading = [first]
    while not first.strip():
        first = next(lines, None)
        if first is None:
            return
        leading.append(first)
    if first.lstrip().startswith(b"["):
        # A JSON array saved as .jsonl (a common export mistake) would be one invalid_json reject
        # per physical line; it is read whole as the array it is, or refused once (such a file
        # is not streamed: an array is one JSON value).
        data = b"\n".join([*leading, *lines])
        array = _json_array(data)
        if array is not None:
            yield from array
            return
        if not _first_line_parses(data):
            yield _broken_array(data)
            return
        lines = iter(data.split(b"\n")[len(leading) :])
    for number, raw in enumerate(itertools.chain(leading, lines), start=1):
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            excerpt = excerpt_of(raw.decode("utf-8", errors="replace"))
            yield SourceRow(number, None, excerpt, ("invalid_utf8", f"the line is not valid UTF-8 at byte {exc.start}"))
            continue
        # Valid UTF-8 decodes the same with errors="replace": the excerpt is the decoded line's.
        excerpt = excerpt_of(line)
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield SourceRow(
                number, None, excerpt, ("invalid_json", f"the line is not valid JSON: {exc.msg} at column {exc.colno}")
            )
            continue
        yield SourceRow(number, value, excerpt)


def _read_jsonl_gz(handle: BinaryIO, block_bytes: int = BLOCK_BYTES) -> Iterator[SourceRow]:
    """Gzip-compressed JSON Lines, decompressed as a stream; a corrupt stream ends the file with a reject."""
    rows = _read_jsonl(gzip.GzipFile(fileobj=handle, mode="rb"), block_bytes)
    last_line = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except (OSError, EOFError, zlib.error) as exc:
            yield SourceRow(
                None, None, None, ("unreadable_file", f"not a readable gzip file after line {last_line}: {exc}")
            )
            return
        last_line = row.line or last_line
        yield row


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


def _read_json(handle: BinaryIO, block_bytes: int = BLOCK_BYTES) -> Iterator[SourceRow]:
    # A .json file is usually JSON Lines; a whole-file array (or one object) is accepted too,
    # its rows numbered by position since lines mean nothing in a pretty-printed array. It is
    # read whole (one JSON value cannot be streamed row by row): large sets belong in .jsonl.
    data = handle.read()
    array = _json_array(data)
    if array is not None:
        yield from array
        return
    try:
        whole = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        yield from _read_jsonl(io.BytesIO(data), block_bytes)
        return
    yield SourceRow(1, whole, excerpt_of(ids.canonical_json(whole)))


def _read_parquet(handle: BinaryIO, block_bytes: int = BLOCK_BYTES) -> Iterator[SourceRow]:
    # Row group by row group (at most PARQUET_BATCH_ROWS rows at once), never the whole table.
    try:
        parquet = pq.ParquetFile(handle)
        batches = parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a corrupt file
        detail = f"not a readable Parquet file: {type(exc).__name__}: {exc}"
        yield SourceRow(None, None, None, ("unreadable_file", detail))
        return
    number = 0
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - a corrupt row group ends the file
            yield SourceRow(
                None,
                None,
                None,
                ("unreadable_file", f"Parquet reading stopped after row {number}: {type(exc).__name__}: {exc}"),
            )
            return
        for value in pl.from_arrow(batch).iter_rows(named=True):
            number += 1
            yield SourceRow(number, value, excerpt_of(json.dumps(value, ensure_ascii=False, default=str)))


def _read_csv(handle: BinaryIO, block_bytes: int = BLOCK_BYTES) -> Iterator[SourceRow]:
    # The stdlib csv reader rather than polars: with surrogateescape decoding, a row holding bad
    # UTF-8 bytes can be rejected alone, where polars refuses (or silently replaces) the whole file.
    # It reads the text stream record by record (a quoted field may span lines and blocks).
    text = io.TextIOWrapper(
        io.BufferedReader(_Blocks(handle, block_bytes), buffer_size=block_bytes),
        encoding="utf-8",
        errors="surrogateescape",
        newline="",
    )
    lines = iter(text)
    first = next(lines, None)
    if first is None:
        return
    reader = csv.reader(itertools.chain([first.removeprefix("\ufeff")], lines))
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


class _Blocks(io.RawIOBase):
    """A raw stream over ``handle`` that never returns more than ``block_bytes`` per read."""

    def __init__(self, handle: BinaryIO, block_bytes: int):
        self._handle = handle
        self._block_bytes = block_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._handle.read(min(len(buffer), self._block_bytes))
        buffer[: len(data)] = data
        return len(data)


ROW_READERS = {
    "jsonl": _read_jsonl,
    "jsonl.gz": _read_jsonl_gz,
    "json": _read_json,
    "parquet": _read_parquet,
    "csv": _read_csv,
}
"""Per file type: ``reader(binary handle, block_bytes)`` -> the file's rows, streamed."""


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
