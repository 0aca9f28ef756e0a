"""Batch mode against the simulator's Batch API, over real HTTP through the openai SDK.

It protects: every prompt answered through batches with no online call, under the same ledger
keys as online answers (a batch answer satisfies a later online run and the reverse); batches split
within TEACHER_BATCH_MAX_REQUESTS / _MAX_BYTES; failed and expired lines resubmitted once (or sent
online with TEACHER_BATCH_FALLBACK=online), completed lines never; a crash between upload and create
adopted from the provider's batch list instead of submitted twice; a kill -9 while waiting, then a
rerun, submitting nothing twice; multi-turn turns and best-of-N rounds in later batches; the
progress line and the cost at TEACHER_BATCH_PRICE_FACTOR.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from distillset.settings import TeacherSettings
from distillset.simulator.batch import BatchFaults
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.batch.lines import BatchLine, split_lines
from distillset.teacher.batch.run import batch_client, generate_with_batches, run_batches
from distillset.teacher.batch.store import BatchStore
from distillset.teacher.batch.submit import MODEL_KEY, TOKEN_KEY, new_token
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.generate import generate
from distillset.teacher.ledger import Ledger
from distillset.teacher.retry import RetryPolicy
from distillset.teacher.rows import Conversation
from distillset.verify.task import VerifiableTask
from helpers.paths import PROJECT

FAST_RETRIES = RetryPolicy(base_s=0.005, cap_s=0.02)
BATCH = TeacherSettings(batch=True, batch_poll_s=0.01)


def conversations(n: int) -> list[Conversation]:
    return [
        Conversation(prompt_id=f"p{i}", system=None, turns=[f"Explain topic number {i} about bees and honey."])
        for i in range(n)
    ]


def _endpoint(sim: TeacherSimulator) -> TeacherEndpoint:
    return TeacherEndpoint(base_url=sim.base_url, api_key=None, simulated=True)


def _batch_run(convs, settings, sim, ledger, **kwargs):
    return generate_with_batches(convs, settings, _endpoint(sim), ledger, retry_policy=FAST_RETRIES, **kwargs)


@pytest.fixture()
def sim():
    with TeacherSimulator() as simulator:
        yield simulator


@pytest.fixture()
def ledger(ledger_location):
    """Each test once on a SQLite ledger and once on a fresh PostgreSQL database (tests/helpers/postgres.py)."""
    return Ledger(ledger_location)


def test_every_prompt_is_answered_through_batches_and_none_online(sim, ledger):
    progress = []
    out = _batch_run(conversations(7), BATCH, sim, ledger, on_batch_progress=progress.append)
    frame = out.result.generations
    assert frame["status"].to_list() == ["ok"] * 7
    assert sim.stats()["completions"] == 0, "batch mode sent an online request"
    assert sim.batches.stats()["lines_answered"] == 7
    assert out.result.stats.batch_answers == 7
    assert out.result.stats.requests_paid == 7 and out.result.stats.cache_hits == 0
    assert "7/7 lines done" in str(progress[-1])
    # The same keys as online answers: a later online run pays nothing.
    again = generate(conversations(7), TeacherSettings(), _endpoint(sim), ledger, retry_policy=FAST_RETRIES)
    assert again.stats.requests_paid == 0 and again.stats.cache_hits == 7
    assert sim.stats()["completions"] == 0


def test_online_answers_satisfy_a_batch_run(sim, ledger):
    generate(conversations(4), TeacherSettings(), _endpoint(sim), ledger, retry_policy=FAST_RETRIES)
    out = _batch_run(conversations(5), BATCH, sim, ledger)
    assert sim.batches.stats()["batches"] == 1
    assert sim.batches.stats()["lines_answered"] == 1, "a batch re-asked an answered request"
    assert out.result.generations["status"].to_list() == ["ok"] * 5


def test_batches_are_split_by_lines_and_bytes(sim, ledger):
    out = _batch_run(conversations(7), BATCH.with_overrides(batch_max_requests=3), sim, ledger)
    assert [b["request_counts"]["total"] for b in sim.batches.created()] == [3, 3, 1]
    assert out.batches.submitted_batches == 3
    lines = [BatchLine(f"k{i}", "m", [{"role": "user", "content": "x" * 100}], {}) for i in range(5)]
    size = len(lines[0].encode())
    batches, too_large = split_lines(lines, max_requests=100, max_bytes=2 * size)
    assert [len(b) for b in batches] == [2, 2, 1] and not too_large
    big = BatchLine("big", "m", [{"role": "user", "content": "y" * 10_000}], {})
    batches, too_large = split_lines([big, *lines[:1]], max_requests=100, max_bytes=2 * size)
    assert [line.key for line, _ in too_large] == ["big"] and "TEACHER_BATCH_MAX_BYTES" in too_large[0][1]


def test_failed_lines_are_resubmitted_once_and_completed_lines_never(ledger):
    faults = BatchFaults(line_failure_rate=0.5, failing_attempts=1)
    with TeacherSimulator(batch_faults=faults) as sim:
        out = _batch_run(conversations(12), BATCH, sim, ledger)
        stats = sim.batches.stats()
        created = sim.batches.created()
    failed_first = created[0]["request_counts"]["failed"]
    assert 0 < failed_first < 12
    assert len(created) == 2 and created[1]["request_counts"]["total"] == failed_first
    assert all(count == 1 for count in stats["answered_by_hash"].values()), "a completed line was asked again"
    assert out.result.generations["status"].to_list() == ["ok"] * 12
    assert sim.stats()["completions"] == 0


def test_lines_failing_twice_fail_their_rows_without_an_online_call(ledger):
    faults = BatchFaults(line_failure_rate=1.0, failing_attempts=5)
    with TeacherSimulator(batch_faults=faults) as sim:
        out = _batch_run(conversations(3), BATCH, sim, ledger)
        assert len(sim.batches.created()) == 2, "failed lines must be resubmitted exactly once"
        assert sim.stats()["completions"] == 0
    frame = out.result.generations
    assert frame["status"].to_list() == ["failed"] * 3
    assert all("not answered through the Batch API" in e and "HTTP 500" in e for e in frame["error"].to_list())


def test_fallback_online_sends_failed_lines_online_once(ledger):
    faults = BatchFaults(line_failure_rate=1.0, failing_attempts=5)
    with TeacherSimulator(batch_faults=faults) as sim:
        out = _batch_run(conversations(3), BATCH.with_overrides(batch_fallback="online"), sim, ledger)
        assert len(sim.batches.created()) == 1
        assert sim.stats()["completions"] == 3
    assert out.result.generations["status"].to_list() == ["ok"] * 3


def test_expired_lines_are_resubmitted(ledger):
    with TeacherSimulator(batch_faults=BatchFaults(expire_after_lines=2)) as sim:
        out = _batch_run(conversations(5), BATCH, sim, ledger)
        totals = [(b["status"], b["request_counts"]["total"]) for b in sim.batches.created()]
    # every batch expires after its first 2 lines: 5 -> 3 resubmitted once -> 1 left unanswered
    assert totals == [("expired", 5), ("expired", 3)]
    assert out.result.generations["status"].to_list().count("ok") == 4
    assert out.batches.ingested.expired == 4


def test_crash_between_upload_and_create_is_adopted_not_duplicated(sim, ledger):
    settings, endpoint = BATCH, _endpoint(sim)
    client = batch_client(endpoint)
    store = BatchStore(ledger)
    from distillset import ids

    messages = [{"role": "user", "content": conversations(1)[0].turns[0]}]
    key = ids.request_hash(settings.model, messages, settings.sample_params(0))
    line = BatchLine(key, settings.model, messages, settings.sample_params(0))
    token = new_token()
    store.record_intent(token, [line], model=settings.model, origin=endpoint.origin, endpoint="x", run_id="r1")
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(line.encode())), purpose="batch")
    store.set_uploaded(token, uploaded.id)
    # The provider created the batch, and the process died before its id reached the ledger.
    client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={TOKEN_KEY: token, MODEL_KEY: settings.model},
    )
    out = _batch_run(conversations(1), settings, sim, ledger)
    assert sim.batches.stats()["batches"] == 1, "the crashed batch was submitted again instead of adopted"
    assert out.result.generations["status"].to_list() == ["ok"]
    assert store.get(token).state == "finished"


def test_an_intent_never_uploaded_is_submitted_once(sim, ledger):
    settings, endpoint = BATCH, _endpoint(sim)
    store = BatchStore(ledger)
    from distillset import ids

    messages = [{"role": "user", "content": conversations(1)[0].turns[0]}]
    key = ids.request_hash(settings.model, messages, settings.sample_params(0))
    token = new_token()
    store.record_intent(
        token,
        [BatchLine(key, settings.model, messages, settings.sample_params(0))],
        model=settings.model,
        origin=endpoint.origin,
        endpoint="x",
        run_id="r1",
    )
    out = _batch_run(conversations(2), settings, sim, ledger)
    assert [b["metadata"][TOKEN_KEY] == token for b in sim.batches.created()][0]
    assert sim.batches.stats()["lines_answered"] == 2
    assert out.result.generations["status"].to_list() == ["ok", "ok"]


def test_multi_turn_turns_go_into_later_batches(sim, ledger):
    convs = [Conversation(prompt_id="mt", system="Be brief.", turns=["Name a bee.", "Now a wasp.", "And an ant?"])]
    out = _batch_run(convs, BATCH, sim, ledger)
    assert [b["request_counts"]["total"] for b in sim.batches.created()] == [1, 1, 1]
    row = out.result.generations.row(0, named=True)
    assert row["status"] == "ok" and len(row["request_hashes"]) == 3
    assert sim.stats()["completions"] == 0


def test_best_of_n_samples_are_lines_and_early_stop_between_rounds(ledger):
    question = "What is 6 times 7?"
    convs = [
        Conversation(prompt_id="m", system=None, turns=[question], task=VerifiableTask(kind="math", reference="42"))
    ]
    settings = BATCH.with_overrides(samples_per_prompt=4, max_answers_per_prompt=1)
    with TeacherSimulator(answer_key={question: "42"}, accuracy=1.0) as sim:
        out = _batch_run(convs, settings, sim, ledger)
        created = sim.batches.created()
    # one sample per round (k=1 minus 0 passed); the first one is right: no second round
    assert [b["request_counts"]["total"] for b in created] == [1]
    assert out.result.generations.height == 1
    unverified = [Conversation(prompt_id="u", system=None, turns=["Describe a hive."])]
    with TeacherSimulator() as sim:
        _batch_run(unverified, settings, sim, ledger)
        assert [b["request_counts"]["total"] for b in sim.batches.created()] == [4]


def test_cost_uses_the_batch_price_factor(sim, ledger):
    settings = BATCH.with_overrides(price_input_per_mtok=2.0, price_output_per_mtok=4.0, batch_price_factor=0.5)
    out = _batch_run(conversations(3), settings, sim, ledger)
    answers = list(ledger.iter_answers())
    online = sum(a.prompt_tokens * 2.0 + a.completion_tokens * 4.0 for a in answers) / 1e6
    assert out.result.stats.batch_cost_usd == pytest.approx(online * 0.5)
    assert out.result.stats.estimated_cost_usd == pytest.approx(online * 0.5)
    assert "3 through provider batches" in out.result.stats.account()


def test_without_wait_the_batches_stay_pending_and_a_later_call_ingests(ledger):
    with TeacherSimulator(batch_faults=BatchFaults(delay_s=3600)) as sim:
        first = _batch_run(conversations(3), BATCH, sim, ledger, wait=False)
        assert first.pending and first.batches.pending_batches == 1
        second = _batch_run(conversations(3), BATCH, sim, ledger, wait=False)
        assert second.pending and sim.batches.stats()["batches"] == 1, "a pending batch was submitted again"
        sim.batches.faults.delay_s = 0
        third = _batch_run(conversations(3), BATCH, sim, ledger, wait=False)
        assert not third.pending
        assert third.result.generations["status"].to_list() == ["ok"] * 3
        assert sim.batches.stats()["batches"] == 1


_WORKER = textwrap.dedent(
    """
    import sys
    from distillset.settings import TeacherSettings
    from distillset.teacher.batch.run import generate_with_batches
    from distillset.teacher.endpoints import TeacherEndpoint
    from distillset.teacher.ledger import Ledger
    from distillset.teacher.rows import Conversation

    base_url, ledger_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    convs = [
        Conversation(prompt_id=f"p{i}", system=None, turns=[f"Explain topic number {i} about bees and honey."])
        for i in range(n)
    ]
    generate_with_batches(
        convs,
        TeacherSettings(batch=True, batch_poll_s=0.05),
        TeacherEndpoint(base_url=base_url, api_key=None, simulated=True),
        Ledger(ledger_path),
    )
    """
)


def test_kill_9_while_waiting_then_a_rerun_submits_nothing_twice(tmp_path):
    ledger_path = tmp_path / "ledger.sqlite"
    with TeacherSimulator(batch_faults=BatchFaults(delay_s=3600)) as sim:
        worker = subprocess.Popen(
            [sys.executable, "-c", _WORKER, sim.base_url, str(ledger_path), "6"],
            cwd=PROJECT,
            env={**os.environ, "PYTHONPATH": str(PROJECT)},
        )
        try:
            deadline = time.monotonic() + 120
            # wait on the condition: the batch is submitted and the worker is polling it
            while not any(b["status"] == "in_progress" for b in sim.batches.created()):
                assert worker.poll() is None, "the worker ended before waiting"
                assert time.monotonic() < deadline, "the worker never submitted its batch"
                time.sleep(0.05)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=60)
        assert sim.batches.stats()["batches"] == 1
        sim.batches.faults.delay_s = 0
        out = _batch_run(conversations(6), BATCH, sim, Ledger(ledger_path))
        assert sim.batches.stats()["batches"] == 1, "the rerun submitted the batch a second time"
        assert sim.stats()["completions"] == 0
        assert out.result.generations["status"].to_list() == ["ok"] * 6
        assert out.result.stats.batch_answers == 6


def test_run_batches_reports_pending_lines(ledger):
    with TeacherSimulator(batch_faults=BatchFaults(delay_s=3600)) as sim:
        result = run_batches(conversations(4), BATCH, _endpoint(sim), ledger, wait=False)
    assert result.pending_batches == 1 and result.pending_lines == 4


def test_a_budget_is_refused_in_batch_mode_before_anything_is_paid():
    from distillset.settings import SettingsError

    with pytest.raises(SettingsError, match="TEACHER_BATCH=true cannot honour TEACHER_BUDGET"):
        TeacherSettings(batch=True, budget_usd=5.0)


def test_an_endpoint_without_a_batch_api_fails_clearly(ledger):
    from distillset.teacher.batch.submit import BatchUnsupportedError

    plain = TeacherSimulator()
    plain.batches.add_routes = lambda router: None  # an endpoint that serves chat completions only
    with plain:
        with pytest.raises(BatchUnsupportedError, match="has no Batch API"):
            _batch_run(conversations(1), BATCH, plain, ledger)
        assert plain.stats()["completions"] == 0


def test_two_runs_planning_at_once_submit_each_request_once(tmp_path, ledger_location):
    import threading

    path = tmp_path / "ledger.sqlite"
    store = BatchStore(Ledger(path))
    line = BatchLine("k1", "m", [{"role": "user", "content": "hi"}], {})
    other = BatchLine("k2", "m", [{"role": "user", "content": "ho"}], {})
    assert store.record_intent(new_token(), [line], model="m", origin="simulated", endpoint="x", run_id="a")
    assert store.record_intent(new_token(), [line], model="m", origin="simulated", endpoint="x", run_id="b") == []
    assert store.record_intent(new_token(), [line, other], model="m", origin="simulated", endpoint="x", run_id="c") == [
        other
    ]
    with TeacherSimulator(batch_faults=BatchFaults(delay_s=0.2)) as sim:
        errors = []

        def run() -> None:
            try:
                _batch_run(conversations(6), BATCH, sim, Ledger(ledger_location))
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors
        assert sorted(sim.batches.stats()["answered_by_hash"].values()) == [1] * 6


def test_a_batch_failing_validation_is_resubmitted_once_then_its_rows_fail_with_the_reason(ledger):
    with TeacherSimulator(batch_faults=BatchFaults(fail_validation=True)) as sim:
        out = _batch_run(conversations(2), BATCH, sim, ledger)
        assert [b["status"] for b in sim.batches.created()] == ["failed", "failed"]
    errors = out.result.generations["error"].to_list()
    assert all("batch failed without answering this line: the input file could not be validated" in e for e in errors)


def test_an_online_run_waits_for_an_open_batch_instead_of_paying_its_lines_again(ledger_location):
    """Issue 14: batch lines are leased like online requests, so an online run of the same teacher
    beside a pending batch pays nothing for the batch's keys: it waits and takes the batch's answers."""
    import threading

    convs = conversations(4)
    with TeacherSimulator(batch_faults=BatchFaults(delay_s=3600)) as sim:
        first = _batch_run(convs, BATCH, sim, Ledger(ledger_location), wait=False)
        assert first.pending
        (batch,) = BatchStore(Ledger(ledger_location)).open_batches()
        leases = Ledger(ledger_location).leases()
        assert len(leases) == 4 and {owner for _key, _origin, owner, _exp in leases} == {f"batch|{batch.token}"}
        results = {}

        def online() -> None:
            ledger = Ledger(ledger_location)
            results["online"] = generate(
                convs, TeacherSettings(), _endpoint(sim), ledger, run_id="online", retry_policy=FAST_RETRIES
            )

        thread = threading.Thread(target=online)
        thread.start()
        thread.join(timeout=1.5)
        assert thread.is_alive(), "the online run did not wait for the batch's leased keys"
        assert sim.stats()["completions"] == 0
        sim.batches.faults.delay_s = 0
        ingested = _batch_run(convs, BATCH, sim, Ledger(ledger_location), wait=True)
        assert not ingested.pending
        thread.join(timeout=120)
        assert not thread.is_alive()
    online_result = results["online"]
    assert online_result.generations["status"].to_list() == ["ok"] * 4
    assert online_result.stats.requests_paid == 0 and sim.stats()["completions"] == 0
    assert online_result.leases.answers_from_others == 4
    assert Ledger(ledger_location).leases() == []  # the finished batch released what it held
