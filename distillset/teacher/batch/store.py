"""The ledger's record of provider batches (tables ``batches`` and ``batch_lines``, schema version 5).

A batch is written here *before* its file is uploaded (state ``intent``, with every line), gets its
input file id (``uploaded``) and the provider's batch id (``submitted``) as soon as each exists,
and ends ``finished`` once its output and error files are ingested. A line is ``pending`` until
then, and ``answered``, ``failed`` or ``expired`` after. That order is what makes a crash safe:
a request in a line of an unfinished batch is never planned again, and a batch the provider has
but the ledger does not know the id of is found by its token in the batch metadata.

The tables live in the ledger (declared in ``distillset.teacher.ledger_tables``; both backends
create them) so that answers and the batches that will bring them are in one place, shared by every
run that shares the ledger, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from distillset.teacher.batch.lines import BatchLine
from distillset.teacher.ledger import Ledger, LedgerSession

OPEN_STATES = ("intent", "uploaded", "submitted")
# A batch leases its lines' keys (``distillset.teacher.leases``) for its 24-hour completion window
# plus an hour to ingest, so an online run of the same teacher waits for the batch's answer instead
# of paying for it again. The lease's owner names the batch, not a process: a killed run leaves its
# batch running at the provider, and the next run ingests it, so the lease must outlive the process.
BATCH_LEASE_S = 25 * 3600
_LEASE_OWNER_PREFIX = "batch|"


def batch_lease_owner(token: str) -> str:
    """The lease owner of a batch's lines (never judged gone by ``leases.owner_is_gone``)."""
    return f"{_LEASE_OWNER_PREFIX}{token}"


_CHUNK = 900
_OPEN_MARKS = ", ".join("?" * len(OPEN_STATES))


@dataclass(frozen=True)
class BatchRecord:
    """One batch as the ledger knows it."""

    token: str
    model: str
    origin: str
    endpoint: str
    state: str
    input_file_id: str | None
    batch_id: str | None
    provider_status: str | None
    lines: int
    bytes: int
    run_id: str | None
    created_at: float


_BATCH_COLUMNS = list(BatchRecord.__dataclass_fields__)


@dataclass(frozen=True)
class KeyHistory:
    """What the batches did with one request key so far."""

    in_flight: bool = False
    """A line of an unfinished batch holds it: never plan it again."""
    failed_attempts: int = 0
    """Lines of finished batches that failed or expired."""
    last_error: str | None = None
    answered: bool = False
    """A batch answered it."""


