"""The ledger writer on an event loop (``Ledger.writer(loop=...)``, what ``generate`` uses).

A SQLite ledger is committed on the loop's own thread, once per loop iteration; when another
process holds the write lock the loop does not wait for it (the writer's thread commits once the
lock is free), and claims asked for meanwhile are granted then, not failed. PostgreSQL keeps the
thread. A full ledger scan per claim is gone: a claim on a big ledger reads only its keys.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time

from distillset.teacher.ledger import Ledger, LedgerAnswer, _claim_rows
from distillset.teacher.ledger_sqlite import SQLiteBackend
from helpers.ledger import ledger_answer


@functools.cache  # one record per i: equal wherever it is compared
def _answer(i: int) -> LedgerAnswer:
    return ledger_answer(f"{i:064x}", content=f"answer {i}")


async def _iterations(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def _claim(writer, keys: list[tuple[str, str]]) -> asyncio.Future:
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def done(claims, error) -> None:
        loop.call_soon_threadsafe(lambda: future.set_exception(error) if error else future.set_result(claims))

    writer.submit_claims(keys, 60.0, done)
    return future


def test_on_a_loop_answers_are_committed_by_the_next_iteration(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    reader = Ledger(tmp_path / "ledger.sqlite")  # another connection, as another process reads

    async def main() -> None:
        # A flush interval of an hour: only the loop's own commit can make the answer visible.
        with ledger.writer(
            run_id="r", batch_size=1, flush_interval_s=3600, lease_owner="me", loop=asyncio.get_running_loop()
        ) as w:
            w.add_answer(_answer(1))
            w.add_answer(_answer(2))
            await _iterations(2)
            assert reader.get(_answer(1).request_hash) is not None
            assert reader.get(_answer(2).request_hash) is not None
            assert w.transactions == 1  # both answers of one iteration in one transaction
            claims = await asyncio.wait_for(_claim(w, [(_answer(3).request_hash, "remote")]), 30)
            assert claims[0].claimed

    asyncio.run(main())
    assert ledger.count_answers() == 2


def test_on_a_loop_a_write_lock_held_elsewhere_is_waited_for_by_the_thread_not_the_loop(tmp_path):
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    reader = Ledger(path)
    key = _answer(1).request_hash

    async def main() -> None:
        with ledger.writer(
            run_id="r", batch_size=1, flush_interval_s=3600, lease_owner="me", loop=asyncio.get_running_loop()
        ) as w:
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # another process's write transaction
            try:
                w.add_answer(_answer(1))
                claim = _claim(w, [(_answer(2).request_hash, "remote")])
                # The loop keeps running (it would hang here for the busy timeout if it waited).
                await _iterations(5)
                assert reader.get(key) is None
                assert w.pending(key, "remote") == _answer(1)
                assert not claim.done()  # not failed: it waits for the lock like the answer
            finally:
                other.execute("ROLLBACK")
                other.close()
            claims = await asyncio.wait_for(claim, 60)
            assert claims[0].claimed
            deadline = time.monotonic() + 60
            while reader.get(key) is None and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert reader.get(key) is not None

    asyncio.run(main())
    assert [lease[0] for lease in ledger.leases()] == [_answer(2).request_hash]


def test_on_a_loop_either_backend_commits_answers_and_grants_claims(ledger_location):
    # PostgreSQL ignores the loop (every statement is a round trip): its thread commits.
    ledger = Ledger(ledger_location)

    async def main() -> None:
        with ledger.writer(run_id="r", batch_size=1, lease_owner="me", loop=asyncio.get_running_loop()) as w:
            w.add_answer(_answer(1))
            claims = await asyncio.wait_for(_claim(w, [(_answer(2).request_hash, "remote")]), 60)
            assert claims[0].claimed

    asyncio.run(main())
    assert ledger.get(_answer(1).request_hash) == _answer(1)
    assert ledger.claim(_answer(1).request_hash, "remote", "someone", 60).answer is not None


def test_a_claim_reads_only_its_keys_however_big_the_ledger(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with ledger.writer(run_id="r", batch_size=1000) as w:
        for i in range(2000):
            w.add_answer(_answer(i))
    con = sqlite3.connect(tmp_path / "ledger.sqlite")
    steps = []
    # SQLite's virtual-machine steps of the claim's statements: a scan of the answers table would
    # take thousands (one per row), an index search a few per key.
    con.set_progress_handler(lambda: steps.append(1), 100)
    backend = SQLiteBackend(tmp_path / "ledger.sqlite")
    con.execute("BEGIN IMMEDIATE")
    claims = _claim_rows(backend, con, [(_answer(5).request_hash, "remote"), ("f" * 64, "remote")], "me", 60)
    con.execute("COMMIT")
    assert claims[0].answer == _answer(5)
    assert claims[1].claimed
    assert len(steps) < 20, f"{len(steps) * 100} VM steps for a claim of two keys on a 2,000-answer ledger"
