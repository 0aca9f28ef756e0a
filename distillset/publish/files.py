"""The files of a version: built from the rows, written, and read back against their checksum."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

import polars as pl

from distillset import storage
from distillset.ids import sha256_hex
from distillset.publish.exports import LINEAGE_FIELDS, SPLITS, export, export_file
from distillset.publish.layout import DATA_PARQUET, split_parquet

MESSAGE_TYPE = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
"""The published ``messages`` column: the conversation as a typed list of (role, content)."""


class PublishConflictError(RuntimeError):
    """Another publisher committed the version this one had claimed (a stale-claim takeover)."""


def published_rows(examples: pl.DataFrame) -> pl.DataFrame:
    """The rows as the Parquet files hold them: ``messages`` typed instead of ``messages_json``."""
    rows = examples.with_columns(pl.col("messages_json").str.json_decode(MESSAGE_TYPE).alias("messages"))
    first = ["example_id", "prompt_id", "split", "messages"]
    return rows.select(first + [c for c in examples.columns if c not in first and c != "messages_json"])


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


def data_files(examples: pl.DataFrame, formats: Sequence[str]) -> dict[str, bytes]:
    """File name -> bytes: every format per split (``train.jsonl``, ``sharegpt_validation.jsonl``...),
    ``train.parquet`` / ``validation.parquet`` and ``data.parquet`` (all rows, with ``split``)."""
    files: dict[str, bytes] = {}
    rows = published_rows(examples)
    for split in SPLITS:
        part = examples.filter(pl.col("split") == split)
        lineage = part.select(LINEAGE_FIELDS).to_dicts()
        for format_name in formats:
            files[export_file(format_name, split)] = export(part["messages_json"].to_list(), format_name, lineage)
        files[split_parquet(split)] = _parquet(rows.filter(pl.col("split") == split))
    files[DATA_PARQUET] = _parquet(rows)
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
