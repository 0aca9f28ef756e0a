"""The SQLite backend of the ledger: one file, the embedded default (``$DISTILLSET_HOME/ledger.sqlite``).

SQLite in WAL mode lets several processes of one machine append at once (writers queue on a short
lock, readers never block) and survives ``kill -9``: a committed batch is in the WAL and is replayed
on the next open, an uncommitted one is simply absent. Every write transaction is ``BEGIN
IMMEDIATE``: it takes the file's write lock first, so writers are serialised and a lease check and
its claim can never interleave with another process's.

Schema version 2 (``PRAGMA user_version``) added the origin to the key and ``served_model``; a
version 1 ledger is migrated in place when opened (its rows get origin ``simulated`` or ``remote``
from their ``simulated`` flag). Version 3 added ``reasoning``. Version 4 added the ``leases`` table.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from distillset.disk import describe_write_error
from distillset.teacher.ledger_tables import (
    ANSWERS,
    REMOTE_ORIGIN,
    SCHEMA_VERSION,
    SIMULATED_ORIGIN,
    TABLES,
    create_indexes,
    create_table,
)

# How long a writer waits for another process's write lock before failing; a batch commit takes
# milliseconds, so minutes means something is wrong, not busy.
BUSY_TIMEOUT_MS = 120_000

TYPES = {"text": "TEXT", "integer": "INTEGER", "real": "REAL", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"}


def _connect(path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    con = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False)
    con.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    _set_wal(con)
    # NORMAL in WAL mode is durable against a killed process (the only crash we must survive
    # cheaply); only a power loss can drop the last commits, and those answers are re-paid.
    con.execute("PRAGMA synchronous = NORMAL")
    return con


def _set_wal(con: sqlite3.Connection) -> None:
    # Switching a new file to WAL needs an exclusive lock and SQLite does not call the busy handler
    # for it: two runs opening a fresh ledger at once would see "database is locked". Retry briefly.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            con.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class SQLiteBackend:
    """A ledger file; each thread reads through its own connection."""

    errors = (sqlite3.Error,)
    answers_order = "rowid"
    """The order answers were inserted in."""
    insertion_order = "rowid"
    """The column that keeps insertion order in ``answers`` and ``batch_lines``."""
    inline_writes = True
    """A write transaction is a few local statements (no fsync per commit in WAL mode with
    ``synchronous = NORMAL``): an event loop may commit on its own thread (``LedgerWriter``'s
    ``loop``), through ``connect_inline_writer``, and hand over to the writer's thread only when
    another process holds the write lock."""
    answers_land_during_claims = False
    """``BEGIN IMMEDIATE`` holds the write lock for the whole claim: no answer can be committed
    between a claim's first look at the answers and its leases (``ledger._claim_chunk``)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        """The ledger as messages name it."""
        self.spill_path = self.path
        """The path paid answers that cannot be committed are spilled beside (``distillset.teacher.spill``)."""
        self._local = threading.local()

    def open(self) -> None:
        """Create the file and its tables (migrating an older schema) if needed."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = _connect(self.path)
        try:
            _migrate(con)
            con.executescript(";\n".join(schema_statements()) + ";")
        finally:
            con.close()

    def sql(self, text: str) -> str:
        """The core's SQL (``?`` parameters) as this backend runs it: unchanged."""
        return text

    def execute(self, con: sqlite3.Connection, sql: str, params=()) -> sqlite3.Cursor:
        return con.execute(sql, params)

    def executemany(self, con: sqlite3.Connection, sql: str, rows: list) -> int:
        """Run ``sql`` once per row; returns the rows changed."""
        return con.executemany(sql, rows).rowcount if rows else 0

    def retryable(self, exc: BaseException) -> bool:
        """Never: ``BEGIN IMMEDIATE`` serialises writers, so no transaction is chosen as a deadlock victim."""
        return False

    def describe_error(self, exc: BaseException) -> str:
        return describe_write_error(exc, self.path)

    def error_text(self, exc: BaseException) -> str:
        return str(exc)

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """This thread's read connection (autocommit: each statement sees the latest commits)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = _connect(self.path)
            self._local.con = con
        yield con

    @contextlib.contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction on this thread's connection.

        A failed one is rolled back; if even that fails (a full disk), the connection is dropped so
        it cannot keep the write lock.
        """
        with self.reading() as con:
            try:
                with self.transaction(con):
                    yield con
            except sqlite3.Error:
                if con.in_transaction:
                    con.close()
                    self._local.con = None
                raise

    def connect_writer(self) -> sqlite3.Connection:
        """A connection of its own for a ``LedgerWriter``'s thread."""
        return _connect(self.path)

    def connect_inline_writer(self) -> sqlite3.Connection:
        """A writer connection that never waits for the write lock: busy at once (``busy``) instead.

        It never checkpoints either (a checkpoint writes and syncs the database file: milliseconds
        on the event loop); the writer's thread does, ``checkpoint``.
        """
        con = _connect(self.path, busy_timeout_ms=0)
        con.execute("PRAGMA wal_autocheckpoint = 0")
        return con

    def checkpoint(self, con: sqlite3.Connection) -> None:
        """Copy what the WAL holds into the database file, waiting for nobody (``PASSIVE``)."""
        con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def busy(self, exc: BaseException) -> bool:
        """The write lock is another connection's (only ``connect_inline_writer``'s connections see it)."""
        # The primary code (low byte): SQLITE_BUSY and its extended forms (recovery, snapshot, timeout).
        code = getattr(exc, "sqlite_errorcode", None)
        return isinstance(exc, sqlite3.OperationalError) and code is not None and code & 0xFF == sqlite3.SQLITE_BUSY

    def close_writer(self, con: sqlite3.Connection) -> None:
        con.close()

    @contextlib.contextmanager
    def transaction(self, con: sqlite3.Connection) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error."""
        con.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # a disk error may have ended the transaction already
                con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's read connection (others close when their thread ends)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


def schema_statements() -> list[str]:
    """Every table and index of ``ledger_tables.TABLES`` in SQLite's dialect."""
    statements = []
    for table in TABLES:
        statements.append(create_table(table, TYPES))
        statements += create_indexes(table)
    return statements


def _migrate(con: sqlite3.Connection) -> None:
    """Bring a ledger of an older schema to ``SCHEMA_VERSION``, in one transaction, once."""
    con.execute("BEGIN IMMEDIATE")
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version < 2 and "answers" in tables:
            old = [row[1] for row in con.execute("PRAGMA table_info(answers)")]
            con.execute(create_table(ANSWERS, TYPES, name="answers_v2"))
            columns = ", ".join(c for c in ANSWERS.column_names if c in old)
            con.execute(
                f"INSERT INTO answers_v2 ({columns}, origin) SELECT {columns}, "
                f"CASE WHEN simulated THEN '{SIMULATED_ORIGIN}' ELSE '{REMOTE_ORIGIN}' END FROM answers"
            )
            con.execute("DROP TABLE answers")
            con.execute("ALTER TABLE answers_v2 RENAME TO answers")
        if version < 2 and "failures" in tables:
            if "origin" not in {row[1] for row in con.execute("PRAGMA table_info(failures)")}:
                con.execute(f"ALTER TABLE failures ADD COLUMN origin TEXT NOT NULL DEFAULT '{REMOTE_ORIGIN}'")
        if version < 3 and "answers" in tables:
            if "reasoning" not in {row[1] for row in con.execute("PRAGMA table_info(answers)")}:
                con.execute("ALTER TABLE answers ADD COLUMN reasoning TEXT")
        if version < SCHEMA_VERSION:
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
