"""The teacher simulator speaks the OpenAI API well enough for the real SDK, answers deterministically
(same request, same answer; different prompts, different answers), honours max_tokens with
``finish_reason=length``, serves a model list that can change at run time (the release sensor
relies on it), enforces its API key, injects reproducible faults that its counters report, and
runs in the foreground as ``distillset simulator`` until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import openai
import pytest
from openai import AsyncOpenAI, DefaultAioHttpClient

from distillset import ids
from distillset.cli import simulator as simulator_command
from distillset.simulator.answers import REFUSAL_EN, compose_answer, count_tokens
from distillset.simulator.faults import SimulatorFaults
from distillset.simulator.server import DEFAULT_MODELS, SYSTEM_FINGERPRINT, TeacherSimulator
from helpers.paths import PROJECT

MODEL = DEFAULT_MODELS[0]


def _client(sim: TeacherSimulator, api_key: str = "not-needed") -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.base_url, api_key=api_key, max_retries=0, timeout=5)


def _ask(client: openai.OpenAI, text: str, **sampling):
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}], **sampling)


@pytest.fixture(scope="module")
def sim():
    with TeacherSimulator() as simulator:
        yield simulator


def test_sdk_parses_a_completion_with_realistic_fields(sim):
    response = _ask(_client(sim), "Explain how volcanoes form and why they erupt.", temperature=0.7, max_tokens=512)
    choice = response.choices[0]
    assert response.model == MODEL
    assert response.system_fingerprint == SYSTEM_FINGERPRINT
    assert response.id.startswith("chatcmpl-")
    assert response.created > 1_700_000_000
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert response.usage.completion_tokens == count_tokens(choice.message.content)
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    # Relevant-looking: key words of the prompt come back.
    assert "volcanoes" in choice.message.content.lower()


def test_same_request_same_answer_different_prompt_different_answer(sim):
    client = _client(sim)
    first = _ask(client, "Describe the water cycle in detail.", temperature=0.7, max_tokens=512)
    again = _ask(client, "Describe the water cycle in detail.", temperature=0.7, max_tokens=512)
    other = _ask(client, "Describe the history of the printing press.", temperature=0.7, max_tokens=512)
    hotter = _ask(client, "Describe the water cycle in detail.", temperature=1.0, max_tokens=512)
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content

    def key(t):
        return ids.request_hash(
            MODEL,
            [{"role": "user", "content": "Describe the water cycle in detail."}],
            {"temperature": t, "max_tokens": 512},
        )

    # The answer is a function of the whole request hash, sampling included.
    assert hotter.choices[0].message.content == compose_answer(
        key(1.0), [{"role": "user", "content": "Describe the water cycle in detail."}]
    )


def test_math_word_problem_gets_reasoning_and_a_final_number(sim):
    answer = (
        _ask(_client(sim), "Sara buys 4 boxes with 12 pencils each. How many pencils does she have in total?")
        .choices[0]
        .message.content
    )
    last_line = answer.strip().splitlines()[-1]
    if answer == REFUSAL_EN:
        pytest.skip("this prompt drew the 2% refusal; the refusal path is checked elsewhere")
    assert last_line.startswith("#### ")
    a, b = 4, 12  # the numbers in the question: a naive parser adds, multiplies or subtracts them
    assert float(last_line[5:]) in {a + b, a * b, abs(a - b)}


def test_chinese_prompt_gets_chinese_answer(sim):
    answer = _ask(_client(sim), "请简要介绍一下长城的历史。").choices[0].message.content
    chinese_chars = sum("\u4e00" <= ch <= "\u9fff" for ch in answer)
    assert chinese_chars > len(answer) / 3


def test_about_two_percent_are_refusals():
    prompts = [f"Write a short note about topic number {i}." for i in range(2000)]
    refusals = sum(compose_answer(ids.sha256_hex(p), [{"role": "user", "content": p}]) == REFUSAL_EN for p in prompts)
    assert 10 <= refusals <= 80


def test_max_tokens_truncates_with_finish_reason_length(sim):
    response = _ask(_client(sim), "Explain the theory of relativity with examples.", max_tokens=7)
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 7
    assert count_tokens(response.choices[0].message.content) == 7


def test_models_list_and_set_models(sim):
    client = _client(sim)
    assert [m.id for m in client.models.list()] == DEFAULT_MODELS
    sim.set_models(["meta-llama/Llama-4-Maverick-Instruct", *DEFAULT_MODELS])
    try:
        assert [m.id for m in client.models.list()][0] == "meta-llama/Llama-4-Maverick-Instruct"
        answer = client.chat.completions.create(
            model="meta-llama/Llama-4-Maverick-Instruct", messages=[{"role": "user", "content": "hi there"}]
        )
        assert answer.model == "meta-llama/Llama-4-Maverick-Instruct"
    finally:
        sim.set_models(DEFAULT_MODELS)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="meta-llama/Llama-4-Maverick-Instruct", messages=[{"role": "user", "content": "hi there"}]
        )


def test_streaming_is_refused_with_a_clear_400(sim):
    with pytest.raises(openai.BadRequestError, match="[Ss]treaming is not supported"):
        _client(sim).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True)


def test_api_key_is_enforced_and_not_echoed():
    secret = "sk-test-SECRET-123"
    with TeacherSimulator(api_key=secret) as sim:
        assert _ask(_client(sim, secret), "hello there friend").choices[0].message.content
        with pytest.raises(openai.AuthenticationError) as wrong:
            _ask(_client(sim, "sk-wrong"), "hello there friend")
        assert secret not in str(wrong.value)
        request = urllib.request.Request(f"{sim.base_url}/models")
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(request, timeout=5)
        assert missing.value.code == 401
        assert secret not in repr(sim)
        assert sim.stats()["by_outcome"]["401"] == 1


def test_faults_are_reproducible_and_counted():
    faults = SimulatorFaults(rate_429=0.2, rate_500=0.1, rate_503=0.1, rate_invalid_json=0.1, rate_empty=0.1, seed=7)
    outcomes = [faults.pick(f"key{i}", 1) for i in range(1000)]
    assert outcomes == [faults.pick(f"key{i}", 1) for i in range(1000)]
    assert 150 < outcomes.count("429") < 250
    assert outcomes != [
        SimulatorFaults(rate_429=0.2, rate_500=0.1, rate_503=0.1, rate_invalid_json=0.1, rate_empty=0.1, seed=8).pick(
            f"key{i}", 1
        )
        for i in range(1000)
    ]

    async def fire(sim: TeacherSimulator) -> list[str]:
        seen = []
        async with AsyncOpenAI(
            base_url=sim.base_url, api_key="x", max_retries=0, timeout=5, http_client=DefaultAioHttpClient()
        ) as client:
            for i in range(40):
                try:
                    response = await client.chat.completions.create(
                        model=MODEL, messages=[{"role": "user", "content": f"question {i}"}]
                    )
                    seen.append("empty" if response.choices[0].message.content == "" else "ok")
                except openai.RateLimitError as exc:
                    assert float(exc.response.headers["retry-after"]) == pytest.approx(faults.retry_after_s)
                    seen.append("429")
                except openai.InternalServerError as exc:
                    seen.append(str(exc.status_code))
                except json.JSONDecodeError:
                    seen.append("invalid_json")
        return seen

    with TeacherSimulator(faults=faults) as sim:
        seen = asyncio.run(fire(sim))
        stats = sim.stats()
    expected = [
        faults.pick(ids.request_hash(MODEL, [{"role": "user", "content": f"question {i}"}], {}), 1) for i in range(40)
    ]
    assert seen == expected
    assert stats["requests"] == 40
    assert stats["completions"] == expected.count("ok")
    assert {k: v for k, v in stats["by_outcome"].items()} == {k: expected.count(k) for k in set(expected)}


def test_dropped_connection_is_a_connection_error():
    with TeacherSimulator(faults=SimulatorFaults(rate_drop=1.0)) as sim:
        with pytest.raises(openai.APIConnectionError):
            _ask(_client(sim), "hello")
        assert sim.stats()["by_outcome"] == {"drop": 1}
        assert sim.stats()["completions"] == 0


def test_command_line_configures_the_simulator():
    parser = argparse.ArgumentParser()
    simulator_command.configure(parser)
    args = parser.parse_args(
        ["--port", "0", "--model", "a/b", "--model", "c/d", "--latency-ms", "20", "--rate-429", "0.5"]
    )
    assert args.models == ["a/b", "c/d"]
    assert args.latency_ms == 20.0 and args.rate_429 == 0.5
    with pytest.raises(SystemExit):
        parser.parse_args(["--rate-500", "1.5"])


def test_command_serves_in_the_foreground_until_interrupted():
    script = (
        "import argparse, sys; from distillset.cli import simulator as c; p = argparse.ArgumentParser(); "
        "c.configure(p); "
        "sys.exit(c.run(p.parse_args(['--port', '0', '--model', 'org/served-model'])))"
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    try:
        banner = child.stdout.readline()
        base_url = re.search(r"http://127\.0\.0\.1:\d+/v1", banner).group(0)
        with urllib.request.urlopen(f"{base_url}/models", timeout=5) as response:
            listing = json.loads(response.read())
        assert [m["id"] for m in listing["data"]] == ["org/served-model"]
        child.send_signal(signal.SIGINT)
        # The server's shutdown is bounded (2 s); the margin is for a loaded machine only.
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
