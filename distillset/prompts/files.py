"""Read raw prompt files (a local folder, one file, or an ``s3://`` prefix) into the ``raw_prompts`` table.

Every row either becomes a prompt with its provenance (file, line, file hash, license) or a reject
with a reason code; a few bad rows never stop a read. Files go through fsspec, so any store it
knows (S3 via s3fs, with ``AWS_ENDPOINT_URL`` for S3-compatible ones) works like a folder.

Whole files are read into memory: the file hash needs every byte anyway, and the resulting frame
holds every prompt, so streaming one file would not lower the peak by more than a constant.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime

import fsspec
import polars as pl

from distillset import ids, storage
from distillset.prompts.formats import PromptShapeError, normalize_row, prompt_text
from distillset.prompts.readers import ROW_READERS, SourceRow
from distillset.prompts.sidecars import LICENSE_SIDECAR_SUFFIX, LICENSES_INDEX, LicenseResolver, relative

STAGE = "raw_prompts"
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


def read_prompts(
    url: str,
    *,
    default_license: str = "unknown",
    max_chars: int = 100_000,
    storage_options: dict | None = None,
    ingested_at: datetime | None = None,
    follow_symlinks: bool = False,
) -> PromptReadResult:
    """Read every prompt file under ``url`` into ``raw_prompts`` rows and rejects.

    Folders are read recursively, in sorted path order. Hidden files and folders (name starting
    with ``.``), license sidecars (``*.license``) and ``licenses.json`` are skipped. ``.jsonl`` and
    ``.json`` are JSON Lines (a ``.json`` holding one JSON array or object is accepted too),
    ``.parquet`` and ``.csv`` are tables; any other file becomes one ``unsupported_file`` reject.

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

    Returns:
        The prompts, the rejects and a per-file summary.

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
        raise ValueError(f"prompt source {url!r} holds no prompt files (.jsonl, .json, .parquet, .csv); found: {seen}")

    licenses = LicenseResolver(fs, base, others, default_license)
    builder = _FrameBuilder(ingested_at, max_chars)
    for path in paths:
        if path in escaping:
            builder.reject_link(_display_name(fs, path))
        else:
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
            self._reject(
                source_file,
                None,
                None,
                "unsupported_file",
                f"{posixpath.basename(path)!r} is not a prompt file (.jsonl, .json, .parquet, .csv)",
                None,
            )
        else:
            try:
                data = fs.cat_file(path)
            except Exception as exc:  # noqa: BLE001 - any storage failure is this file's reject
                self._reject(
                    source_file,
                    None,
                    None,
                    "unreadable_file",
                    f"could not read the file: {type(exc).__name__}: {exc}",
                    None,
                )
            else:
                sha256 = ids.sha256_hex(data)
                for row in ROW_READERS[file_format](data):
                    rows_read += 1
                    self._add_row(row, source_file, sha256, license_)
        self.files["source_file"].append(source_file)
        self.files["source_sha256"].append(sha256)
        self.files["file_format"].append(file_format or "unsupported")
        self.files["rows_read"].append(rows_read)
        self.files["rows_rejected"].append(len(self.rejects["stage"]) - rejects_before)
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
        columns["ingested_at"].append(self.ingested_at)

    def _reject(
        self, source_file: str, line: int | None, sha256: str | None, reason: str, detail: str, excerpt: str | None
    ) -> None:
        for name, value in zip(
            REJECTS_SCHEMA, (STAGE, source_file, line, sha256, reason, detail, excerpt), strict=True
        ):
            self.rejects[name].append(value)

    def result(self) -> PromptReadResult:
        return PromptReadResult(
            prompts=pl.DataFrame(self.prompts, schema=RAW_PROMPTS_SCHEMA),
            rejects=pl.DataFrame(self.rejects, schema=REJECTS_SCHEMA),
            files=pl.DataFrame(self.files, schema=FILES_SCHEMA),
        )


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
