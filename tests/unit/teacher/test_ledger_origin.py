"""Where a paid answer may be reused: simulated answers never satisfy a real endpoint, nor the reverse.

Protects: the ledger keys answers by (request hash, origin); a simulated answer is invisible to a
request for a real endpoint (and the reverse) even with the same model id, messages and sampling,
and both can be stored; real endpoints share answers by default and keep them apart with
TEACHER_SHARE_ANSWERS_ACROSS_ENDPOINTS=false; after a simulated run, a run against a real endpoint
pays for everything and an unreachable real endpoint reuses nothing; a version 1 ledger (request
hash alone as the key) is migrated in place; every answer records its endpoint and served model.
"""

from __future__ import annotations

import socket
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime

import polars as pl

from distillset import ids
from distillset.settings import TeacherSettings
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.generate import generate
from distillset.teacher.ledger import SCHEMA_VERSION, Ledger, LedgerAnswer
from distillset.teacher.rows import Conversation

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
SAMPLING = {"temperature": 0.7, "top_p": 0.95, "max_tokens": 1024}
KEY = ids.request_hash("m", MESSAGES, SAMPLING)


def _answer(content: str, *, simulated: bool, origin: str | None = None) -> LedgerAnswer:
    return LedgerAnswer(
        request_hash=KEY, model="m", messages_json=ids.canonical_json(MESSAGES),
        sampling_json=ids.canonical_json(SAMPLING),
        content=content, finish_reason="stop", prompt_tokens=7, completion_tokens=3, latency_ms=12.0, attempts=1,
        response_id="r", endpoint="https://api.example.com", simulated=simulated, created_at=datetime.now(UTC),
        run_id="r1", origin=origin, served_model="m",
    )  # fmt: skip


def test_simulated_and_real_answers_are_kept_apart(ledger_location, tmp_path):
    ledger = Ledger(ledger_location)
    with ledger.writer() as writer:
        writer.add_answer(_answer("from the simulator", simulated=True))
    assert ledger.lookup([KEY], origin="remote") == {}
    with ledger.writer() as writer:
        writer.add_answer(_answer("from the real teacher", simulated=False))
    assert ledger.get(KEY, origin="simulated").content == "from the simulator"
    assert ledger.get(KEY, origin="remote").content == "from the real teacher"
    assert ledger.count_answers() == 2


def test_real_endpoints_share_answers_unless_told_not_to():
    shared = [TeacherEndpoint(f"https://{host}/v1", None, simulated=False) for host in ("a.example", "b.example")]
    assert shared[0].origin == shared[1].origin == "remote"
    apart = [replace(endpoint, share_across_endpoints=False) for endpoint in shared]
    assert apart[0].origin == "remote:https://a.example" != apart[1].origin
    assert TeacherEndpoint("http://127.0.0.1:1/v1", None, simulated=True).origin == "simulated"


def _conversations(n: int) -> list[Conversation]:
    return [Conversation(f"p{i}", None, [f"Describe mountain range number {i} in detail."]) for i in range(n)]


def test_a_real_endpoint_never_reuses_simulated_answers(ledger_location, tmp_path):
    ledger = Ledger(ledger_location)
    settings = TeacherSettings(max_concurrency=4, max_retries=0)
    with TeacherSimulator() as sim:
        simulated = TeacherEndpoint(sim.base_url, None, simulated=True)
        first = generate(_conversations(10), settings, simulated, ledger)
        assert first.stats.requests_paid == 10 and first.generations["simulated"].all()

        with socket.socket() as sock:  # an endpoint that is not there
            sock.bind(("127.0.0.1", 0))
            gone = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        unreachable = generate(_conversations(10), settings, TeacherEndpoint(gone, None, simulated=False), ledger)
        assert unreachable.stats.cache_hits == 0 and unreachable.stats.requests_paid == 0
        assert unreachable.generations["status"].to_list() == ["failed"] * 10

        real = TeacherEndpoint(sim.base_url, None, simulated=False)  # the same server, taken as a real endpoint
        second = generate(_conversations(10), settings, real, ledger)
        assert second.stats.cache_hits == 0 and second.stats.requests_paid == 10
        assert not second.generations["simulated"].any()
        assert second.generations["served_model"].to_list() == [settings.model] * 10
        again = generate(_conversations(10), settings, real, ledger)
        assert again.stats.requests_paid == 0 and again.stats.cache_hits == 10
    stored = {a.origin for a in ledger.iter_answers()}
    assert stored == {"simulated", "remote"} and ledger.count_answers() == 20


_V1_SCHEMA = """
CREATE TABLE answers (request_hash TEXT PRIMARY KEY, model TEXT NOT NULL, messages_json TEXT NOT NULL,
    sampling_json TEXT NOT NULL, content TEXT NOT NULL, finish_reason TEXT, prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL, latency_ms REAL NOT NULL, attempts INTEGER NOT NULL, response_id TEXT,
    endpoint TEXT NOT NULL, simulated INTEGER NOT NULL, created_at TEXT NOT NULL, run_id TEXT);
CREATE TABLE failures (id INTEGER PRIMARY KEY AUTOINCREMENT, request_hash TEXT NOT NULL, model TEXT NOT NULL,
    error TEXT NOT NULL, status_code INTEGER, attempts INTEGER NOT NULL, failed_at TEXT NOT NULL, run_id TEXT);
"""


def test_a_version_1_ledger_is_migrated_in_place(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as con:
        con.executescript(_V1_SCHEMA)
        for key, simulated in (("real-key", 0), ("sim-key", 1)):
            con.execute(
                "INSERT INTO answers VALUES "
                "(?, 'm', '[]', '{}', ?, 'stop', 1, 1, 1.0, 1, NULL, 'https://x', ?, ?, NULL)",
                [key, f"answer {key}", simulated, datetime.now(UTC).isoformat()],
            )
        con.execute(
            "INSERT INTO failures VALUES (NULL, 'lost-key', 'm', 'HTTP 500', 500, 3, ?, NULL)",
            [datetime.now(UTC).isoformat()],
        )
    ledger = Ledger(path)
    assert ledger.get("real-key", origin="remote").content == "answer real-key"
    assert ledger.get("real-key", origin="simulated") is None
    assert ledger.get("sim-key", origin="simulated").content == "answer sim-key"
    assert [f.request_hash for f in ledger.failures()] == ["lost-key"]
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    Ledger(path)  # opening again changes nothing
    assert ledger.count_answers() == 2
    assert pl.DataFrame([a.__dict__ for a in ledger.iter_answers()])["origin"].sort().to_list() == [
        "remote",
        "simulated",
    ]
