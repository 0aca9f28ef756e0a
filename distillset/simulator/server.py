"""An OpenAI-compatible teacher simulator on loopback: deterministic answers, latency and faults.

It lets the whole flow run with no real endpoint (everything it answers is marked ``simulated``
downstream) and gives the teacher tests a real HTTP server with reproducible faults. It is built
on ``aiohttp.web`` and runs in a background thread with its own event loop, so sync code and
pytest can start and stop it like any object.

A request whose system prompt carries ``JUDGE_RUBRIC_MARKER`` (``distillset.quality.judge``) is answered as
a judge: a JSON rating of the answer it shows (``compose_judgment``).

Answers are a pure function of (model, messages, sampling parameters); faults are a pure function
of (seed, request hash, attempt number), so a test that turns faults on sees the same faults on
every run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from distillset import ids

DEFAULT_MODELS = ["meta-llama/Llama-3.1-405B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"]
SYSTEM_FINGERPRINT = "distillset-simulator"
REFUSAL_EN = "I'm sorry, but I can't help with that."
REFUSAL_ZH = "抱歉，我无法帮助处理这个请求。"
REFUSAL_RATE = 0.02
# With an answer key (reference answers it is handed, like a teacher that knows the subject), a
# word problem is answered right this often; without one, only by luck. It lets the demo flow pass
# its accuracy gate while still leaving wrong answers for the `wrong_answer` rule to find.
KNOWN_ANSWER_ACCURACY = 0.85
# Mimics a context-length limit so a client has a realistic non-retriable 400 to meet.
MAX_TOKENS_LIMIT = 32768
# The judge mode: a request whose system prompt carries this marker asks for a rating of the
# answer that follows JUDGE_ANSWER_HEADING in the last user message (see distillset.quality.judge).
JUDGE_RUBRIC_MARKER = "[distillset judge rubric v1]"
JUDGE_ANSWER_HEADING = "[ANSWER TO RATE]"
# Answers shorter than this (characters) are rated low by the simulated judge.
JUDGE_SHORT_ANSWER_CHARS = 40
# Share of simulated judgments wrapped in a code fence with a sentence around it, as real models
# often do, so parsers meet that shape in every flow run.
JUDGE_FENCED_RATE = 0.2

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# A token is a CJK character, a word or one punctuation mark; leading whitespace belongs to it so
# that joining a prefix of tokens reproduces a prefix of the text.
_TOKEN = re.compile(r"\s*(?:[\u3400-\u9fff\uf900-\ufaff]|[^\W_]+|[^\w\s]|_)", re.UNICODE)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_MATH_CUES = re.compile(
    r"\b(how many|how much|total|each|per|sum|cost|costs|left|remaining|percent|times|average|dollars?|\$)",
    re.IGNORECASE,
)
_STOPWORDS = frozenset(
    "about above after again also because been before being below between both could does doing down during "
    "each from further have having here into itself just more most once only other over same should some such "
    "than that their them then there these they this those through under until very what when where which while "
    "with would your write please explain describe give make using tell".split()
)


@dataclass
class SimulatorFaults:
    """Fault rates in [0, 1], drawn per (seed, request hash, attempt) so runs are reproducible.

    The rates are stacked in the order of the fields: a draw below ``rate_429`` is a 429, the next
    ``rate_500`` of the range is a 500, and so on; whatever remains is a normal answer.
    """

    rate_429: float = 0.0
    retry_after_s: float = 0.05
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_slow: float = 0.0
    slow_s: float = 5.0
    rate_drop: float = 0.0
    rate_invalid_json: float = 0.0
    rate_empty: float = 0.0
    rate_truncate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rate_429", "rate_500", "rate_503", "rate_slow", "rate_drop", "rate_invalid_json", "rate_empty", "rate_truncate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"SimulatorFaults.{name}={value!r} must be in [0, 1]")

    def pick(self, request_key: str, attempt: int) -> str:
        """The outcome for this attempt of this request: a fault name or ``"ok"``."""
        draw = _unit(f"fault:{self.seed}:{request_key}:{attempt}")
        edge = 0.0
        for outcome, rate in (
            ("429", self.rate_429),
            ("500", self.rate_500),
            ("503", self.rate_503),
            ("slow", self.rate_slow),
            ("drop", self.rate_drop),
            ("invalid_json", self.rate_invalid_json),
            ("empty", self.rate_empty),
            ("truncate", self.rate_truncate),
        ):
            edge += rate
            if draw < edge:
                return outcome
        return "ok"


def _unit(text: str) -> float:
    """A deterministic number in [0, 1) from ``text``."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64


