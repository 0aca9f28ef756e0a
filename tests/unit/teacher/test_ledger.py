"""The ledger keeps every paid answer: round trips exactly, never overwrites an answer
(ON CONFLICT DO NOTHING), accepts a second process writing at the same time, survives a writer killed
with SIGKILL mid-run with every committed answer readable, and lets a later answer supersede a
recorded failure; answers the database refuses are rescued to a JSONL file, not lost.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from distillset import ids
from distillset.teacher.ledger import Ledger, LedgerAnswer
from helpers.paths import PROJECT


def make_answer(n: int, *, content: str | None = None, run_id: str | None = "run-a") -> LedgerAnswer:
    messages = [{"role": "user", "content": f"question {n}"}]
    sampling = {"temperature": 0.7, "top_p": 0.95, "max_tokens": 64}
    return LedgerAnswer(
        request_hash=ids.request_hash("m", messages, sampling),
        model="m",
        messages_json=ids.canonical_json(messages),
        sampling_json=ids.canonical_json(sampling),
        content=content if content is not None else f"answer {n} ✓ 答案",
        finish_reason="stop",
        prompt_tokens=10 + n,
        completion_tokens=20 + n,
        latency_ms=12.5,
        attempts=1 + n % 3,
        response_id=f"chatcmpl-{n}",
        endpoint="http://127.0.0.1:8000",
        simulated=True,
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        run_id=run_id,
    )


def test_round_trip_and_totals(ledger_location, tmp_path):
    ledger = Ledger(ledger_location)
    answers = [make_answer(n) for n in range(5)]
    with ledger.writer(run_id="run-a") as writer:
        for answer in answers:
            writer.add_answer(answer)
    found = ledger.lookup([a.request_hash for a in answers] + ["absent"], origin="simulated")
    assert found == {a.request_hash: a for a in answers}
    assert ledger.count_answers() == 5
    assert ledger.usage_totals() == {
        "requests": 5,
        "prompt_tokens": sum(a.prompt_tokens for a in answers),
        "completion_tokens": sum(a.completion_tokens for a in answers),
    }
    assert ledger.usage_totals(model="other")["requests"] == 0
    assert ledger.usage_totals(run_id="run-a")["requests"] == 5
    # A reader opened later (another process in real life) sees the same.
    assert (
        Ledger(ledger_location).lookup([answers[3].request_hash], origin="simulated")[answers[3].request_hash]
        == answers[3]
    )


def test_an_answer_is_never_overwritten(ledger_location, tmp_path):
    ledger = Ledger(ledger_location)
    with ledger.writer() as writer:
        writer.add_answer(make_answer(1, content="the first, paid answer"))
    with ledger.writer() as writer:
        writer.add_answer(make_answer(1, content="a second answer to the same request"))
    assert ledger.count_answers() == 1
    assert ledger.get(make_answer(1).request_hash).content == "the first, paid answer"


def test_lookup_many_hashes_beyond_sqlite_parameter_limit(ledger_location, tmp_path):
    ledger = Ledger(ledger_location)
    answers = [make_answer(n) for n in range(2500)]
    with ledger.writer(batch_size=500) as writer:
        for answer in answers:
            writer.add_answer(answer)
    assert len(ledger.lookup((a.request_hash for a in answers), origin="simulated")) == 2500


def _wait_for_count(ledger: Ledger, count: int) -> int:
    deadline = time.monotonic() + 5
    while ledger.count_answers() < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return ledger.count_answers()


def test_buffered_answers_are_visible_as_pending_until_committed(ledger_location, tmp_path):
    ledger = Ledger(ledger_location)
    with ledger.writer(batch_size=1000, flush_interval_s=60) as writer:
        writer.add_answer(make_answer(0))
        assert writer.pending(make_answer(0).request_hash, "simulated") == make_answer(0)
        assert ledger.count_answers() == 0
    assert ledger.count_answers() == 1  # committed on exit


def test_full_batches_and_the_interval_both_commit(ledger_location, tmp_path):
    ledger = Ledger(ledger_location)
    with ledger.writer(batch_size=4, flush_interval_s=0.05) as writer:
        for n in range(4):
            writer.add_answer(make_answer(n))
        assert _wait_for_count(ledger, 4) == 4
        writer.add_answer(make_answer(99))  # below batch size: the interval flush commits it
        assert _wait_for_count(ledger, 5) == 5
        assert writer.pending(make_answer(99).request_hash, "simulated") is None


def test_failure_is_superseded_by_a_later_answer(ledger_location, tmp_path):
    ledger = Ledger(ledger_location)
    failed, still_failed = make_answer(1), make_answer(2)
    with ledger.writer(run_id="r1") as writer:
        writer.add_failure(
            failed.request_hash,
            "m",
            "HTTP 503: overloaded (after 7 attempts)",
            status_code=503,
            attempts=7,
            origin=failed.origin,
        )
        writer.add_failure(still_failed.request_hash, "m", "timeout", attempts=7, origin=still_failed.origin)
    assert {f.request_hash for f in ledger.failures()} == {failed.request_hash, still_failed.request_hash}
    assert ledger.failures(run_id="r1")[0].status_code == 503
    with ledger.writer(run_id="r2") as writer:
        writer.add_answer(failed)
    assert [f.request_hash for f in ledger.failures()] == [still_failed.request_hash]


_WRITER_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{project!r}, {tests!r}, {here!r}]
    from test_ledger import make_answer
    from distillset.teacher.ledger import Ledger
    ledger = Ledger({path!r})
    with ledger.writer(run_id="child", batch_size=10, flush_interval_s=0.01) as writer:
        for n in range({start}, {stop}):
            writer.add_answer(make_answer(n, run_id="child"))
            if n % 10 == 9:
                writer.flush()
                print("flushed", n + 1 - {start}, flush=True)
    print("done", flush=True)
    """
)


