"""The DuckDB catalog: one file under ``DISTILLSET_HOME`` that holds every stage's table.

DuckDB allows one writing process per file, and Dagster may run steps in several processes.
Write connections are therefore short (open, write, close) and retried while another process
holds the lock, instead of failing the step on contention.
"""

from __future__ import annotations

import contextlib
import errno
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl

from distillset.disk import is_disk_full
from distillset.settings.paths import SQL_DIR

_LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked")


@contextlib.contextmanager
def connect(
    path: Path, *, read_only: bool = False, lock_timeout_s: float = 120.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the catalog, waiting up to ``lock_timeout_s`` while another process writes to it.

    A write that fails because the disk is full raises ``OSError(ENOSPC)`` saying "no space left on
    device at FOLDER", instead of DuckDB's I/O error text.
    """
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


def replace_table(path: Path, table: str, frame: pl.DataFrame) -> None:
    """Replace ``table`` with ``frame`` in one short write transaction."""
    with connect(path) as con:
        con.register("_frame", frame.to_arrow())
        con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM _frame')
        con.unregister("_frame")


def replace_partition(path: Path, table: str, frame: pl.DataFrame, *, column: str, value: str) -> None:
    """Replace the rows of ``table`` where ``column = value`` with ``frame``, atomically.

    The table is created from ``frame``'s schema the first time; a frame whose schema grew
    (a new column in a later release) recreates the table with the union of columns.
    """
    with connect(path) as con:
        con.register("_frame", frame.to_arrow())
        con.execute("BEGIN TRANSACTION")
        try:
            if not table_exists(con, table):
                con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM _frame')
            else:
                existing = [r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall()]
                if existing != frame.columns:
                    con.execute(f'CREATE TEMP TABLE _others AS SELECT * FROM "{table}" WHERE "{column}" <> ?', [value])
                    con.execute(f'DROP TABLE "{table}"')
                    con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM _frame')
                    con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM _others')
                    con.execute("DROP TABLE _others")
                else:
                    con.execute(f'DELETE FROM "{table}" WHERE "{column}" = ?', [value])
                    con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM _frame')
            con.execute("COMMIT")
        except Exception:
            with contextlib.suppress(duckdb.Error):  # a disk error may have ended the transaction already
                con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("_frame")


def read_table(path: Path, table: str, where: str = "", params: list | None = None) -> pl.DataFrame:
    """Read ``table`` (optionally filtered) into polars; an empty frame if it does not exist."""
    if not Path(path).exists():
        return pl.DataFrame()
    with connect(path, read_only=True) as con:
        if not table_exists(con, table):
            return pl.DataFrame()
        return con.execute(f'SELECT * FROM "{table}" {where}', params or []).pl()
