"""Teacher generation never pays twice: a second run is served from the ledger (the simulator's
request counter does not move), a changed sampling parameter re-pays exactly the changed requests,
multi-turn conversations are generated turn by turn with one ledger key per turn, duplicates in
one run are paid once, the budget cap stops cleanly with a message, and the returned frame has
exactly the ``teacher_generations`` columns of docs/engine.md.
"""

from __future__ import annotations

import asyncio
import json
import re

import polars as pl
import pytest

from distillset import ids
from distillset.settings import SamplingSettings, TeacherSettings
from distillset.simulator.endpoint import open_endpoint
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.accounting import GenerationProgress
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.generate import generate
from distillset.teacher.ledger import Ledger
from distillset.teacher.rate_limit import RateLimiter, TokenBucket, estimate_tokens
from distillset.teacher.retry import RetryPolicy
from distillset.teacher.rows import GENERATIONS_SCHEMA, Conversation
from helpers.paths import PROJECT

FAST_RETRIES = RetryPolicy(base_s=0.005, cap_s=0.02)


def conversations(n: int, *, start: int = 0) -> list[Conversation]:
    return [
        Conversation(prompt_id=f"p{i}", system=None, turns=[f"Explain topic number {i} about gardening and soil."])
        for i in range(start, start + n)
    ]


def _run(convs, settings, sim: TeacherSimulator, ledger: Ledger, **kwargs):
    endpoint = TeacherEndpoint(base_url=sim.base_url, api_key=None, simulated=True)
    return generate(convs, settings, endpoint, ledger, retry_policy=FAST_RETRIES, **kwargs)


@pytest.fixture()
def sim():
    with TeacherSimulator() as simulator:
        yield simulator


@pytest.fixture()
def ledger(tmp_path):
    return Ledger(tmp_path / "ledger.sqlite")


def _documented_columns() -> list[str]:
    text = (PROJECT / "docs" / "engine.md").read_text(encoding="utf-8")
    section = text.split("### `teacher_generations`", 1)[1].split("\n### ", 1)[0]
    columns: list[str] = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[0] in ("column", "") or set(cells[0]) <= {"-"}:
            continue
        columns.extend(name.strip() for name in cells[0].split(","))
    return columns


def test_frame_has_the_documented_columns_in_order(sim, ledger):
    result = _run(conversations(3), TeacherSettings(), sim, ledger)
    frame = result.generations
    assert frame.columns == _documented_columns()
    assert dict(frame.schema) == GENERATIONS_SCHEMA
    assert frame["prompt_id"].to_list() == ["p0", "p1", "p2"]
    assert frame["status"].to_list() == ["ok"] * 3
    assert frame["simulated"].to_list() == [True] * 3
    row = frame.row(0, named=True)
    messages = json.loads(row["messages_json"])
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert row["messages_json"] == ids.canonical_json(messages)
    assert messages[1]["content"] == row["response"]
    assert row["request_hashes"] == [row["request_hash"]]
    assert row["request_hash"] == ids.request_hash(
        TeacherSettings().model, messages[:1], TeacherSettings().sampling_params()
    )
    assert json.loads(row["sampling_json"]) == TeacherSettings().sampling_params()
    assert row["generated_at"].tzinfo is not None
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0


def test_second_run_pays_nothing(sim, ledger):
    convs = conversations(40)
    first = _run(convs, TeacherSettings(max_concurrency=8), sim, ledger)
    served = sim.stats()["completions"]
    assert first.stats.requests_paid == served == 40
    assert ledger.count_answers() == 40

    second = _run(convs, TeacherSettings(max_concurrency=8), sim, ledger)
    assert sim.stats()["completions"] == served
    assert second.stats.requests_paid == 0
    assert second.stats.cache_hits == 40
    assert second.generations["response"].to_list() == first.generations["response"].to_list()
    assert second.generations["response_id"].to_list() == first.generations["response_id"].to_list()


