"""The append-only ledger of paid teacher answers, keyed by ``ids.request_hash``.

Every answer the teacher returns is money spent; the ledger is what makes a crash or a rerun never
pay for it twice. It is a SQLite file, not a table in the DuckDB catalog: DuckDB allows one writing
process per file, and a teacher run lasts hours while other steps (and a sensor-started run for a
new teacher release) need to write too. SQLite in WAL mode lets several processes append at once
(writers queue on a short lock, readers never block) and survives ``kill -9``: a committed batch is
in the WAL and is replayed on the next open, an uncommitted one is simply absent.

Answers are never overwritten (``INSERT OR IGNORE`` on the key). Failures go to their own table; a
later successful answer supersedes them (see ``Ledger.failures``).

**Where an answer may be reused** is its ``origin``, the second half of the key (request hash,
origin): ``simulated`` for the embedded simulator, ``remote`` for real endpoints. A simulated answer
therefore never satisfies a request to a real endpoint, nor the reverse. Real endpoints serving the
same model id share answers by default (same weights, same sampling parameters: an answer is as
good from one host as from another), and every answer records the endpoint that gave it
(``endpoint``) and the model id it said it served (``served_model``). With
``TEACHER_SHARE_ANSWERS_ACROSS_ENDPOINTS=false`` the origin is ``remote:<scheme://host:port>`` and
each endpoint pays for its own answers.

**Leases** (table ``leases``) stop two processes from paying for one key at the same moment: before
paying, a worker claims (request hash, origin) with its owner id and an expiry (``Ledger.claim``,
checked against ``answers`` in the same write transaction). Another worker that needs the key sees
the lease and waits for the answer (``distillset.teacher.leases``), or takes the lease over once it
has expired (its owner died). Committing an answer removes the key's lease in the same transaction.

Schema version 2 (``PRAGMA user_version``) added the origin to the key and ``served_model``; a
version 1 ledger is migrated in place when opened (its rows get origin ``simulated`` or ``remote``
from their ``simulated`` flag). Version 3 added ``reasoning`` (a reasoning model's trace, kept
apart from the answer in ``content``; NULL for older rows and for teachers that send none).
Version 4 added the ``leases`` table (created, like every table, when the ledger is opened).
Version 5 added ``batches`` and ``batch_lines``: provider batches (``distillset.teacher.batch``),
recorded as an intent before their file is uploaded and with the provider's batch id as soon as it
exists, so a crash never gets a request submitted twice.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from distillset.disk import describe_write_error
from distillset.teacher.spill import read_spilled, spill, spilled_files

# How long a writer waits for another process's write lock before failing; a batch commit takes
# milliseconds, so minutes means something is wrong, not busy.
BUSY_TIMEOUT_MS = 120_000
# SQLite limits the number of bound parameters per statement (32766 in modern builds, 999 in old).
_LOOKUP_CHUNK = 900

SCHEMA_VERSION = 5
SIMULATED_ORIGIN = "simulated"
REMOTE_ORIGIN = "remote"

_ANSWERS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    request_hash      TEXT NOT NULL,
    model             TEXT NOT NULL,
    messages_json     TEXT NOT NULL,
    sampling_json     TEXT NOT NULL,
    content           TEXT NOT NULL,
    finish_reason     TEXT,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_ms        REAL NOT NULL,
    attempts          INTEGER NOT NULL,
    response_id       TEXT,
    endpoint          TEXT NOT NULL,
    simulated         INTEGER NOT NULL,
    created_at        TEXT NOT NULL,
    run_id            TEXT,
    origin            TEXT NOT NULL,
    served_model      TEXT,
    reasoning         TEXT,
    PRIMARY KEY (request_hash, origin)
)"""