def tokenize(text: str) -> list[str]:
    """The simulator's tokenizer: CJK characters, words and punctuation marks (whitespace kept)."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return len(tokenize(text))


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _keywords(text: str, rng: random.Random, limit: int = 4) -> list[str]:
    seen: list[str] = []
    for word in _WORD.findall(text):
        lowered = word.lower()
        if lowered not in _STOPWORDS and lowered not in seen:
            seen.append(lowered)
    if len(seen) > limit:
        seen = rng.sample(seen, limit)
    return seen or ["this topic"]


def looks_like_math(text: str) -> bool:
    """A word problem: at least two numbers and a quantity cue ("how many", "each", "$"...)."""
    return len(_NUMBER.findall(text)) >= 2 and bool(_MATH_CUES.search(text))


def _format_number(value: float) -> str:
    if abs(value - round(value)) < 1e-9:
        return str(int(round(value)))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _math_answer(question: str, rng: random.Random) -> str:
    numbers = [float(n.replace(",", "")) for n in _NUMBER.findall(question)][:4]
    a, b = numbers[0], numbers[1]
    steps = [f"First, we note the quantities given in the problem: {', '.join(_format_number(n) for n in numbers)}."]
    # A naive parser's guess: it cannot know the truth, so some answers are right and some are not.
    operation = rng.choice(["add", "multiply", "subtract", "add_all"])
    if operation == "add":
        result = a + b
        steps.append(f"Adding {_format_number(a)} and {_format_number(b)} gives {_format_number(result)}.")
    elif operation == "multiply":
        result = a * b
        steps.append(f"Multiplying {_format_number(a)} by {_format_number(b)} gives {_format_number(result)}.")
    elif operation == "subtract":
        result = abs(a - b)
        steps.append(f"The difference between {_format_number(a)} and {_format_number(b)} is {_format_number(result)}.")
    else:
        result = sum(numbers)
        steps.append(f"Adding all the quantities together gives {_format_number(result)}.")
    steps.append("So that is the answer to the question.")
    return " ".join(steps) + f"\n#### {_format_number(result)}"


def _known_math_answer(question: str, reference: str) -> str:
    numbers = [_format_number(float(n.replace(",", ""))) for n in _NUMBER.findall(question)][:4]
    return (
        f"Let's work through it step by step. The problem gives {', '.join(numbers)}. "
        f"Putting the quantities together in the order the problem describes, the result is {reference}.\n"
        f"#### {reference}"
    )


def _math_answer_zh(question: str, rng: random.Random) -> str:
    numbers = [float(n.replace(",", "")) for n in _NUMBER.findall(question)][:4]
    result = numbers[0] + numbers[1] if rng.random() < 0.5 else numbers[0] * numbers[1]
    return f"首先，题目给出的数量是 {'、'.join(_format_number(n) for n in numbers)}。\n计算得到 {_format_number(result)}。\n#### {_format_number(result)}"


def _prose_answer(question: str, rng: random.Random) -> str:
    words = _keywords(question, rng)
    topic = " and ".join(words[:2])
    paragraphs = [
        f"Here is an overview of {topic}. "
        f"The key idea is that {words[0]} depends on the context in which it is used, "
        f"and a careful answer considers {words[-1]} as well.",
        f"When thinking about {words[0]}, it helps to start from concrete examples. "
        f"Each example shows a different side of {topic}, and comparing them makes the trade-offs clear.",
    ]
    shape = rng.random()
    if shape < 0.3:
        paragraphs.append("Main points to keep in mind:\n" + "\n".join(f"- {w.capitalize()}: why it matters and how it fits." for w in words))
    elif shape < 0.45:
        name = re.sub(r"\W", "_", words[0]) or "example"
        paragraphs.append(f"A short example in Python:\n\n```python\ndef {name}(items):\n    return sorted(items)\n\nprint({name}([3, 1, 2]))\n```")
    paragraphs.append(f"In summary, {topic} rewards a step-by-step approach and attention to detail.")
    return "\n\n".join(paragraphs)


def _prose_answer_zh(question: str, rng: random.Random) -> str:
    excerpt = "".join(_CJK.findall(question))[:8] or "这个问题"
    paragraphs = [
        f"关于“{excerpt}”，我们可以从几个方面来理解。",
        "首先，需要明确问题的背景和目标；其次，要结合具体的例子进行分析。",
    ]
    if rng.random() < 0.3:
        paragraphs.append("要点：\n- 明确目标\n- 分析条件\n- 得出结论")
    paragraphs.append("总之，循序渐进地思考，才能得到可靠的答案。")
    return "\n\n".join(paragraphs)


def is_judge_request(messages: list[dict]) -> bool:
    """A request for a judgment: a system message carries ``JUDGE_RUBRIC_MARKER``."""
    return any(m.get("role") == "system" and JUDGE_RUBRIC_MARKER in _content_text(m.get("content")) for m in messages)


def compose_judgment(request_key: str, messages: list[dict]) -> str:
    """The simulated judge's answer: a JSON object ``{"score": 1-10, "rationale": "..."}``.

    The score is drawn from the request hash (5 to 10 for an ordinary answer) and is low for a
    refusal (1 or 2) or a very short answer (2 or 3), so the judgment sometimes disagrees with the
    heuristic score. A deterministic share is wrapped in a code fence with prose around it.
    """
    last_user = next((_content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    answer = last_user.rsplit(JUDGE_ANSWER_HEADING, 1)[-1].strip()
    draw = _unit(f"judge:{request_key}")
    if answer in (REFUSAL_EN, REFUSAL_ZH) or answer.lower().startswith(("i'm sorry", "i cannot", "i can't")):
        score, rationale = 1 + int(draw * 2), "The answer refuses the request instead of helping."
    elif len(answer) < JUDGE_SHORT_ANSWER_CHARS:
        score, rationale = 2 + int(draw * 2), "The answer is too short to be helpful or show its reasoning."
    else:
        score = 5 + int(draw * 6)
        rationale = (
            "A clear, complete answer that follows the instruction."
            if score >= 8
            else "A reasonable answer, but it is generic and could be more specific."
        )
    judgment = json.dumps({"score": score, "rationale": rationale})
    if _unit(f"judge-fence:{request_key}") < JUDGE_FENCED_RATE:
        return f"Here is my evaluation:\n```json\n{judgment}\n```\nI hope this helps."
    return judgment


def compose_answer(request_key: str, messages: list[dict], answer_key: Mapping[str, str] | None = None) -> str:
    """The simulator's full (untruncated) answer to a conversation, a pure function of its key.

    ``answer_key`` maps a question (normalized with ``ids.normalize_text``) to its reference
    answer; a word problem found there is answered right with probability ``KNOWN_ANSWER_ACCURACY``.
    A judge request (see ``is_judge_request``) gets ``compose_judgment`` instead.
    """
    if is_judge_request(messages):
        return compose_judgment(request_key, messages)
    rng = random.Random(request_key)
    last_user = next((_content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    chinese = bool(_CJK.search(last_user))
    if _unit(f"refusal:{request_key}") < REFUSAL_RATE:
        return REFUSAL_ZH if chinese else REFUSAL_EN
    if looks_like_math(last_user):
        reference = (answer_key or {}).get(ids.normalize_text(last_user))
        if reference and not chinese and _unit(f"accuracy:{request_key}") < KNOWN_ANSWER_ACCURACY:
            return _known_math_answer(last_user, reference)
        return _math_answer_zh(last_user, rng) if chinese else _math_answer(last_user, rng)
    return _prose_answer_zh(last_user, rng) if chinese else _prose_answer(last_user, rng)


def _sampling_of(body: dict) -> dict:
    """The sampling parameters as ``TeacherSettings.sampling_params`` spells them (same hash)."""
    sampling = {}
    for name in ("temperature", "top_p", "max_tokens", "seed"):
        if body.get(name) is not None:
            sampling[name] = body[name]
    if "max_tokens" not in sampling and body.get("max_completion_tokens") is not None:
        sampling["max_tokens"] = body["max_completion_tokens"]
    return sampling


def _error(status: int, message: str, error_type: str, code: str | None = None, headers: dict | None = None) -> web.Response:
    payload = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return web.json_response(payload, status=status, headers=headers)


class TeacherSimulator:
    """An OpenAI-compatible server (``/v1/models``, ``/v1/chat/completions``) on loopback.

    Args:
        models: model ids served (default: Llama 3.1 405B and 8B Instruct); see ``set_models``.
        latency_s: seconds every completion waits before answering.
        jitter_s: extra latency, uniform in [0, jitter_s), deterministic per request.
        faults: fault injection rates (none by default).
        api_key: if set, requests need ``Authorization: Bearer <api_key>`` or get a 401.
        host: interface to bind; loopback only unless you mean it.
        port: 0 picks a free port (see ``base_url`` after ``start``).
        answer_key: question -> reference answer, for word problems (see ``compose_answer``).
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
    ) -> None:
        self.answer_key = {ids.normalize_text(q): a for q, a in (answer_key or {}).items()}
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

    def __repr__(self) -> str:  # never shows the api key
        return f"TeacherSimulator(base_url={self.base_url!r}, models={self._models!r})"

    # ----- lifecycle -----
    def start(self) -> "TeacherSimulator":
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
                loop.run_until_complete(self._runner.cleanup())
                loop.close()

        self._thread = threading.Thread(target=serve, name="teacher-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"teacher simulator could not start on {self.host}:{self.port}: {failure[0]}") from failure[0]
        return self

    async def _start_site(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_post("/v1/chat/completions", self._handle_chat)
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

    def __enter__(self) -> "TeacherSimulator":
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
        data = [{"id": m, "object": "model", "created": created, "owned_by": "distillset-simulator"} for m in self.models]
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

        delay = self.latency_s + (self.jitter_s * _unit(f"jitter:{request_key}:{attempt}") if self.jitter_s else 0.0)
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
            message = "The server had an error while processing your request." if outcome == "500" else "The server is overloaded."
            return _error(int(outcome), message, "server_error")
        if outcome == "drop":
            self._count("drop")
            if request.transport is not None:
                request.transport.abort()
            # aiohttp needs a response object; it is never written to the aborted transport.
            return web.Response(status=500)
        if outcome == "invalid_json":
            self._count("invalid_json")
            return web.Response(status=200, body=b'{"id": "chatcmpl-broken", "choices": [', content_type="application/json")

        content = "" if outcome == "empty" else compose_answer(request_key, messages, self.answer_key)
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
        prompt_tokens = sum(count_tokens(_content_text(m.get("content"))) + 4 for m in messages) + 2
        payload = {
            "id": f"chatcmpl-{request_key[:20]}{attempt:04d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
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

    def _validate(self, body) -> tuple[int, str, str | None] | None:
        if not isinstance(body, dict):
            return 400, "The request body must be a JSON object.", None
        if body.get("stream"):
            return 400, "Streaming is not supported by the distillset simulator; send stream=false.", "stream_unsupported"
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return 400, "you must provide a model parameter", None
        if model not in self.models:
            return 404, f"The model `{model}` does not exist or you do not have access to it.", "model_not_found"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) and "role" in m for m in messages):
            return 400, "messages must be a non-empty list of {role, content} objects", None
        max_tokens = _sampling_of(body).get("max_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1 or max_tokens > MAX_TOKENS_LIMIT):
            return 400, f"max_tokens must be an integer between 1 and {MAX_TOKENS_LIMIT}, got {max_tokens!r}.", "invalid_max_tokens"
        return None
