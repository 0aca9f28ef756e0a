"""Read raw prompt files (a local folder, one file, or an ``s3://`` prefix) into the ``raw_prompts`` table.

Every row either becomes a prompt with its provenance (file, line, file hash, license) or a reject
with a reason code; a few bad rows never stop a read. Files go through fsspec, so any store it
knows (S3 via s3fs, with ``AWS_ENDPOINT_URL`` for S3-compatible ones) works like a folder.

Files are streamed (``distillset.prompts.readers``) and the rows come out in chunks of at most
``chunk_rows`` prompts (``read_prompt_chunks``), so memory holds one chunk whatever the input's
size. A row's id needs its file's hash before the row is read: a local file is hashed in a first
streamed pass, a remote one is copied to a temporary file while it is hashed (one download), then
rows are read from the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

import fsspec
import polars as pl
import pyarrow as pa

from distillset import ids, storage
from distillset.prompts.formats import PromptShapeError, normalize_row, prompt_text
from distillset.prompts.readers import BLOCK_BYTES, ROW_READERS, SourceRow
from distillset.prompts.sidecars import LICENSE_SIDECAR_SUFFIX, LICENSES_INDEX, LicenseResolver, relative

STAGE = "raw_prompts"
FILE_FORMATS = {".jsonl.gz": "jsonl.gz", ".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
DEFAULT_CHUNK_ROWS = 50_000
PREVIEW_ROWS = 20

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


def read_prompts(
    url: str,
    *,
    default_license: str = "unknown",
    max_chars: int = 100_000,
    storage_options: dict | None = None,
    ingested_at: datetime | None = None,
    follow_symlinks: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    block_bytes: int = BLOCK_BYTES,
) -> PromptReadResult:
    """Every prompt file under ``url`` as ``raw_prompts`` rows and rejects, in memory.

    ``read_prompt_chunks`` with a sink that keeps every chunk: for tests, the command line and small
    sets; the flow streams the chunks to the catalog instead. Arguments and errors as there.
    """
    prompts: list[pl.DataFrame] = []
    rejects: list[pl.DataFrame] = []

    def keep(prompt_chunk: pl.DataFrame, reject_chunk: pl.DataFrame) -> None:
        prompts.append(prompt_chunk)
        rejects.append(reject_chunk)

    summary = read_prompt_chunks(
        url,
        keep,
        default_license=default_license,
        max_chars=max_chars,
        storage_options=storage_options,
        ingested_at=ingested_at,
        follow_symlinks=follow_symlinks,
        chunk_rows=chunk_rows,
        block_bytes=block_bytes,
    )
    return PromptReadResult(
        prompts=pl.concat(prompts) if prompts else pl.DataFrame(schema=RAW_PROMPTS_SCHEMA),
        rejects=pl.concat(rejects) if rejects else pl.DataFrame(schema=REJECTS_SCHEMA),
        files=summary.files,
    )


@dataclass
class PromptReadSummary:
    """What a chunked read saw, without its rows (those went to the sink).

    Attributes:
        files: one row per file seen (``FILES_SCHEMA``).
        prompts, rejects: how many rows went to the sink.
        chunks: how many times the sink was called.
        by_format, by_license, rejects_by_reason: counts for the asset's metadata.
        prompt_head, reject_head: the first ``PREVIEW_ROWS`` rows of each, for previews.
    """

    files: pl.DataFrame
    prompts: int = 0
    rejects: int = 0
    chunks: int = 0
    by_format: Counter = field(default_factory=Counter)
    by_license: Counter = field(default_factory=Counter)
    rejects_by_reason: Counter = field(default_factory=Counter)
    prompt_head: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=RAW_PROMPTS_SCHEMA))
    reject_head: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECTS_SCHEMA))


ChunkSink = Callable[[pl.DataFrame, pl.DataFrame], None]
"""Takes each chunk: ``(prompts, rejects)`` frames (``RAW_PROMPTS_SCHEMA``, ``REJECTS_SCHEMA``)."""


def read_prompt_chunks(
    url: str,
    sink: ChunkSink,
    *,
    default_license: str = "unknown",
    max_chars: int = 100_000,
    storage_options: dict | None = None,
    ingested_at: datetime | None = None,
    follow_symlinks: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    block_bytes: int = BLOCK_BYTES,
) -> PromptReadSummary:
    """Read every prompt file under ``url`` into ``raw_prompts`` rows and rejects, chunk by chunk.

    Rows reach ``sink`` in file order and, within a file, in row order, at most ``chunk_rows``
    prompts (and at most ``chunk_rows`` rejects) per call; a chunk may span files. A row is
    whole in one chunk however many blocks its bytes spanned (a multi-turn conversation on a long
    line, a quoted CSV field over several lines). An empty file, or a folder with nothing
    readable, calls the sink with nothing.

    Folders are read recursively, in sorted path order. Hidden files and folders (name starting
    with ``.``), license sidecars (``*.license``) and ``licenses.json`` are skipped. ``.jsonl``,
    ``.jsonl.gz`` (gzip) and ``.json`` are JSON Lines (a ``.json`` holding one JSON array or object
    is accepted too), ``.parquet`` and ``.csv`` are tables; any other file becomes one ``unsupported_file`` reject.

    A symbolic link under a local folder whose target lies outside the folder is not read (its
    target could be any file on the machine) but becomes one ``outside_prompts_root`` reject,
    unless ``follow_symlinks``; links that stay inside the folder are read like files.

    A file's license is the first non-empty line of its sidecar ``<file>.license``, else its entry
    in the nearest ``licenses.json`` (file names relative to that json's folder) in its folder or
    a parent folder up to ``url``, else ``default_license``.

    Args:
        url: a folder, a single file, or an fsspec URL such as ``s3://bucket/prefix``.
        default_license: the license of files with no sidecar and no ``licenses.json`` entry.
        max_chars: prompts whose text (system and turns) is longer are rejected as ``too_long``.
        storage_options: fsspec options (``Settings.storage_options()``: the S3 endpoint).
        ingested_at: the read time stamped on every row (UTC; defaults to now).
        follow_symlinks: read links that point outside the folder (``DISTILLSET_FOLLOW_SYMLINKS``).
        chunk_rows: the most rows handed to ``sink`` at once (``DISTILLSET_CHUNK_ROWS``).
        block_bytes: bytes read from a file at a time.

    Returns:
        The per-file summary, counts and the first rows (the rows themselves went to ``sink``).

    Raises:
        FileNotFoundError: ``url`` does not exist.
        ValueError: ``url`` holds no file with a supported extension, or a ``licenses.json``
            is malformed.
    """
    fs, root = storage.filesystem(url, storage_options)
    if not fs.exists(root):
        raise FileNotFoundError(f"prompt source {url!r} does not exist")
    ingested_at = _as_utc(ingested_at or datetime.now(UTC))

    if fs.isfile(root):
        paths = [root]
        base = posixpath.dirname(root)
        others = {p for p in (root + LICENSE_SIDECAR_SUFFIX, posixpath.join(base, LICENSES_INDEX)) if fs.isfile(p)}
        escaping: set[str] = set()  # a single file named by the user is read wherever it is
    else:
        base = root
        found = sorted(fs.find(root))
        others = {p for p in found if not _is_hidden(relative(p, base))}
        escaping = set() if follow_symlinks else {p for p in others if _leaves_root(fs, root, p)}
        others -= escaping
        paths = sorted(others | escaping)
        paths = [p for p in paths if not _is_metadata(p) or p in escaping]
    if not any(_file_format(p) for p in paths):
        seen = ", ".join(posixpath.basename(p) for p in paths[:5]) or "no files"
        raise ValueError(
            f"prompt source {url!r} holds no prompt files (.jsonl, .jsonl.gz, .json, .parquet, .csv); found: {seen}"
        )

    licenses = LicenseResolver(fs, base, others, default_license)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    builder = _FrameBuilder(ingested_at, max_chars, sink, chunk_rows, block_bytes)
    try:
        for path in paths:
            if path in escaping:
                builder.reject_link(_display_name(fs, path))
            else:
                builder.read_file(fs, path, _display_name(fs, path), licenses.license_of(path))
    except _SinkFailed as failed:
        raise failed.error from None
    return builder.finish()


class _FrameBuilder:
    """Accumulates columns while files are read and hands them to the sink a chunk at a time."""

    def __init__(self, ingested_at: datetime, max_chars: int, sink: ChunkSink, chunk_rows: int, block_bytes: int):
        self.ingested_at = ingested_at
        self.max_chars = max_chars
        self.sink = sink
        self.chunk_rows = chunk_rows
        self.block_bytes = block_bytes
        self.prompts: dict[str, list] = {name: [] for name in _ROW_COLUMNS}
        self.rejects: dict[str, list] = {name: [] for name in REJECTS_SCHEMA}
        self.files: dict[str, list] = {name: [] for name in FILES_SCHEMA}
        self.summary = PromptReadSummary(files=pl.DataFrame(schema=FILES_SCHEMA))
        self.rejects_total = 0

    def read_file(self, fs: fsspec.AbstractFileSystem, path: str, source_file: str, license_: str) -> None:
        file_format = _file_format(path)
        rows_read = 0
        rejects_before = self.rejects_total
        sha256 = None
        if file_format is None:
            # Not read at all: an unknown file may be large, and its hash would serve nothing.
            self._reject(
                source_file,
                None,
                None,
                "unsupported_file",
                f"{posixpath.basename(path)!r} is not a prompt file (.jsonl, .jsonl.gz, .json, .parquet, .csv)",
                None,
            )
        else:
            try:
                with _hashed(fs, path, self.block_bytes) as (sha256, handle):
                    rows = ROW_READERS[file_format](handle, self.block_bytes)
                    try:
                        for row in rows:
                            rows_read += 1
                            self._add_row(row, source_file, sha256, license_)
                    except OSError as exc:  # storage failed mid-file: the rows read so far are kept
                        self._reject(
                            source_file,
                            None,
                            sha256,
                            "unreadable_file",
                            f"reading stopped after {rows_read} rows: {type(exc).__name__}: {exc}",
                            None,
                        )
            except _SinkFailed as failed:  # the catalog's error, not the file's: the read stops
                raise failed.error from None
            except Exception as exc:  # noqa: BLE001 - any storage failure is this file's reject
                self._reject(
                    source_file,
                    None,
                    None,
                    "unreadable_file",
                    f"could not read the file: {type(exc).__name__}: {exc}",
                    None,
                )
        self.files["source_file"].append(source_file)
        self.files["source_sha256"].append(sha256)
        self.files["file_format"].append(file_format or "unsupported")
        self.files["rows_read"].append(rows_read)
        self.files["rows_rejected"].append(self.rejects_total - rejects_before)
        self.files["license"].append(license_)

    def reject_link(self, source_file: str) -> None:
        """One ``outside_prompts_root`` reject for a link whose target is outside the folder (never read)."""
        self._reject(
            source_file,
            None,
            None,
            "outside_prompts_root",
            "a symbolic link to a file outside the prompts folder: not read (DISTILLSET_FOLLOW_SYMLINKS=true reads it)",
            None,
        )
        self.files["source_file"].append(source_file)
        self.files["source_sha256"].append(None)
        self.files["file_format"].append("outside_prompts_root")
        self.files["rows_read"].append(0)
        self.files["rows_rejected"].append(1)
        self.files["license"].append(None)

    def _add_row(self, row: SourceRow, source_file: str, sha256: str, license_: str) -> None:
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
            self._reject(
                source_file,
                row.line,
                sha256,
                "too_long",
                f"the prompt has {len(text)} characters, more than max_chars={self.max_chars}",
                row.excerpt,
            )
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
        self.summary.by_format[prompt.source_format] += 1
        self.summary.by_license[license_] += 1
        if len(columns["prompt_id"]) >= self.chunk_rows:
            self._flush()

    def _reject(
        self, source_file: str, line: int | None, sha256: str | None, reason: str, detail: str, excerpt: str | None
    ) -> None:
        for name, value in zip(
            REJECTS_SCHEMA, (STAGE, source_file, line, sha256, reason, detail, excerpt), strict=True
        ):
            self.rejects[name].append(value)
        self.rejects_total += 1
        self.summary.rejects_by_reason[reason] += 1
        if len(self.rejects["stage"]) >= self.chunk_rows:
            self._flush()

    def _flush(self) -> None:
        prompts = _prompts_frame(self.prompts, self.ingested_at)
        rejects = pl.DataFrame(self.rejects, schema=REJECTS_SCHEMA)
        if prompts.is_empty() and rejects.is_empty():
            return
        summary = self.summary
        if summary.prompt_head.height < PREVIEW_ROWS:
            summary.prompt_head = pl.concat([summary.prompt_head, prompts.head(PREVIEW_ROWS)]).head(PREVIEW_ROWS)
        if summary.reject_head.height < PREVIEW_ROWS:
            summary.reject_head = pl.concat([summary.reject_head, rejects.head(PREVIEW_ROWS)]).head(PREVIEW_ROWS)
        summary.prompts += prompts.height
        summary.rejects += rejects.height
        summary.chunks += 1
        self.prompts = {name: [] for name in _ROW_COLUMNS}
        self.rejects = {name: [] for name in REJECTS_SCHEMA}
        try:
            self.sink(prompts, rejects)
        except Exception as exc:
            raise _SinkFailed(exc) from exc

    def finish(self) -> PromptReadSummary:
        """Hand the last rows to the sink; the summary of the whole read."""
        try:
            self._flush()
        except _SinkFailed as failed:
            raise failed.error from None
        self.summary.files = pl.DataFrame(self.files, schema=FILES_SCHEMA)
        return self.summary


_ROW_COLUMNS = tuple(name for name in RAW_PROMPTS_SCHEMA if name != "ingested_at")
"""The columns collected row by row; ``ingested_at`` is one value for the whole read."""


def _prompts_frame(columns: dict[str, list], ingested_at: datetime) -> pl.DataFrame:
    """The ``RAW_PROMPTS_SCHEMA`` frame of the collected columns, every row stamped ``ingested_at``.

    Built column by column: polars makes a ``List(String)`` column out of Python lists one Series
    per row (most of the read's time at 100k prompts), pyarrow in one C++ pass; and the time stamp
    is one broadcast value instead of a Python datetime per row.
    """
    rows = len(columns["prompt_id"])
    data = {
        name: pl.Series(name, values, dtype=RAW_PROMPTS_SCHEMA[name])
        for name, values in columns.items()
        if name != "turns"
    }
    data["turns"] = pl.Series("turns", pa.array(columns["turns"], type=pa.large_list(pa.large_string())))
    data["ingested_at"] = pl.repeat(ingested_at, rows, dtype=RAW_PROMPTS_SCHEMA["ingested_at"], eager=True)
    return pl.DataFrame([data[name].alias(name) for name in RAW_PROMPTS_SCHEMA])


class _SinkFailed(Exception):
    """The sink's own error, carried through the per-file error handling untouched."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


@contextlib.contextmanager
def _hashed(fs: fsspec.AbstractFileSystem, path: str, block_bytes: int) -> Iterator[tuple[str, BinaryIO]]:
    """``(sha256 of the file, a handle on the same bytes from their start)``, streaming.

    A local file is read twice (hash, then rows); a remote one is downloaded once into a temporary
    file while it is hashed, so both passes see the same bytes without a second download.
    """
    digest = hashlib.sha256()
    if _is_local(fs):
        with fs.open(path, "rb") as handle:
            for block in iter(lambda: handle.read(block_bytes), b""):
                digest.update(block)
        with fs.open(path, "rb") as handle:
            yield digest.hexdigest(), handle
        return
    with tempfile.TemporaryFile(prefix="distillset-prompts-") as spool:
        with fs.open(path, "rb") as handle:
            for block in iter(lambda: handle.read(block_bytes), b""):
                digest.update(block)
                spool.write(block)
        spool.seek(0)
        yield digest.hexdigest(), spool


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def _file_format(path: str) -> str | None:
    name = posixpath.basename(path).lower()
    return next((fmt for ext, fmt in FILE_FORMATS.items() if name.endswith(ext)), None)


def _leaves_root(fs: fsspec.AbstractFileSystem, root: str, path: str) -> bool:
    """Whether ``path`` under a local ``root`` resolves (through symbolic links) outside ``root``."""
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    if "file" not in protocols and "local" not in protocols:
        return False  # object stores have no links
    real_root = os.path.realpath(root)
    return os.path.commonpath([real_root, os.path.realpath(path)]) != real_root


def _is_metadata(path: str) -> bool:
    name = posixpath.basename(path)
    return name.endswith(LICENSE_SIDECAR_SUFFIX) or name == LICENSES_INDEX


def _is_hidden(relative_path: str) -> bool:
    return any(part.startswith(".") for part in relative_path.split("/"))


def _display_name(fs: fsspec.AbstractFileSystem, path: str) -> str:
    # Local files keep their plain path; remote ones get their protocol back (s3://bucket/key).
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return path if "file" in protocols or "local" in protocols else fs.unstrip_protocol(path)


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
