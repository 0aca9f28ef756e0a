"""`distillset ledger export|import` (issue 14): a ledger moves to another ledger as JSON Lines.

Every answer and failure survives the round trip unchanged, importing twice adds nothing, an answer
the target already has is kept, and a bad line is a one-line error that names it and imports nothing.
The import target is a SQLite file and a PostgreSQL database in turn; the command line migrates a
SQLite ledger into PostgreSQL without ever showing the URL's password.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from distillset.teacher.ledger import Ledger, LedgerAnswer
from distillset.teacher.ledger_io import export_ledger, import_ledger
from helpers.paths import PROJECT


def _answer(key: str, content: str = "", origin: str = "remote") -> LedgerAnswer:
    return LedgerAnswer(
        request_hash=key,
        model="m",
        messages_json='[{"content":"q","role":"user"}]',
        sampling_json='{"temperature":0.7}',
        content=content or f"answer to {key} \u00e9",
        finish_reason="stop",
        prompt_tokens=3,
        completion_tokens=5,
        latency_ms=12.5,
        attempts=2,
        response_id="r-1",
        endpoint="https://api.example",
        simulated=False,
        created_at=datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
        run_id="run-a",
        origin=origin,
        served_model="m",
    )


@pytest.fixture()
def source(tmp_path):
    ledger = Ledger(tmp_path / "source.sqlite")
    with ledger.writer(run_id="run-a") as writer:
        for i in range(5):
            writer.add_answer(_answer(f"k{i}"))
        writer.add_answer(_answer("k0", origin="simulated"))
        writer.add_failure("lost", "m", "HTTP 500 (after 7 attempts)", status_code=500, attempts=7)
    return ledger


def _export(ledger: Ledger) -> str:
    out = io.StringIO()
    export_ledger(ledger, out)
    return out.getvalue()


def test_round_trip_keeps_every_answer_and_failure(ledger_location, source, tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_text(_export(source), encoding="utf-8")
    target = Ledger(ledger_location)
    with target.writer() as writer:
        writer.add_answer(_answer("k1", content="the target's own answer"))
    counts = import_ledger(target, path)
    assert counts == {
        "answers": 6,
        "failures": 1,
        "answers_added": 5,
        "failures_added": 1,
        "batches": 0,
        "batches_added": 0,
        "batch_lines": 0,
        "batch_lines_added": 0,
    }
    assert target.get("k1", origin="remote").content == "the target's own answer"  # never overwritten
    originals = {(a.request_hash, a.origin): a for a in source.iter_answers()}
    for answer in target.iter_answers():
        if answer.request_hash != "k1":
            assert answer == originals[(answer.request_hash, answer.origin)]
    assert [f.error for f in target.iter_failures()] == ["HTTP 500 (after 7 attempts)"]
    again = import_ledger(target, path)
    assert (again["answers_added"], again["failures_added"]) == (0, 0)
    assert target.count_answers() == 6


def test_a_bad_line_imports_nothing(ledger_location, source, tmp_path):
    lines = _export(source).splitlines()
    bad = json.loads(lines[2])
    del bad["content"]
    lines[2] = json.dumps(bad)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = Ledger(ledger_location)
    with pytest.raises(ValueError, match=r"bad.jsonl:3: an answer row lacks content"):
        import_ledger(target, path)
    assert target.count_answers() == 0


def test_the_command_line_moves_a_ledger(source, tmp_path):
    command = [sys.executable, "-m", "orchestration.cli", "ledger"]
    out = tmp_path / "export.jsonl"
    exported = subprocess.run(
        [*command, "export", "--ledger", str(source.path), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=120,
    )
    assert exported.returncode == 0, exported.stderr
    assert "exported 6 answers, 1 failures and 0 provider batches" in exported.stderr
    target = tmp_path / "home" / "ledger.sqlite"
    imported = subprocess.run(
        [*command, "import", str(out), "--ledger", str(target)],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=120,
    )
    assert imported.returncode == 0, imported.stderr
    assert "imported 6 new answers (of 6), 1 new failures (of 1)" in imported.stdout
    assert Ledger(target).count_answers() == 6
    (tmp_path / "junk.jsonl").write_text('{"table": "answers"}\nnot json\n', encoding="utf-8")
    refused = subprocess.run(
        [*command, "import", str(tmp_path / "junk.jsonl"), "--ledger", str(target)],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=120,
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().count("\n") == 0 and "junk.jsonl:1" in refused.stderr


SECRET = "pg-secret-never-shown-0451"


def _with_password(url: str) -> str:
    # Trust authentication ignores the password, so the test can carry one and look for it.
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")


def test_the_command_line_migrates_a_sqlite_ledger_to_postgresql(source, tmp_path, postgres_url):
    command = [sys.executable, "-m", "orchestration.cli", "ledger"]
    out = tmp_path / "export.jsonl"
    exported = subprocess.run(
        [*command, "export", "--ledger", str(source.path), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=120,
    )
    assert exported.returncode == 0, exported.stderr
    env = {**os.environ, "DISTILLSET_LEDGER_URL": _with_password(postgres_url), "DISTILLSET_HOME": str(tmp_path)}
    for expected in ("imported 6 new answers (of 6), 1 new failures (of 1)", "imported 0 new answers (of 6)"):
        imported = subprocess.run(
            [*command, "import", str(out)], capture_output=True, text=True, cwd=PROJECT, timeout=120, env=env
        )
        assert imported.returncode == 0, imported.stderr
        assert expected in imported.stdout and "postgres:***@127.0.0.1" in imported.stdout
        assert SECRET not in imported.stdout + imported.stderr
    target = Ledger(postgres_url)
    assert {(a.request_hash, a.origin): a for a in target.iter_answers()} == {
        (a.request_hash, a.origin): a for a in source.iter_answers()
    }
    assert list(target.iter_failures()) == list(source.iter_failures())


def test_a_postgresql_ledger_that_does_not_answer_is_one_clear_line_without_the_password(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/ledger"
    env = {**os.environ, "DISTILLSET_LEDGER_URL": url, "DISTILLSET_HOME": str(tmp_path)}
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    refused = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "ledger", "import", str(tmp_path / "empty.jsonl")],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=120,
        env=env,
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "does not answer" in refused.stderr and f"postgres:***@127.0.0.1:{port}/ledger" in refused.stderr
    assert SECRET not in refused.stdout + refused.stderr
    with pytest.raises(RuntimeError, match="does not answer") as error:
        Ledger(url)
    assert SECRET not in str(error.value)
    run = subprocess.run(  # `distillset run` stops before it starts anything (exit 2: a bad setting)
        [sys.executable, "-m", "orchestration.cli", "run"],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=120,
        env=env,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "does not answer" in run.stderr and SECRET not in run.stdout + run.stderr
    assert not (tmp_path / "dagster").exists()  # no Dagster instance was even prepared


def test_open_provider_batches_travel_with_the_ledger_and_keep_their_lines_leased(ledger_location, tmp_path):
    """A ledger migrated while a batch is open at the provider must still know it (the next run ingests
    it instead of paying for its lines again), and an online run must still wait for its lines."""
    from distillset.teacher.batch.lines import BatchLine
    from distillset.teacher.batch.store import BatchStore, batch_lease_owner

    source = Ledger(tmp_path / "source.sqlite")
    store = BatchStore(source)
    lines = [BatchLine(f"k{i}", "m", [{"role": "user", "content": f"q{i}"}], {}) for i in range(3)]
    store.record_intent("tok1", lines, model="m", origin="remote", endpoint="https://x", run_id="r")
    store.set_submitted("tok1", "batch_abc", "in_progress")
    path = tmp_path / "ledger.jsonl"
    path.write_text(_export(source), encoding="utf-8")
    target = Ledger(ledger_location)
    counts = import_ledger(target, path)
    assert (counts["batches_added"], counts["batch_lines_added"]) == (1, 3)
    (batch,) = BatchStore(target).open_batches()
    assert (batch.token, batch.batch_id, batch.state) == ("tok1", "batch_abc", "submitted")
    assert [line[0] for line in BatchStore(target).lines_of("tok1")] == ["k0", "k1", "k2"]
    assert sorted((key, owner) for key, _origin, owner, _exp in target.leases()) == [
        (f"k{i}", batch_lease_owner("tok1")) for i in range(3)
    ]
    again = import_ledger(target, path)
    assert (again["batches_added"], again["batch_lines_added"]) == (0, 0)