_SCHEMA = (
    _ANSWERS_TABLE.format(name="answers")
    + """;
CREATE INDEX IF NOT EXISTS answers_run ON answers (run_id);
CREATE TABLE IF NOT EXISTS failures (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    request_hash  TEXT NOT NULL,
    model         TEXT NOT NULL,
    error         TEXT NOT NULL,
    status_code   INTEGER,
    attempts      INTEGER NOT NULL,
    failed_at     TEXT NOT NULL,
    run_id        TEXT,
    origin        TEXT NOT NULL DEFAULT 'remote'
);
CREATE INDEX IF NOT EXISTS failures_hash ON failures (request_hash);
CREATE TABLE IF NOT EXISTS leases (
    request_hash  TEXT NOT NULL,
    origin        TEXT NOT NULL,
    owner         TEXT NOT NULL,
    claimed_at    REAL NOT NULL,
    expires_at    REAL NOT NULL,
    PRIMARY KEY (request_hash, origin)
);
CREATE INDEX IF NOT EXISTS leases_owner ON leases (owner);
CREATE TABLE IF NOT EXISTS batches (
    token          TEXT PRIMARY KEY,
    model          TEXT NOT NULL,
    origin         TEXT NOT NULL,
    endpoint       TEXT NOT NULL,
    state          TEXT NOT NULL,
    input_file_id  TEXT,
    batch_id       TEXT,
    provider_status TEXT,
    lines          INTEGER NOT NULL,
    bytes          INTEGER NOT NULL,
    run_id         TEXT,
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_state ON batches (state);
CREATE TABLE IF NOT EXISTS batch_lines (
    token          TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    origin         TEXT NOT NULL,
    messages_json  TEXT NOT NULL,
    sampling_json  TEXT NOT NULL,
    state          TEXT NOT NULL,
    error          TEXT,
    PRIMARY KEY (token, request_hash)
);
CREATE INDEX IF NOT EXISTS batch_lines_key ON batch_lines (request_hash, origin);
"""
)


@dataclass(frozen=True)
class LedgerAnswer:
    """One paid teacher answer (one turn of one conversation)."""

    request_hash: str
    model: str
    messages_json: str
    sampling_json: str
    content: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    attempts: int
    response_id: str | None
    endpoint: str
    simulated: bool
    created_at: datetime
    run_id: str | None
    origin: str | None = None
    """Where this answer may be reused (see the module docstring); from ``simulated`` when omitted."""
    served_model: str | None = None
    """The model id the endpoint said it answered with."""
    reasoning: str | None = None
    """The reasoning trace sent apart from the answer (``reasoning_content``, ``reasoning`` or ``<think>``)."""

    def __post_init__(self) -> None:
        if self.origin is None:
            object.__setattr__(self, "origin", SIMULATED_ORIGIN if self.simulated else REMOTE_ORIGIN)


@dataclass(frozen=True)
class LedgerFailure:
    """A request that did not get an answer after its retries."""

    request_hash: str
    model: str
    error: str
    status_code: int | None
    attempts: int
    failed_at: datetime
    run_id: str | None
    origin: str = REMOTE_ORIGIN


@dataclass(frozen=True)
class LeaseClaim:
    """What ``Ledger.claim`` found: the answer, the lease taken, or another owner's live lease."""

    answer: LedgerAnswer | None = None
    """The key is answered already: use this, pay nothing."""
    claimed: bool = False
    """The caller holds the lease now: it pays, and committing the answer releases the lease."""
    owner: str | None = None
    """Another worker's live lease: its owner (wait for its answer)."""
    expires_at: float | None = None
    """When that lease expires (seconds since the epoch)."""


_ANSWER_COLUMNS = [f.name for f in fields(LedgerAnswer)]
_FAILURE_COLUMNS = [f.name for f in fields(LedgerFailure)]


def _to_row(record) -> tuple:
    # Attribute by attribute: dataclasses.astuple deep-copies, which costs more than the insert.
    return tuple(
        value.astimezone(UTC).isoformat()
        if isinstance(value, datetime)
        else int(value)
        if isinstance(value, bool)
        else value
        for value in (getattr(record, name) for name in record.__dataclass_fields__)
    )


