"""The files of a version: built from the rows, written, and read back against their checksum."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import polars as pl

from distillset import storage
from distillset.ids import sha256_hex
from distillset.publish.exports import FORMATS, export
from distillset.publish.layout import DATA_PARQUET


class PublishConflictError(RuntimeError):
    """Another publisher committed the version this one had claimed (a stale-claim takeover)."""


def data_files(examples: pl.DataFrame, formats: Sequence[str]) -> dict[str, bytes]:
    """File name -> bytes: ``train.jsonl``, ``validation.jsonl``, the extra exports, ``data.parquet``."""
    files: dict[str, bytes] = {}
    for split in ("train", "validation"):
        files[f"{split}.jsonl"] = export(examples.filter(pl.col("split") == split)["messages_json"].to_list(), "openai")
    for format_name in formats:
        file_name, _ = FORMATS[format_name]
        if file_name:
            files[file_name] = export(examples["messages_json"].to_list(), format_name)
    buffer = io.BytesIO()
    examples.write_parquet(buffer, compression="zstd", statistics=True)
    files[DATA_PARQUET] = buffer.getvalue()
    return files


def write_checked(fs, path: str, data: bytes, *, exclusive: bool = False) -> dict:
    """Write ``data`` then read it back from the store; the checksum entry of the file.

    Raises:
        PublishConflictError: ``exclusive`` and the file exists already.
        OSError: the file reads back differently.
    """
    if exclusive:
        if not storage.create_exclusive(fs, path, data):
            raise PublishConflictError(f"{path} already exists: another publisher committed this version")
    elif storage.is_local(fs):
        with open(path, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    else:
        fs.pipe_file(path, data)
    expected = sha256_hex(data)
    actual, size = storage.sha256_of(fs, path)
    if actual != expected or size != len(data):
        raise OSError(f"{path} reads back differently from what was written (sha256 {actual} != {expected})")
    return {"sha256": expected, "size": size}
