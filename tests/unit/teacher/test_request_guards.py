"""What a request must not get away with: a trickling endpoint, another model, a huge answer.

Protects: TEACHER_TIMEOUT_S is a deadline for the whole request (an endpoint that sends a few bytes
every 250 ms is cut off, not waited on for ever); an answer that claims another model id than the
one asked fails the request (recorded with the reason, never stored as an answer) unless
TEACHER_ACCEPT_MODEL_ALIASES lists it, and the served id is recorded on every answer; an answer
longer than TEACHER_MAX_RESPONSE_CHARS is recorded as failed with the reason, never stored.
"""

from __future__ import annotations

import asyncio
import threading
import time

import polars as pl
import pytest
from aiohttp import web

from distillset.settings import TeacherSettings
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.generate import generate
from distillset.teacher.ledger import Ledger
from distillset.teacher.rows import Conversation

MODEL = "meta-llama/Llama-3.1-405B-Instruct"


def _conversations(n: int) -> list[Conversation]:
    return [Conversation(f"p{i}", None, [f"Describe the history of bridge number {i}."]) for i in range(n)]


@pytest.fixture
def trickling_endpoint():
    """A real HTTP server that answers 200 and then sends 8 bytes every 250 ms, forever."""

    async def chat(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"id": "x", "object": "chat.completion", "choices": [{"message": {"content": "')
        while True:
            await response.write(b"aaaaaaaa")
            await asyncio.sleep(0.25)

    loop = asyncio.new_event_loop()
    ready, box = threading.Event(), {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        box["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    yield box["url"]
    loop.call_soon_threadsafe(loop.stop)


def test_the_timeout_is_a_deadline_for_the_whole_request(tmp_path, trickling_endpoint):
    settings = TeacherSettings(timeout_s=1.0, max_retries=0, max_concurrency=2)
    started = time.monotonic()
    result = generate(
        _conversations(2), settings, TeacherEndpoint(trickling_endpoint, None, simulated=False), Ledger(tmp_path / "l")
    )
    assert time.monotonic() - started < 6, "held far past the deadline"
    assert result.generations["status"].to_list() == ["failed", "failed"]
    assert result.generations["error"].str.contains("deadline").all()


def test_an_answer_from_another_model_fails_unless_it_is_an_accepted_alias(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with TeacherSimulator([MODEL], serve_as={MODEL: "some-org/cheaper-8b"}) as sim:
        endpoint = TeacherEndpoint(sim.base_url, None, simulated=False)
        refused = generate(_conversations(3), TeacherSettings(max_retries=2), endpoint, ledger)
        assert refused.generations["status"].to_list() == ["failed"] * 3
        assert refused.generations["error"].str.contains("answered with model 'some-org/cheaper-8b'").all()
        assert sim.stats()["completions"] == 3, "not retried: the same request gets the same model"
        assert ledger.count_answers() == 0
        accepted = generate(
            _conversations(3), TeacherSettings(accept_model_aliases=("some-org/cheaper-8b",)), endpoint, ledger
        )
    assert accepted.generations["status"].to_list() == ["ok"] * 3
    assert accepted.generations["served_model"].to_list() == ["some-org/cheaper-8b"] * 3
    assert {a.served_model for a in ledger.iter_answers()} == {"some-org/cheaper-8b"}


def test_an_answer_over_the_size_cap_is_a_failure_with_the_reason(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    with TeacherSimulator([MODEL]) as sim:
        endpoint = TeacherEndpoint(sim.base_url, None, simulated=False)
        result = generate(_conversations(4), TeacherSettings(max_response_chars=10), endpoint, ledger)
    frame = result.generations
    assert frame.filter(pl.col("status") == "failed").height == 4
    assert frame["error"].str.contains("more than TEACHER_MAX_RESPONSE_CHARS=10").all()
    assert ledger.count_answers() == 0 and len(ledger.failures()) == 4