class BatchStore:
    """Reads and writes the batch tables of ``ledger`` (one short transaction per change)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def record_intent(
        self, token: str, lines: list[BatchLine], *, model: str, origin: str, endpoint: str, run_id: str | None
    ) -> list[BatchLine]:
        """Record a batch and its lines before anything is uploaded (state ``intent``).

        In the same write transaction, lines whose key is answered already, pending in another
        open batch, or leased by a live online worker are left out (another run planned or is paying
        for them): two runs never both pay for a request. The lines kept are leased to the batch
        (``BATCH_LEASE_S``) until it is finished. Returns the lines recorded (none: no batch recorded).
        """
        now = time.time()

        def record(session: LedgerSession) -> list[BatchLine]:
            taken = set()
            keys = [line.key for line in lines]
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                taken.update(
                    row[0]
                    for row in session.execute(
                        f"SELECT request_hash FROM answers WHERE origin = ? AND request_hash IN ({marks}) "
                        "UNION SELECT l.request_hash FROM batch_lines l JOIN batches b ON b.token = l.token "
                        f"WHERE l.origin = ? AND l.state = 'pending' AND b.state IN ({_OPEN_MARKS}) "
                        f"AND l.request_hash IN ({marks}) "
                        "UNION SELECT request_hash FROM leases WHERE origin = ? AND expires_at > ? "
                        f"AND request_hash IN ({marks})",
                        [origin, *chunk, origin, *OPEN_STATES, *chunk, origin, now, *chunk],
                    )
                )
            candidates = [line for line in lines if line.key not in taken]
            # The lease is what makes planning exclusive: on PostgreSQL two transactions may both
            # have found a key free above, but only one takes its lease (the other's upsert waits
            # for the first to commit, then finds a live lease and returns nothing).
            owner = batch_lease_owner(token)
            leased = _take_leases(session, sorted(line.key for line in candidates), origin, owner, now)
            # An online worker may have committed an answer (and dropped its lease) meanwhile.
            answered = _answered(session, sorted(leased), origin)
            if answered:
                session.executemany(
                    "DELETE FROM leases WHERE request_hash = ? AND origin = ? AND owner = ?",
                    [(key, origin, owner) for key in sorted(answered)],
                )
            kept = [line for line in candidates if line.key in leased and line.key not in answered]
            if not kept:
                return []
            size = sum(len(line.encode()) for line in kept)
            session.execute(
                f"INSERT INTO batches ({', '.join(_BATCH_COLUMNS)}, updated_at) VALUES "
                f"({', '.join('?' * (len(_BATCH_COLUMNS) + 1))})",
                [token, model, origin, endpoint, "intent", None, None, None, len(kept), size, run_id, now, now],
            )
            session.executemany(
                "INSERT INTO batch_lines (token, request_hash, origin, messages_json, sampling_json, state) "
                "VALUES (?, ?, ?, ?, ?, 'pending')",
                [(token, line.key, origin, line.messages_json, line.sampling_json) for line in kept],
            )
            return kept

        return self.ledger.transaction("record a batch", record)

    def lease_open_lines(self) -> int:
        """Lease every pending line of an open batch to its batch (after ``distillset ledger import``).

        A key someone already holds keeps its lease. Returns how many leases were taken.
        """
        now = time.time()

        def lease(session: LedgerSession) -> int:
            rows = session.execute(
                "SELECT l.request_hash, l.origin, l.token, b.created_at FROM batch_lines l "
                f"JOIN batches b ON b.token = l.token WHERE l.state = 'pending' AND b.state IN ({_OPEN_MARKS})",
                list(OPEN_STATES),
            )
            return session.executemany(
                "INSERT INTO leases (request_hash, origin, owner, claimed_at, expires_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (request_hash, origin) DO NOTHING",
                sorted(
                    (key, origin, batch_lease_owner(token), now, created + BATCH_LEASE_S)
                    for key, origin, token, created in rows
                    if created + BATCH_LEASE_S > now
                ),
            )

        return self.ledger.transaction("lease the open batches' lines", lease)

    def set_uploaded(self, token: str, input_file_id: str) -> None:
        self._update(token, state="uploaded", input_file_id=input_file_id)

    def set_submitted(self, token: str, batch_id: str, status: str | None) -> None:
        self._update(token, state="submitted", batch_id=batch_id, provider_status=status)

    def set_provider_status(self, token: str, status: str) -> None:
        self._update(token, provider_status=status)

    def finish(self, token: str, outcomes: dict[str, tuple[str, str | None]], provider_status: str) -> None:
        """Close a batch: every line's outcome (state, error), the batch ``finished`` and its leases
        released (a failed line's key may be paid again at once), in one transaction."""
        rows = [(state, error, token, key) for key, (state, error) in outcomes.items()]

        def close(session: LedgerSession) -> None:
            sql = "UPDATE batch_lines SET state = ?, error = ? WHERE token = ? AND request_hash = ?"
            session.executemany(sql, rows)
            session.execute(
                "UPDATE batches SET state = 'finished', provider_status = ?, updated_at = ? WHERE token = ?",
                [provider_status, time.time(), token],
            )
            session.execute("DELETE FROM leases WHERE owner = ?", [batch_lease_owner(token)])

        self.ledger.transaction("finish a batch", close)

    def _update(self, token: str, **values) -> None:
        assignments = ", ".join(f"{name} = ?" for name in values)
        sql = f"UPDATE batches SET {assignments}, updated_at = ? WHERE token = ?"
        params = [*values.values(), time.time(), token]
        self.ledger.transaction("update a batch", lambda session: session.execute(sql, params))

    # ----- reading -----
    def get(self, token: str) -> BatchRecord | None:
        rows = self.ledger.query(f"SELECT {', '.join(_BATCH_COLUMNS)} FROM batches WHERE token = ?", [token])
        return BatchRecord(*rows[0]) if rows else None

    def open_batches(self, *, model: str | None = None, origin: str | None = None) -> list[BatchRecord]:
        """Batches not yet ingested (oldest first), of one model and origin if given."""
        sql = f"SELECT {', '.join(_BATCH_COLUMNS)} FROM batches WHERE state IN ({', '.join('?' * len(OPEN_STATES))})"
        params: list = list(OPEN_STATES)
        if model is not None:
            sql += " AND model = ?"
            params.append(model)
        if origin is not None:
            sql += " AND origin = ?"
            params.append(origin)
        return [BatchRecord(*row) for row in self.ledger.query(sql + " ORDER BY created_at", params)]

    def all_batches(self) -> list[BatchRecord]:
        rows = self.ledger.query(f"SELECT {', '.join(_BATCH_COLUMNS)} FROM batches ORDER BY created_at")
        return [BatchRecord(*row) for row in rows]

    def lines_of(self, token: str) -> list[tuple[str, str, str, str]]:
        """(request hash, messages json, sampling json, state) of a batch's lines, in upload order."""
        return [
            tuple(row)
            for row in self.ledger.query(
                "SELECT request_hash, messages_json, sampling_json, state FROM batch_lines "
                f"WHERE token = ? ORDER BY {self.ledger.insertion_order}",
                [token],
            )
        ]

    def line_counts(self, tokens: Iterable[str]) -> dict[str, int]:
        """Lines per state over ``tokens``' batches."""
        counts: dict[str, int] = {}
        wanted = list(tokens)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            for state, count in self.ledger.query(
                f"SELECT state, COUNT(*) FROM batch_lines WHERE token IN ({', '.join('?' * len(chunk))}) "
                "GROUP BY state",
                chunk,
            ):
                counts[state] = counts.get(state, 0) + count
        return counts

    def history(self, keys: Iterable[str], origin: str) -> dict[str, KeyHistory]:
        """What the batches did with each of ``keys`` (keys no batch has seen are absent)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, KeyHistory] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows = self.ledger.query(
                "SELECT l.request_hash, l.state, l.error, b.state "
                "FROM batch_lines l JOIN batches b ON b.token = l.token "
                f"WHERE l.origin = ? AND l.request_hash IN ({', '.join('?' * len(chunk))}) "
                f"ORDER BY l.{self.ledger.insertion_order}",
                [origin, *chunk],
            )
            for key, line_state, error, batch_state in rows:
                seen = found.get(key, KeyHistory())
                found[key] = KeyHistory(
                    in_flight=seen.in_flight or (batch_state in OPEN_STATES and line_state == "pending"),
                    failed_attempts=seen.failed_attempts + (line_state in ("failed", "expired")),
                    last_error=error if line_state in ("failed", "expired") else seen.last_error,
                    answered=seen.answered or line_state == "answered",
                )
        return found


# Keys leased per statement: 5 parameters each, well under SQLite's limit of bound parameters.
_LEASE_CHUNK = 400


def _take_leases(session: LedgerSession, keys: list[str], origin: str, owner: str, now: float) -> set[str]:
    """Lease ``keys`` (sorted: two writers lock rows in one order) to ``owner`` where no live lease
    is held; returns the keys leased."""
    leased: set[str] = set()
    for start in range(0, len(keys), _LEASE_CHUNK):
        chunk = keys[start : start + _LEASE_CHUNK]
        values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
        rows = session.execute(
            f"INSERT INTO leases (request_hash, origin, owner, claimed_at, expires_at) VALUES {values} "
            "ON CONFLICT (request_hash, origin) DO UPDATE SET owner = excluded.owner, "
            "claimed_at = excluded.claimed_at, expires_at = excluded.expires_at "
            "WHERE leases.expires_at <= excluded.claimed_at RETURNING request_hash",
            [value for key in chunk for value in (key, origin, owner, now, now + BATCH_LEASE_S)],
        )
        leased.update(row[0] for row in rows)
    return leased


def _answered(session: LedgerSession, keys: list[str], origin: str) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        rows = session.execute(
            f"SELECT request_hash FROM answers WHERE origin = ? AND request_hash IN ({', '.join('?' * len(chunk))})",
            [origin, *chunk],
        )
        found.update(row[0] for row in rows)
    return found
