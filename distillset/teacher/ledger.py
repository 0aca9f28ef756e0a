"""The append-only ledger of paid teacher answers, keyed by ``ids.request_hash``.

Every answer the teacher returns is money spent; the ledger is what makes a crash or a rerun never
pay for it twice. It is not a table in the DuckDB catalog: DuckDB allows one writing process per
file, and a teacher run lasts hours while other steps (and a sensor-started run for a new teacher
release) need to write too. It is a SQLite file (``ledger_sqlite``, the embedded default) or a
PostgreSQL database shared by workers on several machines (``ledger_postgres``); this module is the
core both run, with one schema (``ledger_tables``) and one SQL, so they behave the same.

Answers are never overwritten (``INSERT ... ON CONFLICT DO NOTHING`` on the key). Failures go to
their own table; a later successful answer supersedes them (see ``Ledger.failures``).

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

Schema version 2 added the origin to the key and ``served_model``; version 3 ``reasoning`` (a
reasoning model's trace, kept apart from the answer in ``content``; NULL for older rows and for
teachers that send none); version 4 the ``leases`` table; version 5 ``batches`` and ``batch_lines``
(provider batches, ``distillset.teacher.batch``: recorded as an intent before their file is uploaded,
so a crash never gets a request submitted twice). Each backend migrates an older ledger when it is
opened (``ledger_sqlite._migrate``, ``ledger_postgres._migrate``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import TypeVar

from distillset.settings.ledger_url import is_postgres_url
from distillset.teacher.ledger_sqlite import BUSY_TIMEOUT_MS, SQLiteBackend
from distillset.teacher.ledger_tables import ANSWERS, FAILURES, REMOTE_ORIGIN, SCHEMA_VERSION, SIMULATED_ORIGIN
from distillset.teacher.spill import read_spilled, spill, spilled_files

__all__ = [
    "BUSY_TIMEOUT_MS",
    "REMOTE_ORIGIN",
    "SCHEMA_VERSION",
    "SIMULATED_ORIGIN",
    "LeaseClaim",
    "Ledger",
    "LedgerAnswer",
    "LedgerFailure",
    "LedgerSession",
    "LedgerWriter",
]

# SQLite limits the number of bound parameters per statement (32766 in modern builds, 999 in old).
_LOOKUP_CHUNK = 900
# Keys claimed per statement: 5 parameters each, well under SQLite's limit of bound parameters.
_CLAIM_CHUNK = 400
# A PostgreSQL transaction chosen as a deadlock victim runs again, up to this many times.
_MAX_TX_ATTEMPTS = 8

T = TypeVar("T")
log = logging.getLogger(__name__)


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


def _row_layout(record_type: type) -> tuple[Callable, tuple[int, ...], tuple[int, ...]]:
    """How to read a record type's fields as one tuple, and which positions hold times and flags."""
    names = [f.name for f in fields(record_type)]
    times = tuple(i for i, f in enumerate(fields(record_type)) if "datetime" in str(f.type))
    flags = tuple(i for i, f in enumerate(fields(record_type)) if str(f.type) == "bool")
    return attrgetter(*names), times, flags


_ROW_LAYOUTS: dict[type, tuple[Callable, tuple[int, ...], tuple[int, ...]]] = {}


def _to_row(record) -> tuple:
    """A record's column values, times as ISO text in UTC and flags as 0/1 (what the tables store)."""
    # One attrgetter call for all the fields, then only the time and flag fields converted: a
    # generator over every field cost ~3x as much per answer (dataclasses.astuple deep-copies,
    # which costs more than the insert).
    layout = _ROW_LAYOUTS.get(type(record))
    if layout is None:
        layout = _ROW_LAYOUTS[type(record)] = _row_layout(type(record))
    getter, times, flags = layout
    values = list(getter(record))
    for i in times:
        if isinstance(values[i], datetime):
            values[i] = values[i].astimezone(UTC).isoformat()
    for i in flags:
        if isinstance(values[i], bool):
            values[i] = int(values[i])
    return tuple(values)


