"""Read raw prompt files (a local folder, one file, or an ``s3://`` prefix) into the ``raw_prompts`` table.

Every row either becomes a prompt with its provenance (file, line, file hash, license) or a reject
with a reason code; a few bad rows never stop a read. Files go through fsspec, so any store it
knows (S3 via s3fs, with ``AWS_ENDPOINT_URL`` for S3-compatible ones) works like a folder.

Whole files are read into memory: the file hash needs every byte anyway, and the resulting frame
holds every prompt, so streaming one file would not lower the peak by more than a constant.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

import fsspec
import polars as pl

from distillset import ids
from distillset.prompts.formats import PromptShapeError, normalize_row, prompt_text

STAGE = "raw_prompts"
EXCERPT_CHARS = 200
LICENSE_SIDECAR_SUFFIX = ".license"
LICENSES_INDEX = "licenses.json"
FILE_FORMATS = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}

RAW_PROMPTS_SCHEMA: dict[str, pl.DataType] = {
    "prompt_id": pl.String(),
    "text_hash": pl.String(),
    "system": pl.String(),
    "turns": pl.List(pl.String()),
    "prompt_text": pl.String(),
    "reference": pl.String(),
    "category": pl.String(),
    "source_format": pl.String(),
    "source_file": pl.String(),
    "source_line": pl.Int64(),
    "source_sha256": pl.String(),
    "license": pl.String(),
    "ingested_at": pl.Datetime("us", "UTC"),
}

REJECTS_SCHEMA: dict[str, pl.DataType] = {
    "stage": pl.String(),
    "source_file": pl.String(),
    "source_line": pl.Int64(),
    "source_sha256": pl.String(),
    "reason": pl.String(),
    "detail": pl.String(),
    "raw_excerpt": pl.String(),
}

FILES_SCHEMA: dict[str, pl.DataType] = {
    "source_file": pl.String(),
    "source_sha256": pl.String(),
    "file_format": pl.String(),
    "rows_read": pl.Int64(),
    "rows_rejected": pl.Int64(),
    "license": pl.String(),
}


@dataclass
class PromptReadResult:
    """What one read produced.

    Attributes:
        prompts: the normalized prompts (``RAW_PROMPTS_SCHEMA``).
        rejects: the rows and files that were refused (``REJECTS_SCHEMA``).
        files: one row per file seen (``FILES_SCHEMA``): ``rows_read`` counts the non-empty rows,
            kept or rejected; ``rows_rejected`` counts this file's rejects.
    """

    prompts: pl.DataFrame
    rejects: pl.DataFrame
    files: pl.DataFrame


@dataclass
class _SourceRow:
    line: int | None
    value: Any
    excerpt: str | None
    # A reason code when the row could not even be parsed (bad JSON, bad UTF-8...).
    parse_error: tuple[str, str] | None = None


def read_prompts(
    url: str,
    *,
    default_license: str = "unknown",
    max_chars: int = 100_000,
    storage_options: dict | None = None,
    ingested_at: datetime | None = None,
) -> PromptReadResult:
    """Read every prompt file under ``url`` into ``raw_prompts`` rows and rejects.

    Folders are read recursively, in sorted path order. Hidden files and folders (name starting
    with ``.``), license sidecars (``*.license``) and ``licenses.json`` are skipped. ``.jsonl`` and
    ``.json`` are JSON Lines (a ``.json`` holding one JSON array or object is accepted too),
    ``.parquet`` and ``.csv`` are tables; any other file becomes one ``unsupported_file`` reject.

    A file's license is the first non-empty line of its sidecar ``<file>.license``, else its entry
    in the nearest ``licenses.json`` (file names relative to that json's folder) in its folder or
    a parent folder up to ``url``, else ``default_license``.

    Args:
        url: a folder, a single file, or an fsspec URL such as ``s3://bucket/prefix``.
        default_license: the license of files with no sidecar and no ``licenses.json`` entry.
        max_chars: prompts whose text (system and turns) is longer are rejected as ``too_long``.
        storage_options: passed to ``fsspec.core.url_to_fs`` (e.g. ``client_kwargs`` for s3fs).
        ingested_at: the read time stamped on every row (UTC; defaults to now).

    Returns:
        The prompts, the rejects and a per-file summary.

    Raises:
        FileNotFoundError: ``url`` does not exist.
        ValueError: ``url`` holds no file with a supported extension, or a ``licenses.json``
            is malformed.
    """
    fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if not fs.exists(root):
        raise FileNotFoundError(f"prompt source {url!r} does not exist")
    ingested_at = _as_utc(ingested_at or datetime.now(timezone.utc))

    if fs.isfile(root):
        paths = [root]
        base = posixpath.dirname(root)
        others = {p for p in (root + LICENSE_SIDECAR_SUFFIX, posixpath.join(base, LICENSES_INDEX)) if fs.isfile(p)}
    else:
        base = root
        found = sorted(fs.find(root))
        others = {p for p in found if not _is_hidden(_relative(p, base))}
        paths = [p for p in sorted(others) if not _is_metadata(p)]
    if not any(_file_format(p) for p in paths):
        seen = ", ".join(posixpath.basename(p) for p in paths[:5]) or "no files"
        raise ValueError(
            f"prompt source {url!r} holds no prompt files (.jsonl, .json, .parquet, .csv); found: {seen}"
        )

    licenses = _LicenseResolver(fs, base, others, default_license)
    builder = _FrameBuilder(ingested_at, max_chars)
    for path in paths:
        builder.read_file(fs, path, _display_name(fs, path), licenses.license_of(path))
    return builder.result()


class _FrameBuilder:
    """Accumulates columns for the three frames while files are read."""

    def __init__(self, ingested_at: datetime, max_chars: int):
        self.ingested_at = ingested_at
        self.max_chars = max_chars
        self.prompts: dict[str, list] = {name: [] for name in RAW_PROMPTS_SCHEMA}
        self.rejects: dict[str, list] = {name: [] for name in REJECTS_SCHEMA}
        self.files: dict[str, list] = {name: [] for name in FILES_SCHEMA}

    def read_file(self, fs: fsspec.AbstractFileSystem, path: str, source_file: str, license_: str) -> None:
        file_format = _file_format(path)
        rows_read = 0
        rejects_before = len(self.rejects["stage"])
        sha256 = None
        if file_format is None:
            # Not read at all: an unknown file may be large, and its hash would serve nothing.
            self._reject(source_file, None, None, "unsupported_file",
                         f"{posixpath.basename(path)!r} is not a prompt file (.jsonl, .json, .parquet, .csv)", None)
        else:
            try:
                data = fs.cat_file(path)
            except Exception as exc:  # noqa: BLE001 - any storage failure is this file's reject
                self._reject(source_file, None, None, "unreadable_file", f"could not read the file: {type(exc).__name__}: {exc}", None)
            else:
                sha256 = ids.sha256_hex(data)
                for row in _ROW_READERS[file_format](data):
                    rows_read += 1
                    self._add_row(row, source_file, sha256, license_)
        self.files["source_file"].append(source_file)
        self.files["source_sha256"].append(sha256)
        self.files["file_format"].append(file_format or "unsupported")
        self.files["rows_read"].append(rows_read)
        self.files["rows_rejected"].append(len(self.rejects["stage"]) - rejects_before)
        self.files["license"].append(license_)

    def _add_row(self, row: _SourceRow, source_file: str, sha256: str, license_: str) -> None:
        if row.parse_error is not None:
            self._reject(source_file, row.line, sha256, *row.parse_error, row.excerpt)
            return
        try:
            prompt = normalize_row(row.value)
        except PromptShapeError as exc:
            self._reject(source_file, row.line, sha256, exc.reason, str(exc), row.excerpt)
            return
        text = prompt_text(prompt.system, prompt.turns)
        if len(text) > self.max_chars:
            self._reject(source_file, row.line, sha256, "too_long",
                         f"the prompt has {len(text)} characters, more than max_chars={self.max_chars}", row.excerpt)
            return
        columns = self.prompts
        columns["prompt_id"].append(ids.prompt_id(sha256, row.line))
        columns["text_hash"].append(ids.sha256_hex(ids.normalize_text(text)))
        columns["system"].append(prompt.system)
        columns["turns"].append(prompt.turns)
        columns["prompt_text"].append(text)
        columns["reference"].append(prompt.reference)
        columns["category"].append(prompt.category)
        columns["source_format"].append(prompt.source_format)
        columns["source_file"].append(source_file)
        columns["source_line"].append(row.line)
        columns["source_sha256"].append(sha256)
        columns["license"].append(license_)
        columns["ingested_at"].append(self.ingested_at)

    def _reject(
        self, source_file: str, line: int | None, sha256: str | None, reason: str, detail: str, excerpt: str | None
    ) -> None:
        for name, value in zip(REJECTS_SCHEMA, (STAGE, source_file, line, sha256, reason, detail, excerpt)):
            self.rejects[name].append(value)

    def result(self) -> PromptReadResult:
        return PromptReadResult(
            prompts=pl.DataFrame(self.prompts, schema=RAW_PROMPTS_SCHEMA),
            rejects=pl.DataFrame(self.rejects, schema=REJECTS_SCHEMA),
            files=pl.DataFrame(self.files, schema=FILES_SCHEMA),
        )


def _read_jsonl(data: bytes) -> Iterator[_SourceRow]:
    # Decoded line by line, so one line of bad bytes is one reject rather than a lost file.
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for number, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            continue
        excerpt = _excerpt(raw.decode("utf-8", errors="replace"))
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield _SourceRow(number, None, excerpt, ("invalid_utf8", f"the line is not valid UTF-8 at byte {exc.start}"))
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield _SourceRow(number, None, excerpt, ("invalid_json", f"the line is not valid JSON: {exc.msg} at column {exc.colno}"))
            continue
        yield _SourceRow(number, value, excerpt)


def _read_json(data: bytes) -> Iterator[_SourceRow]:
    # A .json file is usually JSON Lines; a whole-file array (or one object) is accepted too,
    # its rows numbered by position since lines mean nothing in a pretty-printed array.
    try:
        whole = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        yield from _read_jsonl(data)
        return
    items = whole if isinstance(whole, list) else [whole]
    for number, value in enumerate(items, start=1):
        yield _SourceRow(number, value, _excerpt(ids.canonical_json(value)))


def _read_parquet(data: bytes) -> Iterator[_SourceRow]:
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - polars raises several types for a corrupt file
        yield _SourceRow(None, None, None, ("unreadable_file", f"not a readable Parquet file: {type(exc).__name__}: {exc}"))
        return
    for number, value in enumerate(frame.iter_rows(named=True), start=1):
        yield _SourceRow(number, value, _excerpt(json.dumps(value, ensure_ascii=False, default=str)))


def _read_csv(data: bytes) -> Iterator[_SourceRow]:
    # The stdlib csv reader rather than polars: with surrogateescape decoding, a row holding bad
    # UTF-8 bytes can be rejected alone, where polars refuses (or silently replaces) the whole file.
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield _SourceRow(None, None, None, ("unreadable_file", f"not a readable CSV file: {exc}"))
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
            yield _SourceRow(number + 1, None, None, (reason, f"CSV parsing stopped at data row {number + 1}: {exc}"))
            return
        if not any(field.strip() for field in fields):
            continue
        number += 1
        excerpt = _excerpt(",".join(fields).encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace"))
        if any(_has_bad_bytes(field) for field in fields):
            yield _SourceRow(number, None, excerpt, ("invalid_utf8", "the row is not valid UTF-8"))
        elif len(fields) != len(header):
            yield _SourceRow(number, None, excerpt, ("unknown_shape", f"the row has {len(fields)} fields, the header {len(header)}"))
        else:
            yield _SourceRow(number, dict(zip(header, fields)), excerpt)


_ROW_READERS = {"jsonl": _read_jsonl, "json": _read_json, "parquet": _read_parquet, "csv": _read_csv}


class _LicenseResolver:
    """Finds each file's license: its sidecar, else the nearest ``licenses.json``, else the default."""

    def __init__(self, fs: fsspec.AbstractFileSystem, base: str, listed: set[str], default_license: str):
        self.fs = fs
        self.base = base
        self.listed = listed
        self.default_license = default_license
        self._indexes: dict[str, dict[str, str]] = {}

    def license_of(self, path: str) -> str:
        sidecar = path + LICENSE_SIDECAR_SUFFIX
        if sidecar in self.listed:
            for line in self.fs.cat_file(sidecar).decode("utf-8", errors="replace").splitlines():
                if line.strip():
                    return line.strip()
        folder = posixpath.dirname(path)
        while True:
            index_path = posixpath.join(folder, LICENSES_INDEX)
            if index_path in self.listed:
                entry = self._index(index_path).get(_relative(path, folder))
                if entry:
                    return entry
            if folder == self.base or not folder.startswith(self.base):
                return self.default_license
            folder = posixpath.dirname(folder)

    def _index(self, index_path: str) -> dict[str, str]:
        if index_path not in self._indexes:
            try:
                index = json.loads(self.fs.cat_file(index_path).decode("utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{index_path!r} is not valid JSON: {exc}") from None
            if not isinstance(index, dict) or not all(isinstance(v, str) for v in index.values()):
                raise ValueError(f"{index_path!r} must map file names to license strings")
            self._indexes[index_path] = {posixpath.normpath(k): v.strip() for k, v in index.items()}
        return self._indexes[index_path]


def _file_format(path: str) -> str | None:
    name = posixpath.basename(path).lower()
    return next((fmt for ext, fmt in FILE_FORMATS.items() if name.endswith(ext)), None)


def _is_metadata(path: str) -> bool:
    name = posixpath.basename(path)
    return name.endswith(LICENSE_SIDECAR_SUFFIX) or name == LICENSES_INDEX


def _is_hidden(relative_path: str) -> bool:
    return any(part.startswith(".") for part in relative_path.split("/"))


def _relative(path: str, folder: str) -> str:
    return path[len(folder):].lstrip("/") if folder else path


def _display_name(fs: fsspec.AbstractFileSystem, path: str) -> str:
    # Local files keep their plain path; remote ones get their protocol back (s3://bucket/key).
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return path if "file" in protocols or "local" in protocols else fs.unstrip_protocol(path)


def _has_bad_bytes(text: str) -> bool:
    # surrogateescape maps each undecodable byte to a lone surrogate, which strict UTF-8 refuses.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _excerpt(text: str) -> str:
    # NUL is kept out of the catalog: DuckDB and many viewers truncate strings at it.
    return text[:EXCERPT_CHARS].replace("\x00", "\ufffd")


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
