"""Where a version's rows come from: a source the publisher reads twice, in bounded chunks.

The publisher streams the rows once to check them and hash their content (is it unchanged?), and
once more to write the files after it claimed a number; both passes see the rows in ``example_id``
order, the order of every published file. A source yields ``training_examples`` rows
(``docs/engine.md``) as polars frames of at most ``chunk_rows`` rows.

- ``FrameSource``: rows already in memory (tests, notebooks, small sets).
- ``CatalogSource``: one teacher's ``training_examples`` partition, read by DuckDB in chunks, so
  memory holds one chunk whatever the set's size.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import polars as pl

from distillset import catalog

CHUNK_ROWS = 10_000
"""Rows per chunk: a few MB of conversations, enough for polars and DuckDB to work in bulk."""
SOURCE_MEMORY = "256MB"
"""DuckDB's memory limit while it sorts a partition for the publisher (it spills beyond)."""


@runtime_checkable
class ExampleSource(Protocol):
    """Training example rows the publisher can read, as many times as it needs, in chunks."""

    def columns(self) -> list[str]:
        """The column names the rows have."""
        ...

    def chunks(self) -> Iterator[pl.DataFrame]:
        """Every row, in ``example_id`` order, as frames of at most ``chunk_rows`` rows."""
        ...


class FrameSource:
    """An in-memory frame as an ``ExampleSource`` (sorted by ``example_id`` once, then sliced)."""

    def __init__(self, frame: pl.DataFrame, chunk_rows: int = CHUNK_ROWS):
        self._frame = frame.sort("example_id") if "example_id" in frame.columns else frame
        self.chunk_rows = chunk_rows

    def columns(self) -> list[str]:
        return list(self._frame.columns)

    def chunks(self) -> Iterator[pl.DataFrame]:
        for start in range(0, self._frame.height, self.chunk_rows):
            yield self._frame.slice(start, self.chunk_rows)


class CatalogSource:
    """A table of the DuckDB catalog (``training_examples``), optionally one partition of it.

    Each pass opens a read-only connection, sorts by ``example_id`` under a memory limit (DuckDB
    spills to disk beyond it) and streams record batches.
    """

    def __init__(
        self,
        catalog_path: catalog.Location | str,
        *,
        table: str = "training_examples",
        partition: str | None = None,
        partition_column: str = "teacher_model",
        chunk_rows: int = CHUNK_ROWS,
    ):
        self.catalog_path = catalog_path if isinstance(catalog_path, catalog.Lake) else Path(catalog_path)
        self.table = table
        self.partition = partition
        self.partition_column = partition_column
        self.chunk_rows = chunk_rows

    def columns(self) -> list[str]:
        return catalog.table_columns(self.catalog_path, self.table)

    def _where(self) -> tuple[str, list]:
        if self.partition is None:
            return "", []
        return f'WHERE "{self.partition_column}" = ?', [self.partition]

    def count(self) -> int:
        """How many rows the source holds (``count(*)``, no row read)."""
        where, params = self._where()
        return catalog.count_rows(self.catalog_path, self.table, where, params)

    def figures(self) -> dict:
        """``rows``, ``splits`` (split -> rows) and ``simulated_rows``, by one SQL aggregate."""
        if not self.columns():
            return {"rows": 0, "splits": {}, "simulated_rows": 0}
        where, params = self._where()
        found = catalog.query(
            self.catalog_path,
            f'SELECT split, count(*), count(*) FILTER (WHERE coalesce(simulated, false)) FROM "{self.table}" '
            f"{where} GROUP BY split ORDER BY split",
            params,
        )
        return {
            "rows": sum(int(n) for _, n, _ in found),
            "splits": {str(split): int(n) for split, n, _ in found},
            "simulated_rows": sum(int(s) for _, _, s in found),
        }

    def chunks(self) -> Iterator[pl.DataFrame]:
        if not self.columns():
            return
        where, params = self._where()
        # DuckDB names its spill files the same in every process: two publishers sorting the same
        # catalog at once (two teachers) overwrote each other's (I/O errors, a crash). One folder each.
        with (
            tempfile.TemporaryDirectory(
                prefix=f"{catalog.spool_prefix(self.catalog_path)}.sort-", dir=catalog.local_dir(self.catalog_path)
            ) as spill,
            catalog.connect(self.catalog_path, read_only=True) as con,
        ):
            con.execute("SET temp_directory = ?", [spill])
            con.execute(f"SET memory_limit = '{SOURCE_MEMORY}'")
            con.execute("SET preserve_insertion_order = true")
            for condition, bounds in catalog.key_ranges(con, self.table, "example_id", where, params):
                ranged = f"{where} AND {condition}" if where else f"WHERE {condition}"
                yield from catalog.iter_chunks(
                    con,
                    f'SELECT * FROM "{self.table}" {ranged} ORDER BY example_id',
                    [*params, *bounds],
                    chunk_rows=self.chunk_rows,
                )


def as_source(examples: pl.DataFrame | ExampleSource, chunk_rows: int | None = None) -> ExampleSource:
    """``examples`` as an ``ExampleSource``: a frame is wrapped in a ``FrameSource``."""
    if isinstance(examples, pl.DataFrame):
        return FrameSource(examples, chunk_rows or CHUNK_ROWS)
    return examples
