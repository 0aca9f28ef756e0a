"""Release discovery: the model ids a teacher endpoint and a model hub list, and which are Llama
instruct releases.

Protects: discovery reads the real simulator's ``/v1/models`` and a Hugging Face-style hub listing
over HTTP (sending the API key only to the endpoint); the default pattern keeps Llama 3.x/4
instruct ids and leaves base, guard and other authors' models out; an unreachable or wrong source
raises ``ReleaseSourceError`` whose message never contains the API key.
"""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from aiohttp import web

from distillset.settings import DEFAULT_RELEASE_PATTERN, SettingsError, load_settings
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.releases import ReleaseSourceError, discover_models, match_releases

SECRET = "sk-test-never-print-me-1234"

HUB_LISTING = [
    {"id": "meta-llama/Llama-4-Scout-17B-16E-Instruct", "modelId": "meta-llama/Llama-4-Scout-17B-16E-Instruct"},
    {"modelId": "meta-llama/Llama-3.3-70B-Instruct"},  # older hub answers carry only modelId
    {"id": "meta-llama/Llama-3.1-8B"},
    {"id": "meta-llama/Llama-Guard-3-8B"},
    {"id": "bad id with spaces"},
    {"no_id": True},
]


class HubServer:
    """A tiny Hugging Face-style hub on loopback: ``GET /api/models?author=...``."""

    def __init__(self, listing: list[dict], status: int = 200) -> None:
        self.listing = listing
        self.status = status
        self.requests: list[dict] = []
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _models(self, request: web.Request) -> web.Response:
        self.requests.append({"query": dict(request.query), "authorization": request.headers.get("Authorization")})
        if self.status != 200:
            return web.json_response({"error": "down"}, status=self.status)
        author = request.query.get("author")
        return web.json_response([m for m in self.listing if author == "meta-llama"])

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def __enter__(self) -> HubServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc_info) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_discovers_the_models_the_simulator_serves_and_their_changes():
    with TeacherSimulator(models=["meta-llama/Llama-3.1-405B-Instruct"]) as simulator:
        assert discover_models(simulator.base_url, None) == ["meta-llama/Llama-3.1-405B-Instruct"]
        simulator.set_models(["meta-llama/Llama-3.1-405B-Instruct", "meta-llama/Llama-4-Scout-17B-16E-Instruct"])
        assert discover_models(simulator.base_url + "/", None) == [
            "meta-llama/Llama-3.1-405B-Instruct",
            "meta-llama/Llama-4-Scout-17B-16E-Instruct",
        ]


def test_api_key_is_sent_to_the_endpoint_and_a_wrong_key_is_reported_without_it():
    with TeacherSimulator(models=["meta-llama/Llama-3.3-70B-Instruct"], api_key=SECRET) as simulator:
        assert discover_models(simulator.base_url, SECRET) == ["meta-llama/Llama-3.3-70B-Instruct"]
        with pytest.raises(ReleaseSourceError) as error:
            discover_models(simulator.base_url, SECRET + "-wrong")
    message = str(error.value)
    assert "401" in message and "TEACHER_API_KEY" in message
    assert SECRET not in message


def test_hub_listing_reads_id_or_model_id_for_the_author_and_skips_unusable_ids():
    with HubServer(HUB_LISTING) as hub:
        found = discover_models(None, SECRET, hub_url=hub.base_url)
        assert found == [
            "meta-llama/Llama-3.1-8B",
            "meta-llama/Llama-3.3-70B-Instruct",
            "meta-llama/Llama-4-Scout-17B-16E-Instruct",
            "meta-llama/Llama-Guard-3-8B",
        ]
        assert discover_models(None, None, hub_url=hub.base_url, hub_author="someone-else") == []
    first = hub.requests[0]
    assert first["query"]["author"] == "meta-llama" and first["query"]["sort"] == "createdAt"
    assert first["authorization"] is None  # the teacher's key is never sent to the hub


