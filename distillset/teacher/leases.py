"""Request leases: one worker pays for a key, the others wait for its answer.

Within one process, identical requests already share one call (``generate``'s in-flight futures).
Across processes (two ``distillset run`` at once, a sensor run beside the nightly one, workers on
several machines sharing a ledger) the ledger's ``leases`` table does it: before paying, a worker
claims the key (``Ledger.claim``). When another owner holds a live lease, the worker polls the
ledger until that answer is committed (it reuses it), the lease is released (its owner failed or
stopped: the worker claims and pays), or the lease expires (its owner died: the worker takes it
over). After a ``kill -9`` only the requests that were in flight are paid again, once their leases
expire (``TEACHER_LEASE_S``); a lease whose owner was a process of this machine that is gone is
taken over at once (the owner id names the host, the pid and the process's start time).

A run's claims ride on its ledger writer's transactions (``LedgerWriter.submit_claim``), which
commit the answers that arrived and then claim the keys asked for since the last round, on one
connection (two transactions, see ``LedgerWriter._commit``): on the event loop's thread for a
SQLite ledger (local statements, never waiting for another process's lock: the writer's thread
does that), on the writer's thread for PostgreSQL (round trips), never blocking the loop. So a
run's own writes never wait for each other's locks, and 64 requests in flight cost a few commits,
not 64. ``generate`` claims most keys ahead
(``Leases.submit_many``, a group of prompts per transaction, at most 1.5x the concurrency beyond
the requests in flight) so that a request does not wait for a claim of its own; ``acquire`` is the
path for the rest (later turns, duplicates, keys another owner holds).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from dataclasses import dataclass

from distillset.teacher.ledger import LeaseClaim, Ledger, LedgerAnswer, LedgerWriter

# At most this many keys are claimed in one transaction.
MAX_CLAIM_BATCH = 512
# Polling starts fast (an answer usually lands within a request's latency) and slows down for
# long waits, so a hundred waiting keys cost a few queries a second, not thousands.
FIRST_POLL_S = 0.05
MAX_POLL_S = 2.0


HOST = socket.gethostname()


def _started(pid: int) -> str | None:
    """A process's start time (clock ticks since boot, Linux), ``-`` where /proc cannot tell, None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            # The command name is in parentheses and may hold spaces: count fields after it.
            return handle.read().rsplit(b")", 1)[1].split()[19].decode()
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return None
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return "-"


# The owners of this process whose runs have not ended. A run that ended without releasing its
# leases (its release could not be written, on a full disk say) leaves them behind in a process that
# is still alive; a later run in the same process must not wait the whole lease for them.
_LIVE_OWNERS: set[str] = set()


def lease_owner(run_id: str) -> str:
    """An owner id naming the machine, the process (pid and start time) and the run.

    Readable in the ``leases`` table, and enough for ``owner_is_gone`` to tell a dead local owner.
    The owner counts as live in this process until ``Leases.release_all`` ends its run.
    """
    pid = os.getpid()
    owner = f"{HOST}|{pid}|{_started(pid)}|{run_id}|{uuid.uuid4().hex[:8]}"
    _LIVE_OWNERS.add(owner)
    return owner


def owner_is_gone(owner: str) -> bool:
    """The owner was a process of this machine that has ended (its pid is gone or now another process's).

    Owners on other machines are never judged: only their lease's expiry frees their keys.
    """
    parts = owner.split("|")
    if len(parts) != 5 or parts[0] != HOST or not parts[1].isdigit():
        return False
    if int(parts[1]) == os.getpid() and parts[2] == _started(os.getpid()):
        return owner not in _LIVE_OWNERS  # this very process: an ended run of it is gone
    return _started(int(parts[1])) != parts[2]


