"""The catalog that holds every stage's table: one DuckDB file under ``DISTILLSET_HOME`` (the
embedded default), or a DuckLake shared by the workers of a cluster (``DISTILLSET_CATALOG_URL``,
``distillset.catalog_lake``).

Every function takes the catalog's location: the file's ``Path``, or a ``Lake``
(``Settings.catalog_location``). The same SQL runs on both: a lake is attached and ``USE``d.

DuckDB allows one writing process per file, and Dagster may run steps in several processes.
Write connections are therefore short (open, write, close) and retried while another process
holds the lock, instead of failing the step on contention. A lake's writers take its writer lock
in PostgreSQL (``catalog_lake.writer_lock``: one writer at a time across machines, readers never
wait). That lock is taken before a writer's transaction begins, so a DuckLake commit cannot
conflict with another writer's; there is no second mechanism (a retry) for the same guarantee.
"""

from __future__ import annotations

import contextlib
import errno
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl

from distillset.catalog_lake import Lake, lake_cursor, writer_lock
from distillset.disk import is_disk_full
from distillset.settings.paths import SQL_DIR

_LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked")

Location = Path | Lake
"""Where the catalog is: the embedded DuckDB file, or a DuckLake."""


def exists(location: Location) -> bool:
    """The catalog has been created (a lake always exists: its tables are checked one by one)."""
    return isinstance(location, Lake) or Path(location).exists()


def local_dir(location: Location) -> Path:
    """This machine's folder for the catalog's spool and temporary files (the file's folder, or
    the home of a lake)."""
    return Path(location.local_dir) if isinstance(location, Lake) else Path(location).parent


def spool_prefix(location: Location) -> str:
    """A name prefix for spool folders in ``local_dir`` (``.catalog.duckdb`` or ``.catalog-lake``)."""
    return ".catalog-lake" if isinstance(location, Lake) else f".{Path(location).name}"