def test_endpoint_and_hub_listings_are_merged():
    with TeacherSimulator(models=["meta-llama/Llama-3.1-405B-Instruct"]) as simulator, HubServer(HUB_LISTING) as hub:
        found = discover_models(simulator.base_url, None, hub_url=hub.base_url)
    assert "meta-llama/Llama-3.1-405B-Instruct" in found
    assert "meta-llama/Llama-4-Scout-17B-16E-Instruct" in found
    assert len(found) == len(set(found)) == 5


@pytest.mark.parametrize(
    "model_id",
    [
        "meta-llama/Llama-3.1-405B-Instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Llama-3.3-70B-Instruct",
        "meta-llama/Meta-Llama-3-70B-Instruct",
        "meta-llama/Llama-4-Scout-17B-16E-Instruct",
        "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8",
    ],
)
def test_default_pattern_keeps_llama_instruct_releases(model_id):
    assert match_releases([model_id]) == [model_id]


@pytest.mark.parametrize(
    "model_id",
    [
        "meta-llama/Llama-3.1-8B",  # base model
        "meta-llama/Llama-4-Scout-17B-16E",  # base model
        "meta-llama/Llama-Guard-3-8B",
        "meta-llama/Prompt-Guard-86M",
        "mistralai/Mistral-7B-Instruct-v0.3",
        "someone/Llama-3.1-8B-Instruct",  # not Meta's release
        "Qwen/Qwen2.5-72B-Instruct",
    ],
)
def test_default_pattern_leaves_other_models_out(model_id):
    assert match_releases([model_id]) == []


def test_match_releases_deduplicates_sorts_and_honours_a_custom_pattern():
    ids = [
        "meta-llama/Llama-4-Scout-17B-16E-Instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
    ]
    assert match_releases(ids, DEFAULT_RELEASE_PATTERN) == [
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    ]
    assert match_releases(ids, r"Llama-4") == ["meta-llama/Llama-4-Scout-17B-16E-Instruct"]


def test_release_pattern_comes_from_the_environment_and_is_validated(monkeypatch):
    monkeypatch.delenv("DISTILLSET_RELEASE_PATTERN", raising=False)
    assert load_settings().refresh.release_pattern == DEFAULT_RELEASE_PATTERN
    monkeypatch.setenv("DISTILLSET_RELEASE_PATTERN", r"^meta-llama/Llama-4")
    assert load_settings().refresh.release_pattern == r"^meta-llama/Llama-4"
    monkeypatch.setenv("DISTILLSET_RELEASE_PATTERN", r"(unclosed")
    with pytest.raises(SettingsError, match="DISTILLSET_RELEASE_PATTERN"):
        load_settings()


def test_unreachable_endpoint_raises_without_the_key():
    port = _closed_port()
    with pytest.raises(ReleaseSourceError) as error:
        discover_models(f"http://127.0.0.1:{port}/v1", SECRET, timeout_s=2.0)
    message = str(error.value)
    assert "unreachable" in message and f"127.0.0.1:{port}/v1/models" in message
    assert SECRET not in message and SECRET not in repr(error.value)


def test_credentials_in_the_url_stay_out_of_the_message():
    url = f"http://user:{SECRET}@127.0.0.1:{_closed_port()}/v1?api_key={SECRET}"
    with pytest.raises(ReleaseSourceError) as error:
        discover_models(url, None, timeout_s=2.0)
    assert SECRET not in str(error.value)


def test_a_failing_hub_fails_the_call_rather_than_returning_a_partial_listing():
    with TeacherSimulator() as simulator, HubServer(HUB_LISTING, status=503) as hub:
        with pytest.raises(ReleaseSourceError, match="model hub .* HTTP 503"):
            discover_models(simulator.base_url, SECRET, hub_url=hub.base_url)


def test_a_server_that_is_not_a_model_listing_is_reported():
    with HubServer([]) as hub:
        with pytest.raises(ReleaseSourceError, match="OpenAI model list"):
            discover_models(hub.base_url + "/api", None)  # /api/models answers a list, not {"data": [...]}


def test_no_source_configured_is_a_clear_error():
    with pytest.raises(ValueError, match="no release source"):
        discover_models(None, None)
