"""Request leases (issue 14): two workers on one ledger never pay for one key twice.

Two ``generate`` calls started together on one ledger (two Ledger objects, as two processes would
hold) pay each request once between them; a key leased by a worker that died is taken over once
its lease expires; a committed answer ends its lease; a released lease frees the key at once.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from distillset.settings import TeacherSettings
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.generate import generate
from distillset.teacher.leases import Leases, lease_owner, owner_is_gone
from distillset.teacher.ledger import Ledger, LedgerAnswer
from distillset.teacher.retry import RetryPolicy
from distillset.teacher.rows import Conversation
from helpers.ledger import ledger_answer

FAST_RETRIES = RetryPolicy(base_s=0.005, cap_s=0.02)


def _answer(key: str, origin: str = "simulated") -> LedgerAnswer:
    return ledger_answer(key, simulated=True, origin=origin)


def test_a_live_lease_is_held_an_answer_ends_it(ledger_location, tmp_path):
    first, second = Ledger(ledger_location), Ledger(ledger_location)
    assert first.claim("k", "simulated", "A", 60).claimed
    assert first.claim("k", "simulated", "A", 60).claimed  # its owner renews it
    held = second.claim("k", "simulated", "B", 60)
    assert not held.claimed and held.owner == "A" and held.expires_at > time.time() + 50
    assert second.claim("k", "remote", "B", 60).claimed  # another origin is another key
    with first.writer(run_id="r", lease_owner="A") as writer:
        writer.add_answer(_answer("k"))
    found = second.claim("k", "simulated", "B", 60)
    assert found.answer is not None and found.answer.content == "answer to k"
    assert [lease[:3] for lease in second.leases()] == [("k", "remote", "B")]


def test_an_expired_lease_is_taken_over_a_released_one_at_once(ledger_location, tmp_path):
    ledger = Ledger(ledger_location)
    # Both ledgers are open before the claim, and the lease outlives a stall of the loaded CI box
    # between the claim and the first look (opening a PostgreSQL pool took longer than 0.3 s there).
    leases = Leases(Ledger(ledger_location), "B", 60)
    started = time.monotonic()
    assert ledger.claim("k", "simulated", "dead", 1.5).claimed
    assert asyncio.run(leases.acquire("k", "simulated")) is None  # claimed after the expiry
    assert 1.4 <= time.monotonic() - started < 10
    assert leases.stats.waits == 1 and leases.stats.takeovers == 1
    assert ledger.leases()[0][2] == "B"
    assert leases.release_all() == 1 and ledger.leases() == []
    # A failure the owner commits frees its key too.
    assert ledger.claim("f", "simulated", "A", 60).claimed
    with ledger.writer(run_id="r", lease_owner="A") as writer:
        writer.add_failure("f", "m", "HTTP 400", origin="simulated")
    assert ledger.leases() == []


def test_a_waiting_worker_reuses_the_answer_of_the_lease_holder(ledger_location, tmp_path):
    ledger = Ledger(ledger_location)
    assert ledger.claim("k", "simulated", "A", 60).claimed
    leases = Leases(Ledger(ledger_location), "B", 60)

    def answer_later():
        time.sleep(0.3)
        with ledger.writer(run_id="r", lease_owner="A") as writer:
            writer.add_answer(_answer("k"))

    thread = threading.Thread(target=answer_later)
    thread.start()
    found = asyncio.run(leases.acquire("k", "simulated"))
    thread.join()
    assert found is not None and found.content == "answer to k"
    assert leases.stats.answers_from_others == 1 and leases.stats.takeovers == 0


def _conversations(n: int) -> list[Conversation]:
    return [Conversation(prompt_id=f"p{i}", system=None, turns=[f"Describe river number {i}."]) for i in range(n)]


@pytest.mark.parametrize("concurrency", [4, 16])
def test_two_runs_started_together_pay_each_request_once(ledger_location, tmp_path, concurrency):
    path = ledger_location
    Ledger(path)  # created once: two first opens at the same instant may race on switching to WAL
    convs = _conversations(60)
    settings = TeacherSettings(max_concurrency=concurrency)
    results = {}
    with TeacherSimulator(latency_s=0.02) as sim:
        endpoint = TeacherEndpoint(base_url=sim.base_url, api_key=None, simulated=True)
        barrier = threading.Barrier(2)

        def run(name: str) -> None:
            ledger = Ledger(path)  # its own connections, as another process would have
            barrier.wait(timeout=60)  # a thread that failed before it breaks the barrier: no hang
            results[name] = generate(convs, settings, endpoint, ledger, run_id=name, retry_policy=FAST_RETRIES)

        threads = [threading.Thread(target=run, args=(name,)) for name in ("one", "two")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not any(thread.is_alive() for thread in threads), "a run did not finish within 300 s"
        completions = sim.stats()["completions_by_hash"]
    assert sum(completions.values()) == len(convs)
    assert all(count == 1 for count in completions.values())
    assert results["one"].stats.requests_paid + results["two"].stats.requests_paid == len(convs)
    for result in results.values():
        assert result.generations["status"].to_list() == ["ok"] * len(convs)
    assert results["one"].generations["response"].to_list() == results["two"].generations["response"].to_list()
    assert Ledger(path).leases() == []  # both runs ended: no key stays claimed
    waited = results["one"].leases.waits + results["two"].leases.waits
    assert waited > 0  # they really did meet on keys


def test_a_lease_of_a_dead_local_process_is_taken_over_at_once(ledger_location, tmp_path):
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdout.write(open('/proc/self/stat').read())"],
        stdout=subprocess.PIPE,
        text=True,
    )
    stat = child.communicate()[0]
    start = stat.rsplit(")", 1)[1].split()[19]
    dead = f"{socket.gethostname()}|{child.pid}|{start}|run|abcd"  # the owner id its lease_owner gave
    alive = lease_owner("other")
    assert owner_is_gone(dead) and not owner_is_gone(alive)
    assert not owner_is_gone(f"another-host|{child.pid}|{start}|run|abcd"), "other machines wait for expiry"
    ledger = Ledger(ledger_location)
    assert ledger.claim("k", "simulated", dead, 3600).claimed
    leases = Leases(Ledger(ledger_location), "B", 60)
    started = time.monotonic()
    assert asyncio.run(leases.acquire("k", "simulated")) is None
    assert time.monotonic() - started < 2 and leases.stats.takeovers == 1


def test_runs_opening_a_new_ledger_at_the_same_instant_all_succeed(tmp_path):
    # Switching a fresh file to WAL takes an exclusive lock without SQLite's busy handler: before
    # the retry, about one round in twenty failed with "database is locked".
    errors = []
    for round_index in range(60):
        path = tmp_path / f"round{round_index}" / "ledger.sqlite"
        barrier = threading.Barrier(6)

        def open_it(path=path, barrier=barrier):
            barrier.wait(timeout=60)
            try:
                Ledger(path)
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(repr(exc))

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert errors == []


def test_a_run_that_ended_without_releasing_does_not_block_a_later_run_of_the_same_process(ledger_location, tmp_path):
    """A full disk can stop a run before it releases its leases; the process lives on (a test, a
    Dagster worker running the next step), and a later run must take those keys at once, not wait
    the whole lease out."""

    class FullDiskLedger(Ledger):
        def release(self, owner, keys=None):  # the release cannot be written: the disk is full
            raise RuntimeError("no space left on device")

    ledger = FullDiskLedger(ledger_location)
    ended = lease_owner("ended")
    assert ledger.claim("k", "simulated", ended, 1800.0).claimed
    assert not owner_is_gone(ended)  # its run is still going: others wait for it
    with pytest.raises(RuntimeError, match="no space left"):
        Leases(ledger, ended, 1800.0).release_all()
    assert owner_is_gone(ended)  # ended in this live process: its leases are taken over at once
    assert not owner_is_gone(lease_owner("later"))


def test_claiming_many_keys_at_once_keeps_their_order_and_each_ones_state(ledger_location):
    ledger = Ledger(ledger_location)
    with ledger.writer(run_id="r") as writer:
        writer.add_answer(_answer("answered"))
    assert ledger.claim("held", "simulated", "A", 60).claimed
    # More keys than one statement takes, an answered one, another owner's, and a repeat.
    keys = [(f"k{i}", "simulated") for i in range(900)]
    keys += [("answered", "simulated"), ("held", "simulated"), ("k5", "simulated")]
    claims = Ledger(ledger_location).claim_many(keys, "B", 60)
    assert len(claims) == len(keys)
    assert all(claim.claimed for claim in claims[:900]) and claims[-1].claimed
    assert claims[900].answer is not None and claims[900].answer.content == "answer to answered"
    assert not claims[901].claimed and claims[901].owner == "A" and claims[901].answer is None
    owners = {}
    for key, _origin, owner, _expires in ledger.leases():
        owners[key] = owner
    assert len(owners) == 901 and owners["held"] == "A" and owners["k899"] == "B"


def test_a_run_claims_ahead_only_a_bounded_window_of_keys(ledger_location, tmp_path):
    # The producer claims the next prompts' keys before the workers take them (no claim wait per
    # request), but never far ahead: at most 1.5x the concurrency beyond the requests in flight, so
    # a killed run leaves few keys for other runs to wait on.
    concurrency = 8
    convs = _conversations(120)
    settings = TeacherSettings(max_concurrency=concurrency)
    observed: list[int] = []
    done = threading.Event()

    def watch() -> None:
        watcher = Ledger(ledger_location)
        while not done.is_set():
            observed.append(len(watcher.leases()))
            time.sleep(0.005)

    with TeacherSimulator(latency_s=0.05) as sim:
        endpoint = TeacherEndpoint(base_url=sim.base_url, api_key=None, simulated=True)
        ledger = Ledger(ledger_location)
        thread = threading.Thread(target=watch)
        thread.start()
        try:
            result = generate(convs, settings, endpoint, ledger, retry_policy=FAST_RETRIES)
        finally:
            done.set()
            thread.join()
    assert result.stats.requests_paid == len(convs)
    assert result.leases.ahead > 0  # workers sent keys claimed ahead, without a claim of their own
    assert max(observed) > 0
    assert max(observed) <= concurrency + concurrency * 3 // 2
    assert Ledger(ledger_location).leases() == []


def test_repeated_prompts_across_claim_groups_are_paid_once(ledger_location, tmp_path):
    # A key claimed ahead for one prompt while an earlier copy is in flight or just answered must
    # not be paid again: only the first copy to reach the key uses the claim made ahead.
    convs = [Conversation(prompt_id=f"p{i}", system=None, turns=[f"Describe lake number {i % 7}."]) for i in range(90)]
    with TeacherSimulator(latency_s=0.02) as sim:
        endpoint = TeacherEndpoint(base_url=sim.base_url, api_key=None, simulated=True)
        result = generate(
            convs, TeacherSettings(max_concurrency=4), endpoint, Ledger(ledger_location), retry_policy=FAST_RETRIES
        )
        completions = sim.stats()["completions_by_hash"]
    assert sorted(completions.values()) == [1] * 7
    assert result.stats.requests_paid == 7
    assert result.generations["status"].to_list() == ["ok"] * len(convs)
    assert Ledger(ledger_location).leases() == []