def test_changed_sampling_parameter_repays_exactly_the_changed_requests(sim, ledger):
    convs = conversations(12)
    _run(convs, TeacherSettings(sampling=SamplingSettings(temperature=0.7)), sim, ledger)
    before = sim.stats()["completions_by_hash"]

    hotter = TeacherSettings(sampling=SamplingSettings(temperature=0.9))
    mixed = _run(convs[:5], hotter, sim, ledger)
    _run(convs, TeacherSettings(sampling=SamplingSettings(temperature=0.7)), sim, ledger)  # unchanged: still free
    after = sim.stats()["completions_by_hash"]

    new_keys = {k for k in after if k not in before}
    assert new_keys == set(mixed.generations["request_hash"].to_list())
    assert len(new_keys) == 5
    assert all(count == 1 for count in after.values())
    assert ledger.count_answers() == 17


def test_multi_turn_has_one_ledger_key_per_turn_and_feeds_the_first_answer(sim, ledger):
    convs = [
        Conversation(
            prompt_id=f"mt{i}",
            system="You are a careful tutor.",
            turns=[f"Describe planet number {i}.", "Now summarise that in one line."],
        )
        for i in range(4)
    ]
    result = _run(convs, TeacherSettings(), sim, ledger)
    assert ledger.count_answers() == 8
    assert sim.stats()["completions"] == 8
    for row in result.generations.iter_rows(named=True):
        first_key, second_key = row["request_hashes"]
        assert row["request_hash"] == second_key
        first = ledger.get(first_key)
        second = ledger.get(second_key)
        second_messages = json.loads(second.messages_json)
        assert [m["role"] for m in second_messages] == ["system", "user", "assistant", "user"]
        assert second_messages[2]["content"] == first.content
        assert row["response"] == second.content
        assert row["prompt_tokens"] == first.prompt_tokens + second.prompt_tokens
        assert row["messages_json"] == ids.canonical_json(
            second_messages + [{"role": "assistant", "content": second.content}]
        )

    again = _run(convs, TeacherSettings(), sim, ledger)
    assert again.stats.cache_hits == 8 and again.stats.requests_paid == 0
    assert sim.stats()["completions"] == 8


def test_truncated_turn_marks_the_conversation_length(sim, ledger):
    convs = [Conversation("t0", None, ["Explain the history of bridges in detail.", "Continue please."])]
    row = _run(convs, TeacherSettings(sampling=SamplingSettings(max_tokens=5)), sim, ledger).generations.row(
        0, named=True
    )
    assert row["status"] == "ok"
    assert row["finish_reason"] == "length"
    assert row["completion_tokens"] == 10


def test_duplicate_conversations_in_one_run_are_paid_once(sim, ledger):
    convs = [Conversation(f"d{i}", None, ["The very same question about oceans."]) for i in range(20)]
    result = _run(convs, TeacherSettings(max_concurrency=8), sim, ledger)
    assert sim.stats()["completions"] == 1
    assert result.stats.requests_paid == 1
    assert result.stats.cache_hits == 19
    assert result.generations["status"].to_list() == ["ok"] * 20
    assert result.generations["response"].n_unique() == 1


def test_bad_conversations_fail_with_a_reason(sim, ledger):
    convs = [
        Conversation("ok", None, ["A fine question about rivers."]),
        Conversation("empty", None, []),
        Conversation("blank", None, ["  "]),
    ]
    frame = _run(convs, TeacherSettings(), sim, ledger).generations
    assert frame["status"].to_list() == ["ok", "failed", "failed"]
    assert "empty or missing user turn" in frame["error"][1]
    assert sim.stats()["requests"] == 1


def test_token_budget_stops_cleanly_with_a_message(sim, ledger):
    convs = conversations(60)
    settings = TeacherSettings(max_concurrency=2, budget_tokens=1500)
    result = _run(convs, settings, sim, ledger)
    stats = result.stats
    frame = result.generations
    assert stats.budget_exhausted
    assert stats.budget_message.startswith("budget exhausted (")
    assert "1500-token budget" in stats.budget_message
    # One account, from the final counts: in-flight requests paid after the stop are in it.
    assert f"{stats.requests_paid} teacher calls paid" in stats.budget_message
    assert f"{stats.skipped_for_budget} conversations skipped for budget" in stats.budget_message
    assert "0 calls failed" in stats.budget_message
    assert stats.as_metadata()["budget_message"] == stats.budget_message
    ok = frame.filter(pl.col("status") == "ok")
    # Not generated for the budget is "skipped", not "failed": the endpoint did nothing wrong.
    stopped = frame.filter(pl.col("status") == "skipped")
    assert ok.height + stopped.height == 60 and stats.skipped_for_budget == stopped.height and stats.failures == 0
    assert stopped.height > 0 and ok.height > 0
    assert stopped["error"].str.starts_with("budget exhausted").all()
    # In-flight requests finished and were recorded: everything served is in the ledger.
    assert sim.stats()["completions"] == stats.requests_paid == ledger.count_answers() == ok.height
    # Budget stops before paying more than the in-flight requests beyond the cap.
    per_request = (stats.prompt_tokens + stats.completion_tokens) / stats.requests_paid
    assert stats.prompt_tokens + stats.completion_tokens < 1500 + (settings.max_concurrency + 1) * per_request
    assert ledger.failures() == []  # not generated this run is not a teacher failure

    rest = _run(convs, TeacherSettings(max_concurrency=2), sim, ledger)
    assert rest.stats.requests_paid == stopped.height
    assert rest.generations["status"].to_list() == ["ok"] * 60