def _answer_from_row(row: tuple) -> LedgerAnswer:
    values = dict(zip(_ANSWER_COLUMNS, row, strict=True))
    values["simulated"] = bool(values["simulated"])
    values["created_at"] = datetime.fromisoformat(values["created_at"])
    return LedgerAnswer(**values)


def _failure_from_row(row: tuple) -> LedgerFailure:
    values = dict(zip(_FAILURE_COLUMNS, row, strict=True))
    values["failed_at"] = datetime.fromisoformat(values["failed_at"])
    return LedgerFailure(**values)


_INSERT_ANSWER = (
    f"INSERT INTO answers ({', '.join(_ANSWER_COLUMNS)}) VALUES ({', '.join('?' * len(_ANSWER_COLUMNS))}) "
    "ON CONFLICT (request_hash, origin) DO NOTHING"
)
_INSERT_FAILURE = (
    f"INSERT INTO failures ({', '.join(_FAILURE_COLUMNS)}) VALUES ({', '.join('?' * len(_FAILURE_COLUMNS))})"
)
_DELETE_LEASE = "DELETE FROM leases WHERE request_hash = ? AND origin = ?"
_DELETE_OWN_LEASE = "DELETE FROM leases WHERE request_hash = ? AND origin = ? AND owner = ?"
assert _ANSWER_COLUMNS == ANSWERS.column_names and _FAILURE_COLUMNS == FAILURES.column_names[1:]


def open_backend(location: Path | str):
    """The backend of a ledger location: a ``postgresql://`` URL, or a SQLite file path."""
    if is_postgres_url(location):
        from distillset.teacher.ledger_postgres import PostgresBackend  # psycopg loads only when used

        return PostgresBackend(str(location))
    return SQLiteBackend(location)


class LedgerSession:
    """One write transaction of ``Ledger.transaction``: statements with ``?`` parameters."""

    def __init__(self, backend, con) -> None:
        self._backend = backend
        self._con = con

    def execute(self, sql: str, params=()) -> list[tuple]:
        """Run one statement; its rows (none for a write)."""
        cursor = self._backend.execute(self._con, sql, params)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []

    def executemany(self, sql: str, rows: list) -> int:
        """Run ``sql`` once per row; returns the rows changed."""
        return self._backend.executemany(self._con, sql, rows)