def _spawn_writer(path: Path | str, start: int, stop: int) -> subprocess.Popen:
    script = _WRITER_SCRIPT.format(
        project=str(PROJECT),
        tests=str(PROJECT / "tests"),
        here=str(Path(__file__).parent),
        path=str(path),
        start=start,
        stop=stop,
    )
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def test_second_process_writes_concurrently(ledger_location, tmp_path):
    path = ledger_location
    ledger = Ledger(path)
    child = _spawn_writer(path, 10_000, 10_600)
    with ledger.writer(run_id="parent", batch_size=10, flush_interval_s=0.01) as writer:
        for n in range(600):
            writer.add_answer(make_answer(n))
            if n % 50 == 0:
                writer.flush()
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0, out
    assert ledger.count_answers() == 1200
    assert ledger.usage_totals(run_id="child")["requests"] == 600
    assert ledger.usage_totals(run_id="run-a")["requests"] == 600


def test_killed_writer_leaves_committed_answers_readable(ledger_location, tmp_path):
    path = ledger_location
    child = _spawn_writer(path, 0, 1_000_000)
    committed = 0
    while committed < 200:
        line = child.stdout.readline()
        assert line, "the writer process ended before it was killed"
        if line.startswith("flushed"):
            committed = int(line.split()[1])
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL

    ledger = Ledger(path)
    assert ledger.count_answers() >= committed
    if isinstance(path, Path):  # SQLite: the file itself is intact (PostgreSQL's server guards its own)
        with sqlite3.connect(path) as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = list(ledger.iter_answers(run_id="child"))
    # Every committed answer is intact, in order, exactly as written.
    for n, answer in enumerate(stored[:committed]):
        assert answer == make_answer(n, run_id="child")
    # And the file still takes new answers.
    with ledger.writer() as writer:
        writer.add_answer(make_answer(-1))
    assert ledger.get(make_answer(-1).request_hash) is not None


def test_answers_the_database_refuses_are_rescued_and_committed_by_the_next_ledger(tmp_path):
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    writer = ledger.writer(batch_size=1000, flush_interval_s=60).__enter__()
    writer.add_answer(make_answer(7))
    with sqlite3.connect(path) as con:  # the database breaks under the writer
        con.execute("DROP TABLE answers")
    with pytest.raises(RuntimeError, match="cannot commit") as failure:
        writer.close()
    rescued = list(tmp_path.glob("ledger.sqlite.unsaved-*.jsonl"))
    assert len(rescued) == 1 and str(rescued[0]) in str(failure.value)
    saved = [json.loads(line) for line in rescued[0].read_text(encoding="utf-8").splitlines()]
    assert [row["request_hash"] for row in saved] == [make_answer(7).request_hash]
    assert saved[0]["content"] == make_answer(7).content
    # The next ledger on this path (its schema back) commits them before anything else.
    assert Ledger(path).get(make_answer(7).request_hash) == make_answer(7)
    assert not list(tmp_path.glob("ledger.sqlite.unsaved-*.jsonl"))


def test_answers_a_postgresql_server_refuses_are_rescued_and_committed_by_the_next_ledger(postgres_url):
    import psycopg

    ledger = Ledger(postgres_url)
    writer = ledger.writer(batch_size=1000, flush_interval_s=60).__enter__()
    writer.add_answer(make_answer(7))
    with psycopg.connect(postgres_url, autocommit=True) as con:  # the database breaks under the writer
        con.execute("DROP TABLE answers")
    with pytest.raises(RuntimeError, match="cannot commit") as failure:
        writer.close()
    rescued = Path(re.search(r"saved to (\S+\.jsonl)", str(failure.value)).group(1))
    saved = [json.loads(line) for line in rescued.read_text(encoding="utf-8").splitlines()]
    assert [row["request_hash"] for row in saved] == [make_answer(7).request_hash]
    # The next ledger on this URL (its schema back) commits them before anything else.
    assert Ledger(postgres_url).get(make_answer(7).request_hash) == make_answer(7)
    assert not rescued.exists()