def test_dollar_budget_uses_prices(sim, ledger):
    settings = TeacherSettings(
        max_concurrency=1, price_input_per_mtok=3.0, price_output_per_mtok=15.0, budget_usd=0.005
    )
    result = _run(conversations(40), settings, sim, ledger)
    expected_cost = (result.stats.prompt_tokens * 3.0 + result.stats.completion_tokens * 15.0) / 1e6
    assert result.stats.estimated_cost_usd == pytest.approx(expected_cost)
    assert result.stats.budget_exhausted
    assert "$" in result.stats.budget_message
    assert result.stats.estimated_cost_usd >= 0.005
    assert result.generations.filter(pl.col("status") == "skipped").height == 40 - result.stats.requests_paid


def test_progress_is_reported_at_the_end(sim, ledger):
    seen: list[GenerationProgress] = []
    result = _run(
        iter(conversations(25)), TeacherSettings(), sim, ledger, on_progress=seen.append, progress_interval_s=60
    )
    assert seen, "on_progress was never called"
    last = seen[-1]
    assert last.done == last.total == 25
    assert last.eta_s == 0
    assert str(last).startswith("25/25 conversations: 25 calls paid, 0 answers from the ledger, $0.00;")
    assert result.stats.as_metadata()["conversations"] == 25
    # No budget stop: no empty budget_message entry (the UI would show a blank field).
    assert "budget_message" not in result.stats.as_metadata()

    # A rerun says it paid nothing and took every answer from the ledger.
    again: list[GenerationProgress] = []
    _run(iter(conversations(25)), TeacherSettings(), sim, ledger, on_progress=again.append, progress_interval_s=60)
    assert str(again[-1]).startswith("25/25 conversations: 0 calls paid, 25 answers from the ledger, $0.00;")


def test_open_endpoint_starts_the_simulator_only_without_base_url():
    with open_endpoint(TeacherSettings(model="meta-llama/Llama-3.3-70B-Instruct")) as endpoint:
        assert endpoint.simulated
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", endpoint.base_url)
        import openai

        models = [m.id for m in openai.OpenAI(base_url=endpoint.base_url, api_key="x").models.list()]
        assert models[0] == "meta-llama/Llama-3.3-70B-Instruct"
    real = TeacherSettings(base_url="https://user:pw@api.example.com:8443/v1?key=abc", api_key="sk-test-SECRET-123")
    with open_endpoint(real) as endpoint:
        assert not endpoint.simulated
        assert endpoint.public_address == "https://api.example.com:8443"
        assert "sk-test" not in repr(endpoint)


def test_generate_works_from_inside_a_running_event_loop(sim, ledger):
    async def caller():
        return _run(conversations(3), TeacherSettings(), sim, ledger)

    result = asyncio.run(caller())
    assert result.generations["status"].to_list() == ["ok"] * 3


def test_token_bucket_accounting():
    async def scenario():
        bucket = TokenBucket(per_minute=600)  # 10/s, a 10-second burst of 100
        assert bucket.capacity == 100
        await bucket.acquire(60)
        bucket.adjust(60 - 20)  # the request really cost 20
        return bucket.available

    level = asyncio.run(scenario())
    assert 79 <= level <= 81
    assert estimate_tokens([{"role": "user", "content": "x" * 400}], 50) == 150
    assert RateLimiter(None, None).requests is None
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(per_minute=0)