class Ledger:
    """The ledger at ``location``: a SQLite file path (created with its schema on first use) or a
    ``postgresql://`` URL (the server must answer: checked here, before anything is paid).

    Safe to share across threads: SQLite reads through one connection per thread, PostgreSQL
    through its pool.
    """

    def __init__(self, location: Path | str) -> None:
        self._backend = open_backend(location)
        self.path = getattr(self._backend, "path", None)
        """The SQLite file (None for a PostgreSQL ledger)."""
        self.where = self._backend.where
        """The ledger as messages, logs and metadata name it (a PostgreSQL password masked)."""
        self._backend.open()
        self._commit_spilled()

    def _commit_spilled(self) -> None:
        """Commit the paid answers an earlier writer could not (``distillset.teacher.spill``), first."""
        backend = self._backend
        for spilled in spilled_files(backend.spill_path):
            rows = read_spilled(spilled)
            try:
                with backend.writing() as con:
                    backend.executemany(
                        con,
                        _INSERT_ANSWER,
                        [tuple(_spilled_value(row, name) for name in _ANSWER_COLUMNS) for row in rows],
                    )
            except backend.errors as exc:
                raise RuntimeError(
                    f"{backend.describe_error(exc)}: {len(rows)} paid answers saved in {spilled} "
                    f"cannot be committed to the ledger yet; free some space and run again"
                ) from exc
            spilled.unlink()

    def __repr__(self) -> str:
        return f"Ledger({self.where!r})"

    def lookup(self, hashes: Iterable[str], *, origin: str | None) -> dict[str, LedgerAnswer]:
        """The stored answers among ``hashes`` that may serve ``origin`` (missing ones are absent).

        Args:
            hashes: request hashes.
            origin: ``TeacherEndpoint.origin`` of the endpoint the answers are for; ``None`` (for
                inspection only, never for deciding what to pay) takes any origin.
        """
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, LedgerAnswer] = {}
        backend = self._backend
        with backend.reading() as con:
            for start in range(0, len(wanted), _LOOKUP_CHUNK):
                chunk = wanted[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT {', '.join(_ANSWER_COLUMNS)} FROM answers WHERE request_hash IN ({marks})"
                params = list(chunk)
                if origin is not None:
                    sql += " AND origin = ?"
                    params.append(origin)
                for row in backend.execute(con, sql, params):
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
        with self._backend.reading() as con:
            for row in self._backend.execute(con, f"{sql} ORDER BY {self._backend.answers_order}", params):
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
        with self._backend.reading() as con:
            return [_failure_from_row(row) for row in self._backend.execute(con, sql + " ORDER BY f.id", params)]

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
        sql = (
            f"SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) FROM answers{where}"
        )
        with self._backend.reading() as con:
            row = self._backend.execute(con, sql, params).fetchone()
        return {"requests": int(row[0]), "prompt_tokens": int(row[1]), "completion_tokens": int(row[2])}

    def claim(self, request_hash: str, origin: str, owner: str, lease_s: float) -> LeaseClaim:
        """Claim the right to pay for one key, for ``lease_s`` seconds, unless it is answered.

        One write transaction looks for an answer, then takes the lease when there is none, it has
        expired, or ``owner`` holds it already (then it is renewed); so two workers never both
        get ``claimed`` for a live lease, and nobody gets it after the answer is committed.
        """
        return self.claim_many([(request_hash, origin)], owner, lease_s)[0]

    def claim_many(self, keys: list[tuple[str, str]], owner: str, lease_s: float) -> list[LeaseClaim]:
        """``claim`` for several (request hash, origin) keys in one write transaction, in order."""
        return self._write_transaction(
            "record a lease", lambda con: _claim_rows(self._backend, con, keys, owner, lease_s)
        )

    def release(self, owner: str, keys: Iterable[tuple[str, str]] | None = None) -> int:
        """Give up ``owner``'s leases (only those on ``keys``, (request hash, origin) pairs, if given).

        Returns how many were released. A released key may be claimed by the next worker at once.
        """
        backend = self._backend
        rows = None if keys is None else [(h, o, owner) for h, o in sorted(keys)]

        def body(con) -> int:
            if rows is None:
                return backend.execute(con, "DELETE FROM leases WHERE owner = ?", [owner]).rowcount
            return backend.executemany(con, _DELETE_OWN_LEASE, rows)

        return self._write_transaction("release leases", body)

    def iter_failures(self) -> Iterator[LedgerFailure]:
        """Every recorded failure, superseded or not, in insertion order (for ``distillset ledger export``)."""
        with self._backend.reading() as con:
            sql = f"SELECT {', '.join(_FAILURE_COLUMNS)} FROM failures ORDER BY id"
            for row in self._backend.execute(con, sql):
                yield _failure_from_row(row)

    def merge(self, answers: Iterable[LedgerAnswer], failures: Iterable[LedgerFailure]) -> tuple[int, int]:
        """Add answers and failures another ledger holds, in one transaction; returns how many were new.

        Idempotent: an answer already stored under its key is kept (never overwritten), a failure
        identical to a stored one (same request, origin, time and run) is not added twice.
        """
        backend = self._backend
        answer_rows = [_to_row(a) for a in answers]
        failure_rows = [_to_row(f) for f in failures]

        def body(con) -> tuple[int, int]:
            added_answers = backend.executemany(con, _INSERT_ANSWER, answer_rows)
            seen = _stored_failure_keys(backend, con, sorted({row[0] for row in failure_rows}))
            new_rows = []
            for row in failure_rows:
                key = _failure_key(row)
                if key not in seen:
                    seen.add(key)
                    new_rows.append(row)
            backend.executemany(con, _INSERT_FAILURE, new_rows)
            return added_answers, len(new_rows)

        return self._write_transaction("import records", body)

    def expire(self, request_hash: str, origin: str, owner: str) -> bool:
        """End ``owner``'s lease on one key now (its owner is known dead); True if it held one."""
        sql = "UPDATE leases SET expires_at = 0 WHERE request_hash = ? AND origin = ? AND owner = ?"
        return self._write_transaction(
            "expire a lease", lambda con: self._backend.execute(con, sql, [request_hash, origin, owner]).rowcount > 0
        )

    def leases(self) -> list[tuple[str, str, str, float]]:
        """Every lease: (request hash, origin, owner, expires at), for inspection and tests."""
        with self._backend.reading() as con:
            sql = "SELECT request_hash, origin, owner, expires_at FROM leases ORDER BY claimed_at"
            return [tuple(row) for row in self._backend.execute(con, sql)]

    def _write_transaction(self, what: str, body: Callable):
        """``body(connection)`` in one short write transaction; returns what it returns.

        A PostgreSQL deadlock victim runs again (so ``body`` must be repeatable). Errors read ``no
        space left on device at FOLDER`` when so, and never show a password.
        """
        backend = self._backend
        for attempt in range(1, _MAX_TX_ATTEMPTS + 1):
            try:
                with backend.writing() as con:
                    return body(con)
            except backend.errors as exc:
                if backend.retryable(exc) and attempt < _MAX_TX_ATTEMPTS:
                    continue
                problem = f"{backend.describe_error(exc)}: the ledger {backend.where}"
                raise RuntimeError(f"{problem} cannot {what}: {backend.error_text(exc)}") from exc
        raise AssertionError("unreachable")

    @property
    def insertion_order(self) -> str:
        """The column that orders ``answers`` and ``batch_lines`` rows as inserted (for ``ORDER BY``)."""
        return self._backend.insertion_order

    def query(self, sql: str, params=()) -> list[tuple]:
        """The rows of one read statement written with ``?`` parameters (run on either backend).

        For the modules that keep tables of their own in the ledger (``distillset.teacher.batch``).
        """
        with self._backend.reading() as con:
            return [tuple(row) for row in self._backend.execute(con, sql, params)]

    def transaction(self, what: str, body: Callable[[LedgerSession], T]) -> T:
        """``body(session)`` in one short write transaction, on either backend; returns what it returns.

        ``session.execute`` / ``session.executemany`` take SQL with ``?`` parameters. ``body`` may run
        more than once (a PostgreSQL deadlock victim runs again), so it must be repeatable. ``what``
        names the change in errors ("the ledger X cannot record a batch: ...").
        """
        backend = self._backend
        return self._write_transaction(what, lambda con: body(LedgerSession(backend, con)))

    def count_answers(self) -> int:
        with self._backend.reading() as con:
            return int(self._backend.execute(con, "SELECT COUNT(*) FROM answers").fetchone()[0])

    def writer(
        self,
        *,
        run_id: str | None = None,
        batch_size: int = 32,
        flush_interval_s: float = 0.5,
        lease_owner: str | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> LedgerWriter:
        """A buffered writer (a context manager) that commits every ``batch_size`` answers or
        ``flush_interval_s`` seconds, whichever comes first, and on exit. A failure it commits
        releases ``lease_owner``'s lease on that key. With ``loop`` (the running loop of the thread
        that adds the answers), a SQLite ledger is committed on that loop (see ``LedgerWriter``)."""
        return LedgerWriter(
            self._backend,
            run_id=run_id,
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            lease_owner=lease_owner,
            loop=loop,
        )

    def close(self) -> None:
        """Close this thread's read connection (others close when their thread ends)."""
        self._backend.close()


class LedgerWriter:
    """Buffers answers and failures and commits them in small transactions from a background thread.

    The caller (an asyncio loop) never waits on disk: ``add_answer`` only appends to a buffer. A
    ``kill -9`` loses at most the answers added since the last commit, never a committed one.
    ``pending`` lets the caller see answers that are buffered but not yet committed, so a
    duplicate request in the same run is not paid again in that window.

    With ``loop`` and a backend whose writes are local (SQLite: ``inline_writes``), what is due is
    committed on the loop's own thread instead, once per loop iteration (``_flush_on_loop``: every
    answer that arrived in one iteration in one transaction, microseconds of work), through a
    connection that never waits for the write lock. The thread stays, and takes over whenever that
    lock is another process's (``busy``) or an inline commit fails: the loop never blocks on
    another run's transaction, and errors surface as they do without ``loop``. Why: handing every
    answer to a thread cost ~0.2 ms of CPU per request on the instant bench server, most of it
    the GIL passing back and forth around each SQLite statement (bench/README.md, fourth pass).
    """

    def __init__(
        self,
        backend,
        *,
        run_id: str | None,
        batch_size: int,
        flush_interval_s: float,
        lease_owner: str | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._backend = backend
        self.where = backend.where
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
        self._claims: list[tuple[list[tuple[str, str]], float, Callable]] = []
        self._error: BaseException | None = None
        self.answers_written = 0
        self.failures_written = 0
        self.transactions = 0
        """Write transactions committed (answers and failures, claims): for the benchmark."""
        self._con = None
        self._thread: threading.Thread | None = None
        self._loop = loop if loop is not None and getattr(backend, "inline_writes", False) else None
        self._loop_thread = threading.get_ident()
        self._loop_con = None
        self._flush_scheduled = False

    def __enter__(self) -> LedgerWriter:
        self._con = self._backend.connect_writer()
        if self._loop is not None:
            self._loop_con = self._backend.connect_inline_writer()
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
            self._due()

    def _due(self) -> None:
        """Something is to be committed now: on the loop, next iteration (``loop``), else by the thread."""
        if self._loop_con is not None and threading.get_ident() == self._loop_thread:
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._flush_on_loop)
        # Set only if not set: Event.set takes a Condition even when the writer is already due to
        # wake. Safe because the writer clears the flag before it reads the buffer, so a flag seen
        # set means a read of the buffer (with this answer in it) is still to come.
        elif not self._wake.is_set():
            self._wake.set()

    def _flush_on_loop(self) -> None:
        """Commit what is buffered, on the loop's thread, unless that would wait: then the thread does."""
        self._flush_scheduled = False
        if self._loop_con is None:  # closed (close committed the rest), or handed over for good
            return
        if not self._write_lock.acquire(blocking=False):
            self._wake.set()  # the thread is committing: its next round takes what is left
            return
        try:
            self._write_batch(self._loop_con, requeue_claims=True)
        except Exception as exc:
            if not self._backend.busy(exc):
                # Not a lock held elsewhere (a full disk, say): the thread commits from now on, so
                # the error is raised, and the paid answers spilled, exactly as without ``loop``.
                self._loop_con, con = None, self._loop_con
                self._backend.close_writer(con)
            self._wake.set()
        finally:
            self._write_lock.release()

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
            self._due()

    def submit_claim(
        self,
        request_hash: str,
        origin: str,
        lease_s: float,
        done: Callable[[LeaseClaim | None, BaseException | None], None],
    ) -> None:
        """Claim a key for ``lease_owner`` in the writer's next transaction (``Ledger.claim``'s rules).

        ``done(claim, error)`` is called once it is committed (or failed), from the writer's thread or,
        with ``loop``, from the loop's.
        Each round commits the answers that arrived, then claims the keys asked for (set at a time),
        so a run's writes never wait on each other's locks, and many claims cost one commit.
        """
        self.submit_claims(
            [(request_hash, origin)], lease_s, lambda claims, error: done(claims[0] if claims else None, error)
        )

    def submit_claims(
        self,
        keys: list[tuple[str, str]],
        lease_s: float,
        done: Callable[[list[LeaseClaim] | None, BaseException | None], None],
    ) -> None:
        """``submit_claim`` for several (request hash, origin) keys: one transaction, one ``done`` call.

        ``done(claims, error)`` gets the claims in the order of ``keys``.
        """
        if self.lease_owner is None:
            raise ValueError("this writer has no lease_owner: it cannot claim keys")
        self._raise_if_failed()
        with self._lock:
            self._claims.append((keys, lease_s, done))
        if self._error is not None or self._thread is None:  # nobody will take it: fail it now
            self._fail_claims(self._error or RuntimeError(f"the ledger writer of {self.where} is closed"))
        self._due()

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
            saved = spill(self._backend.spill_path, rows) if rows else None
            where = (
                f"; {len(rows)} paid answers were saved to {saved} and the next run writes them first" if saved else ""
            )
            raise RuntimeError(
                f"{self._backend.describe_error(exc)}: the ledger {self.where} cannot commit{where}"
            ) from exc
        finally:
            self._fail_claims(RuntimeError(f"the ledger writer of {self.where} is closed"))
            self._backend.close_writer(self._con)
            if self._loop_con is not None:
                self._loop_con, con = None, self._loop_con
                self._backend.close_writer(con)
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError(
                f"{self._backend.describe_error(self._error)}: the ledger {self.where} cannot commit: "
                f"{self._backend.error_text(self._error)}"
            ) from self._error

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self._write_buffered()
                if self._loop_con is not None:
                    self._checkpoint()
            except BaseException as exc:  # surfaced to the caller on its next add/flush/close
                self._error = exc
                self._fail_claims(exc)
                return

    def _checkpoint(self) -> None:
        # The loop's connection never checkpoints (it would sync files on the loop), so this thread
        # does. Committed answers are safe in the WAL whatever happens here: an error (a full disk)
        # leaves the checkpoint to the next round or the next connection, it does not stop the run.
        try:
            self._backend.checkpoint(self._con)
        except self._backend.errors as exc:
            log.debug("WAL checkpoint of %s failed: %s", self.where, exc)

    def _write_buffered(self) -> None:
        with self._write_lock:
            self._write_batch(self._con)

    def _write_batch(self, con, *, requeue_claims: bool = False) -> None:
        """Commit the buffer on ``con``; on an error, the claims fail (or, ``requeue_claims``, wait
        for the next round: the inline path hands them to the thread)."""
        with self._lock:
            if not self._answers and not self._failures and not self._claims:
                return
            answers = list(self._answers.values())
            failures = self._failures
            self._failures = []
            claims, self._claims = self._claims, []
        try:
            results = self._commit(con, answers, failures, claims)
        except BaseException as exc:
            if requeue_claims:
                with self._lock:
                    self._claims = claims + self._claims
            else:
                for *_, done in claims:
                    done(None, exc)
            raise
        start = 0
        for keys, _lease, done in claims:
            done(results[start : start + len(keys)], None)
            start += len(keys)

    def _commit(
        self, con, answers: list[LedgerAnswer], failures: list[LedgerFailure], claims: list
    ) -> list[LeaseClaim]:
        """Commit the answers and failures, then the claims, each in a transaction of its own.

        Two, not one: a transaction that deleted the leases of its answers and then claimed other
        keys would lock lease rows in two runs of key order, and two PostgreSQL writers doing that
        deadlock (PostgreSQL finds it after ``deadlock_timeout``, a second). Each transaction alone
        touches its lease rows in key order. Claims still come after the answers: a key answered in
        this very batch is found answered.
        """
        if answers or failures:
            try:
                self._in_transaction(con, lambda: self._commit_rows(con, answers, failures))
            except BaseException:
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
        return self._in_transaction(con, lambda: self._claim(con, claims)) if claims else []

    def _in_transaction(self, con, body: Callable):
        """``body()`` in one transaction on the writer's connection; a deadlock victim runs again."""
        backend = self._backend
        for attempt in range(1, _MAX_TX_ATTEMPTS + 1):
            try:
                with backend.transaction(con):
                    result = body()
                self.transactions += 1
                return result
            except backend.errors as exc:
                if not (backend.retryable(exc) and attempt < _MAX_TX_ATTEMPTS):
                    raise
        raise AssertionError("unreachable")

    def _commit_rows(self, con, answers: list[LedgerAnswer], failures: list[LedgerFailure]) -> None:
        backend = self._backend
        if answers:
            # In arrival order: the ledger's insertion order is the order answers came in.
            backend.executemany(con, _INSERT_ANSWER, [_to_row(a) for a in answers])
            # An answered key needs no lease any more, whoever held it: in the same transaction,
            # so a waiting worker finds either the lease or the answer, never neither.
            backend.executemany(con, _DELETE_LEASE, sorted({(a.request_hash, a.origin) for a in answers}))
        if failures:
            backend.executemany(con, _INSERT_FAILURE, [_to_row(f) for f in failures])
            if self.lease_owner is not None:
                # A failed request frees its key: a waiting worker may try it itself.
                backend.executemany(
                    con,
                    _DELETE_OWN_LEASE,
                    sorted({(f.request_hash, f.origin, self.lease_owner) for f in failures}),
                )

    def _claim(self, con, claims: list) -> list[LeaseClaim]:
        keys = [key for entry_keys, _lease, _done in claims for key in entry_keys]
        lease_s = max(lease for _keys, lease, _done in claims)  # one run, one lease length
        return _claim_rows(self._backend, con, keys, self.lease_owner, lease_s)


def _claim_rows(backend, con, keys: list[tuple[str, str]], owner: str, lease_s: float) -> list[LeaseClaim]:
    """The claims of ``Ledger.claim_many``, inside the caller's write transaction, in order.

    Set at a time, a few statements per chunk of keys rather than per key: on PostgreSQL every
    statement is a round trip, and a writer transaction carries every claim asked for since the
    last one.
    """
    now = time.time()
    unique = sorted(set(keys))  # key order across chunks too: see _claim_chunk
    results: dict[tuple[str, str], LeaseClaim] = {}
    for start in range(0, len(unique), _CLAIM_CHUNK):
        results.update(_claim_chunk(backend, con, unique[start : start + _CLAIM_CHUNK], owner, now, lease_s))
    return [results[key] for key in keys]


def _claim_chunk(backend, con, keys: list[tuple[str, str]], owner: str, now: float, lease_s: float) -> dict:
    claims: dict[tuple[str, str], LeaseClaim] = {
        key: LeaseClaim(answer=answer) for key, answer in _answers_of(backend, con, keys).items()
    }
    # Key order: two PostgreSQL transactions lock the lease rows they share in the same order.
    open_keys = sorted(key for key in keys if key not in claims)
    if not open_keys:
        return claims
    backend.execute(
        con,
        "INSERT INTO leases (request_hash, origin, owner, claimed_at, expires_at) VALUES "
        + ", ".join(["(?, ?, ?, ?, ?)"] * len(open_keys))
        + " ON CONFLICT (request_hash, origin) DO UPDATE SET owner = excluded.owner, "
        "claimed_at = excluded.claimed_at, expires_at = excluded.expires_at "
        "WHERE leases.expires_at <= excluded.claimed_at OR leases.owner = excluded.owner",
        [value for h, o in open_keys for value in (h, o, owner, now, now + lease_s)],
    )
    holders = {
        (h, o): (holder, expires_at)
        for h, o, holder, expires_at in _select_keys(
            backend, con, "SELECT request_hash, origin, owner, expires_at FROM leases", open_keys
        )
    }
    mine = [key for key in open_keys if holders.get(key, (None,))[0] == owner]
    # Look again now that the leases are ours: on PostgreSQL (READ COMMITTED, row locks) an answer
    # may have been committed since the first look, its lease deleted with it. Under SQLite's
    # BEGIN IMMEDIATE nothing can, so SQLite skips the read (one query per claim group).
    late = _answers_of(backend, con, mine) if backend.answers_land_during_claims else {}
    if late:
        backend.executemany(con, _DELETE_OWN_LEASE, [(h, o, owner) for h, o in sorted(late)])
    for key in open_keys:
        if key in late:
            claims[key] = LeaseClaim(answer=late[key])
        elif key in holders and holders[key][0] == owner:
            claims[key] = LeaseClaim(claimed=True)
        else:
            # Another owner's live lease (or, should it have vanished meanwhile, "ask again now").
            holder, expires_at = holders.get(key, ("", now))
            claims[key] = LeaseClaim(owner=holder, expires_at=expires_at)
    return claims


def _select_keys(backend, con, select: str, keys: list[tuple[str, str]]) -> Iterator[tuple]:
    """The rows of ``select`` (a table with ``request_hash`` and ``origin``) on (request hash, origin) ``keys``.

    One ``request_hash IN (...) AND origin = ?`` per origin, which both backends answer from the
    key's index. Not ``(request_hash, origin) IN (VALUES ...)``: SQLite scans the whole table for
    that, so every claim cost time in proportion to the ledger's size (bench/README.md, fourth pass).
    """
    by_origin: dict[str, list[str]] = {}
    for request_hash, origin in keys:
        by_origin.setdefault(origin, []).append(request_hash)
    for origin, hashes in by_origin.items():
        marks = ", ".join("?" * len(hashes))
        yield from backend.execute(con, f"{select} WHERE request_hash IN ({marks}) AND origin = ?", [*hashes, origin])


def _answers_of(backend, con, keys: list[tuple[str, str]]) -> dict[tuple[str, str], LedgerAnswer]:
    """The stored answers of (request hash, origin) ``keys``."""
    if not keys:
        return {}
    found = {}
    for row in _select_keys(backend, con, f"SELECT {', '.join(_ANSWER_COLUMNS)} FROM answers", keys):
        answer = _answer_from_row(row)
        found[(answer.request_hash, answer.origin)] = answer
    return found


def _failure_key(row: tuple) -> tuple:
    values = dict(zip(_FAILURE_COLUMNS, row, strict=True))
    return values["request_hash"], values["origin"], values["failed_at"], values["run_id"]


def _stored_failure_keys(backend, con, hashes: list[str]) -> set[tuple]:
    """(request hash, origin, failed at, run id) of the stored failures of ``hashes``."""
    found: set[tuple] = set()
    for start in range(0, len(hashes), _LOOKUP_CHUNK):
        chunk = hashes[start : start + _LOOKUP_CHUNK]
        sql = (
            "SELECT request_hash, origin, failed_at, run_id FROM failures "
            f"WHERE request_hash IN ({','.join('?' * len(chunk))})"
        )
        found.update(tuple(row) for row in backend.execute(con, sql, chunk))
    return found


def _spilled_value(row: dict, name: str):
    # Rows spilled by a version-1 writer carry no origin: it follows from their simulated flag.
    if name == "origin" and not row.get("origin"):
        return SIMULATED_ORIGIN if row.get("simulated") else REMOTE_ORIGIN
    return row.get(name)


def _replace_run_id(answer: LedgerAnswer, run_id: str) -> LedgerAnswer:
    values = {name: getattr(answer, name) for name in _ANSWER_COLUMNS}
    values["run_id"] = run_id
    return LedgerAnswer(**values)
