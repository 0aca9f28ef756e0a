"""An OpenAI-compatible teacher simulator on loopback: deterministic answers, latency and faults.

It lets the whole flow run with no real endpoint (everything it answers is marked ``simulated``
downstream) and gives the teacher tests a real HTTP server with reproducible faults. It is built
on ``aiohttp.web`` and runs in a background thread with its own event loop, so sync code and
pytest can start and stop it like any object. Answers come from ``distillset.simulator.answers``,
faults from ``distillset.simulator.faults``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Mapping

from aiohttp import web

from distillset import ids
from distillset.simulator.accuracy import accuracy_of
from distillset.simulator.answers import (
    KNOWN_ANSWER_ACCURACY,
    compose_answer,
    compose_reasoning,
    content_text,
    count_tokens,
    tokenize,
)
from distillset.simulator.batch import BatchFaults, SimulatorBatches
from distillset.simulator.faults import SimulatorFaults, unit

DEFAULT_MODELS = ["meta-llama/Llama-3.1-405B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"]
SYSTEM_FINGERPRINT = "distillset-simulator"
# Mimics a context-length limit so a client has a realistic non-retriable 400 to meet.
MAX_TOKENS_LIMIT = 32768
_CLEANUP_TIMEOUT_S = 2.0
REASONING_MODES = ("reasoning_content", "reasoning", "think")
"""How a reasoning teacher sends its trace: vLLM/DeepSeek's ``reasoning_content`` field, the newer
``reasoning`` field, or a leading ``<think>...</think>`` block in the content."""


def _sampling_of(body: dict) -> dict:
    """The sampling parameters as ``TeacherSettings.sampling_params`` spells them (same hash)."""
    sampling = {}
    for name in ("temperature", "top_p", "max_tokens", "seed"):
        if body.get(name) is not None:
            sampling[name] = body[name]
    if "max_tokens" not in sampling and body.get("max_completion_tokens") is not None:
        sampling["max_tokens"] = body["max_completion_tokens"]
    return sampling


def _error(
    status: int, message: str, error_type: str, code: str | None = None, headers: dict | None = None
) -> web.Response:
    payload = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return web.json_response(payload, status=status, headers=headers)


class TeacherSimulator:
    """An OpenAI-compatible server (``/v1/models``, ``/v1/chat/completions``, the Batch API) on loopback.

    Args:
        models: model ids served (default: Llama 3.1 405B and 8B Instruct); see ``set_models``.
        latency_s: seconds every completion waits before answering.
        jitter_s: extra latency, uniform in [0, jitter_s), deterministic per request.
        faults: fault injection rates (none by default).
        api_key: if set, requests need ``Authorization: Bearer <api_key>`` or get a 401.
        host: interface to bind; loopback only unless you mean it.
        port: 0 picks a free port (see ``base_url`` after ``start``).
        answer_key: question -> reference answer, for word problems (see ``compose_answer``).
        serve_as: requested model id -> the model id the answers claim (a provider that routes elsewhere).
        accuracy: share of known word problems answered right: one value, or model id -> value
            (models not listed get ``KNOWN_ANSWER_ACCURACY``).
        model_accuracy: model id -> accuracy, over ``accuracy`` (``DISTILLSET_SIMULATOR_MODEL_ACCURACY``:
            several simulated releases of different quality, ``distillset.simulator.accuracy``).
        reasoning: send a reasoning trace with every answer, as one of ``REASONING_MODES``; None: no trace.
        batch_faults: the Batch API's completion delay, failing lines and expiry (``distillset.simulator.batch``).
    """

    def __init__(
        self,
        models: list[str] | None = None,
        *,
        latency_s: float = 0.0,
        jitter_s: float = 0.0,
        faults: SimulatorFaults | None = None,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        answer_key: Mapping[str, str] | None = None,
        serve_as: Mapping[str, str] | None = None,
        accuracy: float | Mapping[str, float] = KNOWN_ANSWER_ACCURACY,
        reasoning: str | None = None,
        model_accuracy: Mapping[str, float] | None = None,
        batch_faults: BatchFaults | None = None,
    ) -> None:
        if reasoning is not None and reasoning not in REASONING_MODES:
            raise ValueError(f"reasoning must be one of {', '.join(REASONING_MODES)}, not {reasoning!r}")
        self.accuracy = accuracy
        self.reasoning = reasoning
        self.model_accuracy = dict(model_accuracy or {})
        self.answer_key = {ids.normalize_text(q): a for q, a in (answer_key or {}).items()}
        # requested model id -> the id the answer claims, as a provider routing to another model does
        self.serve_as = dict(serve_as or {})
        self._models = list(models or DEFAULT_MODELS)
        self.latency_s = latency_s
        self.jitter_s = jitter_s
        self.faults = faults or SimulatorFaults()
        self._api_key = api_key
        self.host = host
        self.port = port
        self.base_url = ""
        self._lock = threading.Lock()
        self._requests = 0
        self._completions = 0
        self._by_outcome: Counter[str] = Counter()
        self._attempts: Counter[str] = Counter()
        self._completions_by_hash: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.batches = SimulatorBatches(self, batch_faults)

    def __repr__(self) -> str:  # never shows the api key
        return f"TeacherSimulator(base_url={self.base_url!r}, models={self._models!r})"

    # ----- lifecycle -----
    def start(self) -> TeacherSimulator:
        """Start serving in a background thread; returns once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as exc:  # reported to start() below
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                # Bounded: a client that keeps a connection open (or a fault-injected slow answer)
                # must not hold up stop(), and with it a test or a Ctrl-C, for aiohttp's 60 s grace.
                with contextlib.suppress(asyncio.TimeoutError):
                    loop.run_until_complete(asyncio.wait_for(self._runner.cleanup(), timeout=_CLEANUP_TIMEOUT_S))
                loop.close()

        self._thread = threading.Thread(target=serve, name="teacher-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise RuntimeError(
                f"teacher simulator could not start on {self.host}:{self.port}: {failure[0]}"
            ) from failure[0]
        return self

    async def _start_site(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_post("/v1/chat/completions", self._handle_chat)
        self.batches.add_routes(app.router)
        # A short shutdown grace: stop() must not wait out a fault-injected slow response.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://{self.host}:{self.port}/v1"

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> TeacherSimulator:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ----- run-time control and counters -----
    def set_models(self, models: list[str]) -> None:
        """Replace the served model list (e.g. to make a new teacher release appear)."""
        with self._lock:
            self._models = list(models)

    @property
    def models(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def stats(self) -> dict:
        """Counters since start: requests, completions served, per outcome and per request hash.

        ``completions`` counts 200 answers with content delivered to a connected client (what a
        real endpoint bills); ``completions_by_hash`` keys them by ``ids.request_hash`` of the
        request, the same key as the ledger's.
        """
        with self._lock:
            return {
                "requests": self._requests,
                "completions": self._completions,
                "by_outcome": dict(self._by_outcome),
                "completions_by_hash": dict(self._completions_by_hash),
            }

    def _count(self, outcome: str) -> None:
        with self._lock:
            self._by_outcome[outcome] += 1

    # ----- handlers -----
    def _authorized(self, request: web.Request) -> bool:
        if self._api_key is None:
            return True
        return request.headers.get("Authorization", "") == f"Bearer {self._api_key}"

    async def _handle_models(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        created = 1721692800  # Llama 3.1 release day; a fixed value keeps the listing deterministic
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "distillset-simulator"} for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self._requests += 1
        if not self._authorized(request):
            self._count("401")
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            self._count("400")
            return _error(400, "The request body is not valid JSON.", "invalid_request_error")
        problem = self._validate(body)
        if problem is not None:
            status, message, code = problem
            self._count(str(status))
            return _error(status, message, "invalid_request_error", code)

        model, messages, sampling = body["model"], body["messages"], _sampling_of(body)
        request_key = ids.request_hash(model, messages, sampling)
        with self._lock:
            self._attempts[request_key] += 1
            attempt = self._attempts[request_key]
        outcome = self.faults.pick(request_key, attempt)

        delay = self.latency_s + (self.jitter_s * unit(f"jitter:{request_key}:{attempt}") if self.jitter_s else 0.0)
        if outcome == "slow":
            delay += self.faults.slow_s
        if delay > 0:
            await asyncio.sleep(delay)

        if outcome == "429":
            self._count("429")
            return _error(
                429,
                "Rate limit reached for requests. Please try again later.",
                "rate_limit_error",
                "rate_limit_exceeded",
                headers={"Retry-After": f"{self.faults.retry_after_s:g}"},
            )
        if outcome in ("500", "503"):
            self._count(outcome)
            message = (
                "The server had an error while processing your request."
                if outcome == "500"
                else "The server is overloaded."
            )
            return _error(int(outcome), message, "server_error")
        if outcome == "drop":
            self._count("drop")
            if request.transport is not None:
                request.transport.abort()
            # aiohttp needs a response object; it is never written to the aborted transport.
            return web.Response(status=500)
        if outcome == "invalid_json":
            self._count("invalid_json")
            return web.Response(
                status=200, body=b'{"id": "chatcmpl-broken", "choices": [', content_type="application/json"
            )

        payload = self.completion(model, messages, sampling, request_key, attempt, outcome)
        if request.transport is None or request.transport.is_closing():
            # The client gave up (timeout): nothing is delivered, so nothing is billed.
            self._count("abandoned")
            return web.Response(status=499)
        self._count("empty" if outcome == "empty" else "ok" if outcome != "truncate" else "truncate")
        if outcome != "empty":
            with self._lock:
                self._completions += 1
                self._completions_by_hash[request_key] += 1
        return web.Response(text=json.dumps(payload, ensure_ascii=False), content_type="application/json")

    def completion(
        self, model: str, messages: list, sampling: dict, request_key: str, attempt: int, outcome: str = "ok"
    ) -> dict:
        """The chat completion body answering one request (also the body of a batch output line)."""
        content = (
            ""
            if outcome == "empty"
            else compose_answer(request_key, messages, self.answer_key, self._accuracy_of(model))
        )
        reasoning = compose_reasoning(request_key, messages) if self.reasoning and content else None
        if reasoning is not None and self.reasoning == "think":
            content, reasoning = f"<think>\n{reasoning}\n</think>\n\n{content}", None
        max_tokens = sampling.get("max_tokens")
        tokens = tokenize(content)
        finish_reason = "stop"
        if outcome == "truncate" and len(tokens) > 1:
            tokens = tokens[: max(1, len(tokens) // 2)]
            finish_reason = "length"
        if max_tokens is not None and len(tokens) > max_tokens:
            tokens = tokens[:max_tokens]
            finish_reason = "length"
        content = "".join(tokens).strip() if finish_reason == "length" else content
        prompt_tokens = sum(count_tokens(content_text(m.get("content"))) + 4 for m in messages) + 2
        payload = {
            "id": f"chatcmpl-{request_key[:20]}{attempt:04d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.serve_as.get(model, model),
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [
                {
                    "index": 0,
                    "message": self._message(content, reasoning),
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(tokens),
                "total_tokens": prompt_tokens + len(tokens),
            },
        }
        return payload

    def _accuracy_of(self, model: str) -> float:
        if model in self.model_accuracy:
            return accuracy_of(model, self.model_accuracy, KNOWN_ANSWER_ACCURACY)
        if isinstance(self.accuracy, Mapping):
            return float(self.accuracy.get(model, KNOWN_ANSWER_ACCURACY))
        return float(self.accuracy)

    def _message(self, content: str, reasoning: str | None) -> dict:
        message = {"role": "assistant", "content": content, "refusal": None}
        if reasoning is not None:
            message[self.reasoning] = reasoning
        return message

    def _validate(self, body) -> tuple[int, str, str | None] | None:
        if not isinstance(body, dict):
            return 400, "The request body must be a JSON object.", None
        if body.get("stream"):
            return (
                400,
                "Streaming is not supported by the distillset simulator; send stream=false.",
                "stream_unsupported",
            )
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return 400, "you must provide a model parameter", None
        if model not in self.models:
            return 404, f"The model `{model}` does not exist or you do not have access to it.", "model_not_found"
        messages = body.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, dict) and "role" in m for m in messages)
        ):
            return 400, "messages must be a non-empty list of {role, content} objects", None
        max_tokens = _sampling_of(body).get("max_tokens")
        if max_tokens is not None and (
            not isinstance(max_tokens, int) or max_tokens < 1 or max_tokens > MAX_TOKENS_LIMIT
        ):
            return (
                400,
                f"max_tokens must be an integer between 1 and {MAX_TOKENS_LIMIT}, got {max_tokens!r}.",
                "invalid_max_tokens",
            )
        return None