@dataclass
class LeaseStats:
    """What leasing cost one run: for the run's metadata and the benchmark."""

    claims: int = 0
    """Keys claimed (one per key paid or found, plus one per poll while waiting)."""
    transactions: int = 0
    """Claims made in a transaction of their own (no writer attached); the others share the writer's."""
    claim_s: float = 0.0
    """Seconds spent waiting for claims, summed (the lease overhead): a worker's own, or the producer's
    for the keys it claims ahead (``ahead``)."""
    ahead: int = 0
    """Keys claimed ahead by ``generate``'s producer and paid by a worker without a claim of its own."""
    waits: int = 0
    """Keys another worker was paying for when this one needed them."""
    answers_from_others: int = 0
    """Of those, answered by the other worker (nothing paid here)."""
    takeovers: int = 0
    """Keys whose lease expired or was released while waiting, then claimed here."""


def _settle(future: asyncio.Future, result: list[LeaseClaim] | None, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
        # Marked retrieved: a claim made ahead may have no awaiter left once the stage stops, and the
        # writer raises this same error to the stage itself (add/flush/close). Awaiting still raises.
        future.exception()
    else:
        future.set_result(result)


class Leases:
    """The leases of one run on one ledger."""

    def __init__(self, ledger: Ledger, owner: str, lease_s: float) -> None:
        self.ledger = ledger
        self.owner = owner
        self.lease_s = lease_s
        self.stats = LeaseStats()
        self.writer: LedgerWriter | None = None
        """The run's ledger writer, once open: claims then ride on its transactions."""

    async def _claim(self, key: str, origin: str) -> LeaseClaim:
        return (await self.claim_many([key], origin))[0]

    async def claim_many(self, keys: list[str], origin: str) -> list[LeaseClaim]:
        """Claim ``keys`` (of ``origin``) in one transaction; the claims, in order."""
        started = time.perf_counter()
        try:
            return await self.submit_many(keys, origin)
        finally:
            self.stats.claim_s += time.perf_counter() - started

    def submit_many(self, keys: list[str], origin: str) -> asyncio.Future:
        """Start claiming ``keys`` in one transaction; the future's result is their claims, in order.

        One wake-up of the event loop for all of them: ``generate``'s producer claims the next few
        prompts' first keys this way before handing them to the workers, so a worker does not wait
        for a claim of its own before each request.
        """
        self.stats.claims += len(keys)
        if self.writer is None:
            self.stats.transactions += 1
            return asyncio.ensure_future(
                asyncio.to_thread(self.ledger.claim_many, [(key, origin) for key in keys], self.owner, self.lease_s)
            )
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def done(claims: list[LeaseClaim] | None, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, future, claims, error)

        self.writer.submit_claims([(key, origin) for key in keys], self.lease_s, done)
        return future

    async def acquire(self, key: str, origin: str) -> LedgerAnswer | None:
        """The committed answer to ``key`` (pay nothing), or None once this run holds its lease (pay).

        Waits while another owner holds a live lease on the key.
        """
        claim = await self._claim(key, origin)
        if claim.answer is not None:
            return claim.answer
        if not claim.claimed:
            self.stats.waits += 1
            delay = FIRST_POLL_S
            while not claim.claimed:
                if owner_is_gone(claim.owner):
                    # Killed on this machine: its request died with it, nobody will answer.
                    await asyncio.to_thread(self.ledger.expire, key, origin, claim.owner)
                else:
                    # Never sleep past the lease's expiry: a dead owner's key is taken over promptly.
                    await asyncio.sleep(max(0.0, min(delay, claim.expires_at - time.time() + 0.01)))
                    delay = min(delay * 2, MAX_POLL_S)
                claim = await self._claim(key, origin)
                if claim.answer is not None:
                    self.stats.answers_from_others += 1
                    return claim.answer
            self.stats.takeovers += 1
        # Held now: committing the answer (or the failure) to the ledger frees the key.
        return None

    def release_all(self) -> int:
        """Release every lease this run still holds (called when the run ends, however it ends).

        Answers already handed to the writer must be committed first (close the writer before), or a
        waiting worker could claim a key whose answer is about to land.
        """
        self.writer = None
        _LIVE_OWNERS.discard(self.owner)  # ended, even if the release below cannot be written
        return self.ledger.release(self.owner)
