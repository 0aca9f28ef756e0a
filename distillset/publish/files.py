"""The files of a version: built from the rows, written, and read back against their checksum."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Sequence
from typing import BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

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


ROW_GROUP_ROWS = 16_384
"""Rows per Parquet row group: what a reader of one example (``distillset explain``) reads at
most, and what the publisher buffers per Parquet file while writing."""


class HashingWriter:
    """A binary file handle that computes the sha256 and size of what goes through it."""

    def __init__(self, handle: BinaryIO):
        self._handle = handle
        self._digest = hashlib.sha256()
        self.size = 0
        self.closed = False
        self._abandoned = False

    def abandon(self) -> None:
        """Drop whatever is written from now on (a failed publish: a Parquet writer's finalizer
        must not write to a handle already closed)."""
        self._abandoned = True

    def write(self, data) -> int:
        if self._abandoned:
            return len(memoryview(data).cast("B"))
        view = memoryview(data).cast("B")
        self._digest.update(view)
        self.size += len(view)
        self._handle.write(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        self.closed = True

    def entry(self) -> dict:
        """The checksum entry of everything written: ``{"sha256", "size"}``."""
        return {"sha256": self._digest.hexdigest(), "size": self.size}


class _ParquetStream:
    """Rows appended chunk by chunk, written as row groups of exactly ``row_group_rows`` rows (the
    last one shorter), so the file's bytes do not depend on how the rows were chunked."""

    def __init__(self, sink: HashingWriter, row_group_rows: int):
        self._sink = sink
        self._rows = row_group_rows
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def add(self, frame: pl.DataFrame) -> None:
        table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self._sink, table.schema, compression="zstd", write_statistics=True)
        elif table.schema != self._schema:
            table = table.cast(self._schema)
        if table.num_rows:
            self._pending.append(table)
            self._pending_rows += table.num_rows
        while self._pending_rows >= self._rows:
            rows = pa.concat_tables(self._pending)
            self._write(rows.slice(0, self._rows))
            rest = rows.slice(self._rows)
            self._pending, self._pending_rows = ([rest], rest.num_rows) if rest.num_rows else ([], 0)

    def _write(self, rows: pa.Table) -> None:
        # One contiguous table per row group: page boundaries must not follow the chunking.
        self._writer.write_table(rows.combine_chunks(), row_group_size=self._rows)

    def close(self) -> None:
        if self._pending_rows:
            self._write(pa.concat_tables(self._pending))
        self._pending, self._pending_rows = [], 0
        if self._writer is not None:
            self._writer.close()


class VersionWriter:
    """The data files of a version written as rows stream by (``data_files`` names them): every
    format's JSONL per split, ``train.parquet`` / ``validation.parquet`` and ``data.parquet``.

    ``open_file(name)`` gives the binary handle a file is written to (a staging file, an S3
    upload, a buffer); sha256 and size are computed as the bytes go through.
    """

    def __init__(
        self,
        open_file: Callable[[str], BinaryIO],
        formats: Sequence[str],
        *,
        row_group_rows: int = ROW_GROUP_ROWS,
    ):
        self._formats = list(formats)
        self._handles: dict[str, BinaryIO] = {}
        self._sinks: dict[str, HashingWriter] = {}
        for split in SPLITS:
            for format_name in self._formats:
                self._open(open_file, export_file(format_name, split))
            self._open(open_file, split_parquet(split))
        self._open(open_file, DATA_PARQUET)
        self._parquet = {
            name: _ParquetStream(self._sinks[name], row_group_rows)
            for name in [*(split_parquet(s) for s in SPLITS), DATA_PARQUET]
        }

    def _open(self, open_file: Callable[[str], BinaryIO], name: str) -> None:
        self._handles[name] = open_file(name)
        self._sinks[name] = HashingWriter(self._handles[name])

    def add(self, rows: pl.DataFrame) -> None:
        """Write the next rows (normalized ``training_examples`` rows, after those added before)."""
        typed = published_rows(rows)
        for split in SPLITS:
            part = rows.filter(pl.col("split") == split)
            for format_name in self._formats:
                lineage = part.select(LINEAGE_FIELDS).to_dicts() if format_name != "openai" else None
                self._sinks[export_file(format_name, split)].write(
                    export(part["messages_json"].to_list(), format_name, lineage)
                )
            self._parquet[split_parquet(split)].add(typed.filter(pl.col("split") == split))
        self._parquet[DATA_PARQUET].add(typed)

    def close(self) -> dict[str, dict]:
        """Finish every file; file name -> ``{"sha256", "size"}`` of what was written."""
        for stream in self._parquet.values():
            stream.close()
        return {name: sink.entry() for name, sink in self._sinks.items()}

    def abandon(self) -> None:
        """Give up (an error): nothing more reaches the handles, which the caller closes."""
        for sink in self._sinks.values():
            sink.abandon()


def data_files(
    examples: pl.DataFrame, formats: Sequence[str], *, row_group_rows: int = ROW_GROUP_ROWS
) -> dict[str, bytes]:
    """File name -> bytes: every format per split (``train.jsonl``, ``sharegpt_validation.jsonl``...),
    ``train.parquet`` / ``validation.parquet`` and ``data.parquet`` (all rows, with ``split``).

    The same bytes ``VersionWriter`` streams to a store, built in memory from normalized rows
    in ``example_id`` order.
    """
    buffers: dict[str, io.BytesIO] = {}

    def open_buffer(name: str) -> io.BytesIO:
        buffers[name] = io.BytesIO()
        return buffers[name]

    writer = VersionWriter(open_buffer, formats, row_group_rows=row_group_rows)
    writer.add(examples)
    writer.close()
    return {name: buffer.getvalue() for name, buffer in buffers.items()}


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