def _answer_from_row(row: tuple) -> LedgerAnswer:
    values = dict(zip(_ANSWER_COLUMNS, row, strict=True))
    values["simulated"] = bool(values["simulated"])
    values["created_at"] = datetime.fromisoformat(values["created_at"])
    return LedgerAnswer(**values)


def _failure_from_row(row: tuple) -> LedgerFailure:
    values = dict(zip(_FAILURE_COLUMNS, row, strict=True))
    values["failed_at"] = datetime.fromisoformat(values["failed_at"])
    return LedgerFailure(**values)


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
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


class Ledger:
    """The ledger file at ``path`` (created with its schema on first use).

    Safe to share across threads: each thread reads through its own connection.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        con = _connect(self.path)
        try:
            _migrate(con)
            con.executescript(_SCHEMA)
        finally:
            con.close()
        self._commit_spilled()

    def _commit_spilled(self) -> None:
        """Commit the paid answers an earlier writer could not (``distillset.teacher.spill``), first."""
        for spilled in spilled_files(self.path):
            rows = read_spilled(spilled)
            con = _connect(self.path)
            try:
                con.execute("BEGIN IMMEDIATE")
                con.executemany(
                    f"INSERT OR IGNORE INTO answers ({', '.join(_ANSWER_COLUMNS)}) VALUES "
                    f"({', '.join('?' * len(_ANSWER_COLUMNS))})",
                    [tuple(_spilled_value(row, name) for name in _ANSWER_COLUMNS) for row in rows],
                )
                con.execute("COMMIT")
            except sqlite3.Error as exc:
                raise RuntimeError(
                    f"{describe_write_error(exc, self.path)}: {len(rows)} paid answers saved in {spilled} "
                    f"cannot be committed to the ledger yet; free some space and run again"
                ) from exc
            finally:
                con.close()
            spilled.unlink()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    def _reader(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = _connect(self.path)
            self._local.con = con
        return con

    def lookup(self, hashes: Iterable[str], *, origin: str | None) -> dict[str, LedgerAnswer]:
        """The stored answers among ``hashes`` that may serve ``origin`` (missing ones are absent).

        Args:
            hashes: request hashes.
            origin: ``TeacherEndpoint.origin`` of the endpoint the answers are for; ``None`` (for
                inspection only, never for deciding what to pay) takes any origin.
        """
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, LedgerAnswer] = {}
        con = self._reader()
        for start in range(0, len(wanted), _LOOKUP_CHUNK):
            chunk = wanted[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {', '.join(_ANSWER_COLUMNS)} FROM answers WHERE request_hash IN ({marks})"
            params = list(chunk)
            if origin is not None:
                sql += " AND origin = ?"
                params.append(origin)
            for row in con.execute(sql, params):
                answer = _answer_from_row(row)
                found.setdefault(answer.request_hash, answer)
        return found

    def get(self, request_hash: str, *, origin: str | None = None) -> LedgerAnswer | None:
        """One stored answer (of ``origin``, or of any origin), or None."""
        return self.lookup([request_hash], origin=origin).get(request_hash)

    def iter_answers(self, *, run_id: str | None = None) -> Iterator[LedgerAnswer]:
        """Every stored answer (of one run if ``run_id``), in insertion order."""
        sql = f"SELECT {', '.join(_ANSWER_COLUMNS)} FROM answers"
        params: list = []
        if run_id is not None:
            sql += " WHERE run_id = ?"
            params.append(run_id)
        for row in self._reader().execute(sql + " ORDER BY rowid", params):
            yield _answer_from_row(row)

    def failures(self, *, run_id: str | None = None) -> list[LedgerFailure]:
        """Recorded failures not superseded by a later successful answer to the same request."""
        sql = (
            f"SELECT {', '.join('f.' + c for c in _FAILURE_COLUMNS)} FROM failures f "
            "WHERE NOT EXISTS (SELECT 1 FROM answers a WHERE a.request_hash = f.request_hash AND a.origin = f.origin)"
        )
        params: list = []
        if run_id is not None:
            sql += " AND f.run_id = ?"
            params.append(run_id)
        return [_failure_from_row(row) for row in self._reader().execute(sql + " ORDER BY f.id", params)]

    def usage_totals(self, *, model: str | None = None, run_id: str | None = None) -> dict:
        """Answers and tokens paid, optionally for one model and/or one run."""
        clauses, params = [], []
        if model is not None:
            clauses.append("model = ?")
            params.append(model)
        if run_id is not None:
            clauses.append("run_id = ?")
            params.append(run_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        row = (
            self._reader()
            .execute(
                "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) FROM "
                f"answers{where}",
                params,
            )
            .fetchone()
        )
        return {"requests": row[0], "prompt_tokens": row[1], "completion_tokens": row[2]}

    def claim(self, request_hash: str, origin: str, owner: str, lease_s: float) -> LeaseClaim:
        """Claim the right to pay for one key, for ``lease_s`` seconds, unless it is answered.

        One write transaction looks for an answer, then takes the lease when there is none, it has
        expired, or ``owner`` holds it already (then it is renewed); so two workers never both
        get ``claimed`` for a live lease, and nobody gets it after the answer is committed.
        """
        return self.claim_many([(request_hash, origin)], owner, lease_s)[0]

    def claim_many(self, keys: list[tuple[str, str]], owner: str, lease_s: float) -> list[LeaseClaim]:
        """``claim`` for several (request hash, origin) keys in one write transaction, in order."""
        with self._write_transaction("record a lease") as con:
            return _claim_rows(con, keys, owner, lease_s)

    def release(self, owner: str, keys: Iterable[tuple[str, str]] | None = None) -> int:
        """Give up ``owner``'s leases (only those on ``keys``, (request hash, origin) pairs, if given).

        Returns how many were released. A released key may be claimed by the next worker at once.
        """
        with self._write_transaction("release leases") as con:
            if keys is None:
                return con.execute("DELETE FROM leases WHERE owner = ?", [owner]).rowcount
            released = 0
            for request_hash, origin in keys:
                released += con.execute(
                    "DELETE FROM leases WHERE request_hash = ? AND origin = ? AND owner = ?",
                    [request_hash, origin, owner],
                ).rowcount
            return released

    def iter_failures(self) -> Iterator[LedgerFailure]:
        """Every recorded failure, superseded or not, in insertion order (for ``distillset ledger export``)."""
        for row in self._reader().execute(f"SELECT {', '.join(_FAILURE_COLUMNS)} FROM failures ORDER BY id"):
            yield _failure_from_row(row)

    def merge(self, answers: Iterable[LedgerAnswer], failures: Iterable[LedgerFailure]) -> tuple[int, int]:
        """Add answers and failures another ledger holds, in one transaction; returns how many were new.

        Idempotent: an answer already stored under its key is kept (never overwritten), a failure
        identical to a stored one (same request, origin, time and run) is not added twice.
        """
        with self._write_transaction("import records") as con:
            before = con.total_changes
            con.executemany(
                f"INSERT OR IGNORE INTO answers ({', '.join(_ANSWER_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(_ANSWER_COLUMNS))})",
                [_to_row(a) for a in answers],
            )
            added_answers = con.total_changes - before
            before = con.total_changes
            con.executemany(
                f"INSERT INTO failures ({', '.join(_FAILURE_COLUMNS)}) SELECT {', '.join('?' * len(_FAILURE_COLUMNS))} "
                "WHERE NOT EXISTS (SELECT 1 FROM failures WHERE request_hash = ?1 AND origin = ?8 "
                "AND failed_at = ?6 AND run_id IS ?7)",
                [_to_row(f) for f in failures],
            )
            added_failures = con.total_changes - before
        return added_answers, added_failures

    def expire(self, request_hash: str, origin: str, owner: str) -> bool:
        """End ``owner``'s lease on one key now (its owner is known dead); True if it held one."""
        with self._write_transaction("expire a lease") as con:
            cursor = con.execute(
                "UPDATE leases SET expires_at = 0 WHERE request_hash = ? AND origin = ? AND owner = ?",
                [request_hash, origin, owner],
            )
            return cursor.rowcount > 0

    def leases(self) -> list[tuple[str, str, str, float]]:
        """Every lease: (request hash, origin, owner, expires at), for inspection and tests."""
        return [
            tuple(row)
            for row in self._reader().execute(
                "SELECT request_hash, origin, owner, expires_at FROM leases ORDER BY claimed_at"
            )
        ]

    @contextlib.contextmanager
    def _write_transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """One short write transaction on this thread's connection (autocommit mode between them).

        A failed one is rolled back; if even that fails (a full disk), the connection is dropped so
        it cannot keep the write lock. Errors read ``no space left on device at FOLDER`` when so.
        """
        con = self._reader()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        except sqlite3.Error as exc:
            if con.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
            if con.in_transaction:
                con.close()
                self._local.con = None
            raise RuntimeError(
                f"{describe_write_error(exc, self.path)}: the ledger {self.path} cannot {what}: {exc}"
            ) from exc

    def count_answers(self) -> int:
        return self._reader().execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def writer(
        self,
        *,
        run_id: str | None = None,
        batch_size: int = 32,
        flush_interval_s: float = 0.5,
        lease_owner: str | None = None,
    ) -> LedgerWriter:
        """A buffered writer (a context manager) that commits every ``batch_size`` answers or
        ``flush_interval_s`` seconds, whichever comes first, and on exit. A failure it commits
        releases ``lease_owner``'s lease on that key."""
        return LedgerWriter(
            self.path,
            run_id=run_id,
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            lease_owner=lease_owner,
        )

    def close(self) -> None:
        """Close this thread's read connection (others close when their thread ends)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


class LedgerWriter:
    """Buffers answers and failures and commits them in small transactions from a background thread.

    The caller (an asyncio loop) never waits on disk: ``add_answer`` only appends to a buffer. A
    ``kill -9`` loses at most the answers added since the last commit, never a committed one.
    ``pending`` lets the caller see answers that are buffered but not yet committed, so a
    duplicate request in the same run is not paid again in that window.
    """

    def __init__(
        self,
        path: Path,
        *,
        run_id: str | None,
        batch_size: int,
        flush_interval_s: float,
        lease_owner: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.path = path
        self.lease_owner = lease_owner
        self.run_id = run_id
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._answers: dict[str, LedgerAnswer] = {}
        self._failures: list[LedgerFailure] = []
        self._claims: list[tuple[str, str, float, Callable]] = []
        self._error: BaseException | None = None
        self.answers_written = 0
        self.failures_written = 0
        self._con: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LedgerWriter:
        self._con = _connect(self.path)
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def add_answer(self, answer: LedgerAnswer) -> None:
        """Queue an answer; it is committed within ``flush_interval_s`` or the next full batch.

        Raises:
            RuntimeError: the writer cannot commit any more (a full disk): stop paying. The answer
                is kept anyway and saved elsewhere by ``close`` (it has been paid for).
        """
        if answer.run_id is None and self.run_id is not None:
            answer = _replace_run_id(answer, self.run_id)
        with self._lock:
            self._answers.setdefault((answer.request_hash, answer.origin), answer)
            full = len(self._answers) + len(self._failures) >= self.batch_size
        self._raise_if_failed()
        if full:
            self._wake.set()

    def add_failure(
        self,
        request_hash: str,
        model: str,
        error: str,
        *,
        status_code: int | None = None,
        attempts: int = 1,
        failed_at: datetime | None = None,
        origin: str = REMOTE_ORIGIN,
    ) -> None:
        """Queue a failure record (superseded later by a successful answer to the same request)."""
        self._raise_if_failed()
        failure = LedgerFailure(
            request_hash=request_hash,
            model=model,
            error=error,
            status_code=status_code,
            attempts=attempts,
            failed_at=failed_at or datetime.now(UTC),
            run_id=self.run_id,
            origin=origin,
        )
        with self._lock:
            self._failures.append(failure)
            full = len(self._answers) + len(self._failures) >= self.batch_size
        if full:
            self._wake.set()

    def submit_claim(
        self,
        request_hash: str,
        origin: str,
        lease_s: float,
        done: Callable[[LeaseClaim | None, BaseException | None], None],
    ) -> None:
        """Claim a key for ``lease_owner`` in the writer's next transaction (``Ledger.claim``'s rules).

        ``done(claim, error)`` is called from the writer's thread once it is committed (or failed).
        One transaction then commits the answers that arrived and claims the keys asked for, so a
        run's writes never wait on each other's locks, and many claims cost one commit.
        """
        if self.lease_owner is None:
            raise ValueError("this writer has no lease_owner: it cannot claim keys")
        self._raise_if_failed()
        with self._lock:
            self._claims.append((request_hash, origin, lease_s, done))
        if self._error is not None or self._thread is None:  # nobody will take it: fail it now
            self._fail_claims(self._error or RuntimeError(f"the ledger writer of {self.path} is closed"))
        self._wake.set()

    def _fail_claims(self, error: BaseException) -> None:
        with self._lock:
            claims, self._claims = self._claims, []
        for *_, done in claims:
            done(None, error)

    def pending(self, request_hash: str, origin: str) -> LedgerAnswer | None:
        """An answer added but not yet committed, if any."""
        with self._lock:
            return self._answers.get((request_hash, origin))

    def flush(self) -> None:
        """Commit everything buffered now (from the caller's thread)."""
        self._write_buffered()
        self._raise_if_failed()

    def close(self) -> None:
        """Commit what is buffered and stop the background thread."""
        if self._thread is None:
            return
        self._closed.set()
        self._wake.set()
        self._thread.join()
        self._thread = None
        try:
            self._write_buffered()
        except Exception as exc:
            with self._lock:
                rows = [dict(zip(_ANSWER_COLUMNS, _to_row(a), strict=True)) for a in self._answers.values()]
            # Paid answers the database refused go elsewhere, never to nowhere; the next Ledger on
            # this path commits them before anything else.
            saved = spill(self.path, rows) if rows else None
            where = (
                f"; {len(rows)} paid answers were saved to {saved} and the next run writes them first" if saved else ""
            )
            raise RuntimeError(
                f"{describe_write_error(exc, self.path)}: the ledger {self.path} cannot commit{where}"
            ) from exc
        finally:
            self._fail_claims(RuntimeError(f"the ledger writer of {self.path} is closed"))
            self._con.close()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError(
                f"{describe_write_error(self._error, self.path)}: the ledger {self.path} cannot commit: {self._error}"
            ) from self._error

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self._write_buffered()
            except BaseException as exc:  # surfaced to the caller on its next add/flush/close
                self._error = exc
                self._fail_claims(exc)
                return

    def _write_buffered(self) -> None:
        with self._write_lock:
            self._write_batch()

    def _write_batch(self) -> None:
        with self._lock:
            if not self._answers and not self._failures and not self._claims:
                return
            answers = list(self._answers.values())
            failures = self._failures
            self._failures = []
            claims, self._claims = self._claims, []
        try:
            results = self._commit(answers, failures, claims)
        except BaseException as exc:
            for *_, done in claims:
                done(None, exc)
            raise
        for (*_, done), result in zip(claims, results, strict=True):
            done(result, None)

    def _commit(self, answers: list[LedgerAnswer], failures: list[LedgerFailure], claims: list) -> list[LeaseClaim]:
        con = self._con
        results: list[LeaseClaim] = []
        con.execute("BEGIN IMMEDIATE")
        try:
            if answers:
                con.executemany(
                    f"INSERT OR IGNORE INTO answers ({', '.join(_ANSWER_COLUMNS)}) VALUES "
                    f"({', '.join('?' * len(_ANSWER_COLUMNS))})",
                    [_to_row(a) for a in answers],
                )
                # An answered key needs no lease any more, whoever held it: in the same transaction,
                # so a waiting worker finds either the lease or the answer, never neither.
                con.executemany(
                    "DELETE FROM leases WHERE request_hash = ? AND origin = ?",
                    [(a.request_hash, a.origin) for a in answers],
                )
            if failures:
                con.executemany(
                    f"INSERT INTO failures ({', '.join(_FAILURE_COLUMNS)}) VALUES "
                    f"({', '.join('?' * len(_FAILURE_COLUMNS))})",
                    [_to_row(f) for f in failures],
                )
                if self.lease_owner is not None:
                    # A failed request frees its key: a waiting worker may try it itself.
                    con.executemany(
                        "DELETE FROM leases WHERE request_hash = ? AND origin = ? AND owner = ?",
                        [(f.request_hash, f.origin, self.lease_owner) for f in failures],
                    )
            # Claims come after the answers: a key answered in this very batch is found answered.
            for request_hash, origin, lease_s, _ in claims:
                results.extend(_claim_rows(con, [(request_hash, origin)], self.lease_owner, lease_s))
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # a disk error may have ended the transaction already
                con.execute("ROLLBACK")
            with self._lock:
                self._failures = failures + self._failures
            raise
        with self._lock:
            # Answers stay visible through pending() until committed, then leave the buffer.
            for answer in answers:
                key = (answer.request_hash, answer.origin)
                if self._answers.get(key) is answer:
                    del self._answers[key]
        self.answers_written += len(answers)
        self.failures_written += len(failures)
        return results


def _claim_rows(con: sqlite3.Connection, keys: list[tuple[str, str]], owner: str, lease_s: float) -> list[LeaseClaim]:
    """The claims of ``Ledger.claim_many``, inside the caller's write transaction."""
    now = time.time()
    claims = []
    for request_hash, origin in keys:
        row = con.execute(
            f"SELECT {', '.join(_ANSWER_COLUMNS)} FROM answers WHERE request_hash = ? AND origin = ?",
            [request_hash, origin],
        ).fetchone()
        if row is not None:
            claims.append(LeaseClaim(answer=_answer_from_row(row)))
            continue
        con.execute(
            "INSERT INTO leases (request_hash, origin, owner, claimed_at, expires_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (request_hash, origin) DO UPDATE SET owner = excluded.owner, "
            "claimed_at = excluded.claimed_at, expires_at = excluded.expires_at "
            "WHERE leases.expires_at <= excluded.claimed_at OR leases.owner = excluded.owner",
            [request_hash, origin, owner, now, now + lease_s],
        )
        holder, expires_at = con.execute(
            "SELECT owner, expires_at FROM leases WHERE request_hash = ? AND origin = ?", [request_hash, origin]
        ).fetchone()
        claims.append(LeaseClaim(claimed=True) if holder == owner else LeaseClaim(owner=holder, expires_at=expires_at))
    return claims


def _spilled_value(row: dict, name: str):
    # Rows spilled by a version-1 writer carry no origin: it follows from their simulated flag.
    if name == "origin" and not row.get("origin"):
        return SIMULATED_ORIGIN if row.get("simulated") else REMOTE_ORIGIN
    return row.get(name)


def _migrate(con: sqlite3.Connection) -> None:
    """Bring a ledger of an older schema to ``SCHEMA_VERSION``, in one transaction, once."""
    con.execute("BEGIN IMMEDIATE")
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version < 2 and "answers" in tables:
            old = [row[1] for row in con.execute("PRAGMA table_info(answers)")]
            con.execute(_ANSWERS_TABLE.format(name="answers_v2"))
            columns = ", ".join(c for c in _ANSWER_COLUMNS if c in old)
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


def _replace_run_id(answer: LedgerAnswer, run_id: str) -> LedgerAnswer:
    values = {name: getattr(answer, name) for name in _ANSWER_COLUMNS}
    values["run_id"] = run_id
    return LedgerAnswer(**values)