@contextlib.contextmanager
def connect(
    path: Location, *, read_only: bool = False, lock_timeout_s: float = 120.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the catalog, waiting up to ``lock_timeout_s`` while another process writes to the file.

    A write that fails because the disk is full raises ``OSError(ENOSPC)`` saying "no space left on
    device at FOLDER", instead of DuckDB's I/O error text. A lake connection is a cursor of this
    process's attached lake (``catalog_lake.lake_cursor``); a writer holds the lake's writer lock.
    """
    if isinstance(path, Lake):
        with (
            contextlib.nullcontext() if read_only else writer_lock(path),
            _disk_full_as_oserror(path.local_dir / "catalog-tmp", read_only),
        ):
            con = lake_cursor(path)
            try:
                yield con
            finally:
                con.close()
        return
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.05
    with _disk_full_as_oserror(path, read_only):
        while True:
            try:
                con = duckdb.connect(str(path), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if not any(m in str(exc) for m in _LOCK_MARKERS) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            yield con
        finally:
            con.close()


@contextlib.contextmanager
def _disk_full_as_oserror(path: Path, read_only: bool) -> Iterator[None]:
    try:
        yield
    except (duckdb.Error, OSError) as exc:
        if read_only or not is_disk_full(exc, path.parent):
            raise
        raise OSError(
            errno.ENOSPC,
            f"no space left on device at {path.parent}: the catalog {path.name} cannot be written ({exc})",
        ) from exc


def load_sql(name: str) -> str:
    """The text of ``sql/<name>.sql`` (one statement per file, loaded by name)."""
    path = SQL_DIR / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"no SQL file named {name!r} at {path}")
    return path.read_text(encoding="utf-8")


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()[0]
    )


def replace_table(path: Location, table: str, frame: pl.DataFrame) -> None:
    """Replace ``table`` with ``frame`` in one short write transaction."""

    with connect(path) as con, _transaction(con):
        con.register("_frame", frame.to_arrow())
        con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM _frame')
        con.unregister("_frame")


def replace_partition(path: Location, table: str, frame: pl.DataFrame, *, column: str, value: str) -> None:
    """Replace the rows of ``table`` where ``column = value`` with ``frame``, atomically (one
    transaction: the delete and the insert commit together, as one DuckLake snapshot on a lake).

    The table is created from ``frame``'s schema the first time; a frame whose schema grew
    (a new column in a later release) recreates the table with the union of columns.
    """

    with connect(path) as con, _transaction(con):
        _replace_partition_on(con, table, frame, column=column, value=value)


@contextlib.contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # a disk error may have ended the transaction already
            con.execute("ROLLBACK")
        raise


def _replace_partition_on(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pl.DataFrame,
    *,
    column: str,
    value: str,
    slice_sql: str | None = None,
) -> None:
    # A slice (one prompt shard of the partition) narrows what is replaced to the rows it selects.
    replaced = f'"{column}" = ?' + (f" AND ({slice_sql})" if slice_sql else "")
    con.register("_frame", frame.to_arrow())
    try:
        if not table_exists(con, table):
            con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM _frame')
        else:
            existing = [r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall()]
            if existing != frame.columns:
                con.execute(f'CREATE TEMP TABLE _others AS SELECT * FROM "{table}" WHERE NOT ({replaced})', [value])
                con.execute(f'DROP TABLE "{table}"')
                con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM _frame')
                con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM _others')
                con.execute("DROP TABLE _others")
            else:
                con.execute(f'DELETE FROM "{table}" WHERE {replaced}', [value])
                con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM _frame')
    finally:
        con.unregister("_frame")


CHUNKED_WRITE_MEMORY = "256MB"
"""DuckDB's memory limit on a chunked write's connection. Its default (80% of RAM) lets its buffer
pool grow with the table being written; under the limit it spills to disk instead, and memory
stays flat as the input grows (measured: 557 MB peak at 100k prompts, 570 MB at 300k)."""


SPOOL_COMPRESSION = "lz4"
"""The compression of the Parquet parts a chunked write spools before DuckDB reads them in."""


class ChunkWriter:
    """Tables written chunk by chunk inside one transaction (``write_chunks``): memory holds one
    chunk, and readers see the old tables until everything is committed.

    Appended chunks go to Parquet parts in a spool folder beside the catalog, and DuckDB reads the
    parts into the tables when the transaction commits: appending Arrow chunks one by one kept
    every appended chunk in DuckDB's memory until the commit (peak RSS grew with the input).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, spool: Path, *, single_thread_inserts: bool = False):
        self.con = con
        self._spool = spool
        self._parts: dict[str, list[Path]] = {}
        self._single_thread_inserts = single_thread_inserts

    def replace_table(self, table: str, schema: dict[str, pl.DataType]) -> None:
        """Start ``table`` over, empty, with ``schema`` (then ``append`` its rows)."""
        self.con.register("_frame", pl.DataFrame(schema=schema).to_arrow())
        try:
            self.con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM _frame')
        finally:
            self.con.unregister("_frame")

    def replace_partition(self, table: str, schema: dict[str, pl.DataType], *, column: str, value: str) -> None:
        """Empty the rows of ``table`` where ``column = value`` (creating or widening the table to
        ``schema`` like ``replace_partition``), then ``append`` the new ones."""
        _replace_partition_on(self.con, table, pl.DataFrame(schema=schema), column=column, value=value)

    def replace_slice(
        self, table: str, schema: dict[str, pl.DataType], *, column: str, value: str, slice_sql: str
    ) -> None:
        """Like ``replace_partition``, for only the partition's rows ``slice_sql`` selects (one
        prompt shard): the partition's other rows stay."""
        _replace_partition_on(
            self.con, table, pl.DataFrame(schema=schema), column=column, value=value, slice_sql=slice_sql
        )

    def append(self, table: str, frame: pl.DataFrame) -> None:
        """Add ``frame``'s rows to ``table`` (columns matched by name) after the rows appended before;
        they are in the table when the transaction commits."""
        if frame.is_empty():
            return
        parts = self._parts.setdefault(table, [])
        path = self._spool / f"{len(self._parts)}-{len(parts):06d}.parquet"
        # A spool part is read once, a moment later: LZ4 costs a fraction of zstd's CPU (the
        # default) and keeps the spool about as small.
        frame.write_parquet(path, compression=SPOOL_COMPRESSION)
        parts.append(path)

    def append_parquet(self, table: str, files: list[Path]) -> None:
        """Add the rows of Parquet files (in file order) to ``table``, DuckDB reading them directly."""
        if not files:
            return
        threads = None
        if self._single_thread_inserts:
            # Each part is one row group, scanned by one thread whatever the setting; the idle
            # second thread only added CPU (measured at 100k rows: 0.8 CPU s instead of 1.0-1.7
            # for the same inserts, and no longer wall). Restored after: later statements keep it.
            threads = int(self.con.execute("SELECT current_setting('threads')").fetchone()[0])
            self.con.execute("SET threads = 1")
        try:
            for file in files:
                self.con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM read_parquet(?)', [str(file)])
        finally:
            if threads is not None:
                self.con.execute(f"SET threads = {threads}")

    def _flush(self) -> None:
        for table, parts in self._parts.items():
            self.append_parquet(table, parts)
        self._parts = {}


@contextlib.contextmanager
def write_chunks(path: Location) -> Iterator[ChunkWriter]:
    """One write connection and transaction for tables written chunk by chunk (see ``ChunkWriter``).

    Everything written through it commits at the end, or nothing does (an error rolls back). On a
    lake, a commit that conflicts with another worker's raises (the chunks were consumed from the
    caller's stream, so it cannot be replayed here); Dagster's one writer per partition makes that
    a run overlapping another on the same partition.
    """
    folder = local_dir(path)
    folder.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix=f"{spool_prefix(path)}.chunks-", dir=folder) as spool,
        connect(path) as con,
    ):
        con.execute(f"SET memory_limit = '{CHUNKED_WRITE_MEMORY}'")
        with _transaction(con):
            # A lake's connection is a cursor of the process's shared database: its thread
            # setting is not this writer's to change.
            writer = ChunkWriter(con, Path(spool), single_thread_inserts=not isinstance(path, Lake))
            yield writer
            writer._flush()


def iter_chunks(
    con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None, *, chunk_rows: int
) -> Iterator[pl.DataFrame]:
    """The result of ``sql`` as polars frames of at most ``chunk_rows`` rows, streamed from DuckDB.

    A plain scan keeps the table's insertion order (DuckDB's ``preserve_insertion_order``).
    """
    reader = con.execute(sql, params or []).fetch_record_batch(chunk_rows)
    for batch in reader:
        if batch.num_rows:
            yield pl.from_arrow(batch)


def iter_chunks_of_ids(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list | None = None,
    *,
    id_column: str,
    ids: pl.Series,
    chunk_rows: int,
) -> Iterator[pl.DataFrame]:
    """The rows of ``sql`` whose ``id_column`` is one of ``ids``, streamed like ``iter_chunks``
    (in no particular order): a second read of a few rows of a table, e.g. the texts the
    near-duplicate index needs again (``curation.near_index``), without reading the others into
    Python. ``ids`` is registered on ``con`` while the chunks are read."""
    wanted = pl.DataFrame({id_column: ids.cast(pl.String)}).to_arrow()
    con.register("_wanted_ids", wanted)
    try:
        yield from iter_chunks(
            con,
            f'SELECT * FROM ({sql}) WHERE "{id_column}" IN (SELECT "{id_column}" FROM _wanted_ids)',
            params,
            chunk_rows=chunk_rows,
        )
    finally:
        con.unregister("_wanted_ids")


def read_table(path: Location, table: str, where: str = "", params: list | None = None) -> pl.DataFrame:
    """Read ``table`` (optionally filtered) into polars; an empty frame if it does not exist."""
    if not exists(path):
        return pl.DataFrame()
    with connect(path, read_only=True) as con:
        if not table_exists(con, table):
            return pl.DataFrame()
        return con.execute(f'SELECT * FROM "{table}" {where}', params or []).pl()


def query(path: Location, sql: str, params: list | None = None) -> list[tuple]:
    """The rows of a read-only ``sql`` (aggregates, counts, a few rows), without a frame."""
    with connect(path, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def count_rows(path: Location, table: str, where: str = "", params: list | None = None) -> int:
    """``count(*)`` of ``table`` (optionally filtered); 0 if the catalog or the table does not exist."""
    if not exists(path):
        return 0
    with connect(path, read_only=True) as con:
        if not table_exists(con, table):
            return 0
        return int(con.execute(f'SELECT count(*) FROM "{table}" {where}', params or []).fetchone()[0])


def table_columns(path: Location, table: str) -> list[str]:
    """The column names of ``table``, in order; empty if it does not exist."""
    if not exists(path):
        return []
    with connect(path, read_only=True) as con:
        if not table_exists(con, table):
            return []
        return [row[0] for row in con.execute(f'DESCRIBE "{table}"').fetchall()]


def iter_rows(path: Location, sql: str, params: list | None = None, *, chunk_rows: int = 10_000) -> Iterator[tuple]:
    """The rows of a read-only ``sql`` one by one, fetched ``chunk_rows`` at a time (memory holds one
    fetch); nothing when the catalog file does not exist."""
    if not exists(path):
        return
    with connect(path, read_only=True) as con:
        cursor = con.execute(sql, params or [])
        while rows := cursor.fetchmany(chunk_rows):
            yield from rows


SORT_RANGE_ROWS = 20_000
"""Rows sorted at once by ``key_ranges`` callers: DuckDB 1.5 could not sort a partition's wide rows
(answers, conversations) of 300k prompts in one ``ORDER BY`` under the 256 MB limits above ("failed
to pin block"); 20k of them fit."""


def key_ranges(
    con: duckdb.DuckDBPyConnection,
    table: str,
    key: str,
    where: str,
    params: list,
    *,
    rows: int | None = None,
    alias: str | None = None,
) -> Iterator[tuple[str, list]]:
    """Conditions (``key >= ? [AND key < ?]``, with their parameters) that cut ``table``'s rows
    matching ``where`` into consecutive ranges of about ``rows`` rows in ``key`` order: sort one
    range at a time and only the key column is sorted whole. ``alias`` qualifies the key in the
    conditions (a query that joins ``table`` as ``alias``)."""
    column = f'{alias}."{key}"' if alias else f'"{key}"'
    rows = rows or SORT_RANGE_ROWS
    bounds = [
        row[0]
        for row in con.execute(
            f'SELECT "{key}" FROM (SELECT "{key}", row_number() OVER (ORDER BY "{key}") AS n FROM "{table}" {where}) '
            f'WHERE (n - 1) % ? = 0 ORDER BY "{key}"',
            [*params, rows],
        ).fetchall()
    ]
    for index, low in enumerate(bounds):
        if index + 1 < len(bounds):
            yield f"{column} >= ? AND {column} < ?", [low, bounds[index + 1]]
        else:
            yield f"{column} >= ?", [low]
