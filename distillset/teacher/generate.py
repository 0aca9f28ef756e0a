"""Teacher generation: answer every conversation once, through the ledger, against a flaky endpoint.

``generate`` is the one entry point. It streams the conversations through a fixed pool of workers
(``max_concurrency`` requests in flight at most, memory flat however many prompts there are),
looks every turn up in the ledger before paying for it, writes every answer to the ledger as it
arrives, retries what is worth retrying (see ``distillset.teacher.retry``), respects client-side rate
limits (``distillset.teacher.rate_limit``) and a token / dollar budget, and returns one row per
conversation in the ``teacher_generations`` layout of ``docs/engine.md``.

The API key is handed to the SDK client and nowhere else: errors are built from status codes and
server messages with the key redacted, the ledger stores the endpoint's scheme and host only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

import polars as pl
from openai import AsyncOpenAI, DefaultAioHttpClient

from distillset import ids
from distillset.config import TeacherSettings
from distillset.teacher.ledger import Ledger, LedgerAnswer, LedgerWriter
from distillset.teacher.rate_limit import RateLimiter, estimate_tokens
from distillset.teacher.retry import EmptyAnswerError, RetryPolicy, classify
from distillset.simulator.server import DEFAULT_MODELS, TeacherSimulator

log = logging.getLogger(__name__)

# Conversations are looked up in the ledger in chunks of this many (one SQL query per chunk).
_LOOKUP_CHUNK = 256
# Finished rows become a polars frame every this many rows, so output memory is compact strings.
_FRAME_CHUNK = 1024

GENERATIONS_SCHEMA: dict[str, pl.DataType] = {
    "teacher_model": pl.String,
    "prompt_id": pl.String,
    "status": pl.String,
    "messages_json": pl.String,
    "response": pl.String,
    "finish_reason": pl.String,
    "request_hash": pl.String,
    "request_hashes": pl.List(pl.String),
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "latency_ms": pl.Float64,
    "attempts": pl.Int64,
    "response_id": pl.String,
    "simulated": pl.Boolean,
    "sampling_json": pl.String,
    "generated_at": pl.Datetime("us", "UTC"),
    "error": pl.String,
}
"""The ``teacher_generations`` columns of ``docs/engine.md``, in order."""


@dataclass(frozen=True)
class Conversation:
    """One prompt to answer, from the ``prompt_pool`` table."""

    prompt_id: str
    system: str | None
    turns: list[str]


@dataclass(frozen=True)
class TeacherEndpoint:
    """Where requests go. ``simulated`` marks everything answered as simulator output."""

    base_url: str
    api_key: str | None = field(repr=False)
    simulated: bool

    @property
    def description(self) -> str:
        """For log lines: the simulator's loopback URL, or a real endpoint's ``public_address``."""
        return f"the embedded simulator at {self.base_url}" if self.simulated else self.public_address

    @property
    def public_address(self) -> str:
        """Scheme, host and port only (never user info, path or query, which may carry a key)."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}"


@contextlib.contextmanager
def open_endpoint(settings: TeacherSettings, **simulator_kwargs) -> Iterator[TeacherEndpoint]:
    """The configured endpoint, or a ``TeacherSimulator`` on a free loopback port for the duration.

    Args:
        settings: ``base_url=None`` starts the simulator (``simulated=True``).
        **simulator_kwargs: passed to ``TeacherSimulator`` (latency_s, faults, api_key, models...).
    """
    if settings.base_url is not None:
        yield TeacherEndpoint(base_url=settings.base_url, api_key=settings.api_key, simulated=False)
        return
    models = simulator_kwargs.pop("models", None) or list(dict.fromkeys([settings.model, *DEFAULT_MODELS]))
    simulator_kwargs.setdefault("port", 0)
    with TeacherSimulator(models, **simulator_kwargs) as simulator:
        yield TeacherEndpoint(base_url=simulator.base_url, api_key=simulator_kwargs.get("api_key"), simulated=True)


@dataclass
class GenerationStats:
    """What one ``generate`` call did and spent.

    Tokens and cost count paid requests only. ``failures`` counts requests that failed after
    their retries (or at once for 400/401/403/404/422); conversations skipped because the budget
    ran out are not failures of the endpoint and are described by ``budget_message``.
    """

    conversations: int = 0
    requests_needed: int = 0
    cache_hits: int = 0
    requests_paid: int = 0
    failures: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated_cost_usd: float = 0.0
    budget_exhausted: bool = False
    budget_message: str | None = None
    elapsed_s: float = 0.0

    def as_metadata(self) -> dict:
        """Plain values for asset metadata (no secrets: there are none here)."""
        return {
            "conversations": self.conversations,
            "requests_needed": self.requests_needed,
            "cache_hits": self.cache_hits,
            "requests_paid": self.requests_paid,
            "failures": self.failures,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "estimated_cost_usd": round(self.estimated_cost_usd, 6),
            "budget_exhausted": self.budget_exhausted,
            "budget_message": self.budget_message or "",
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass
class GenerationProgress:
    """A snapshot for progress logs (``total`` is None while the input length is unknown)."""

    done: int
    total: int | None
    answers_per_s: float
    tokens_per_s: float
    retries: int
    failures: int
    eta_s: float | None

    def __str__(self) -> str:
        total = "?" if self.total is None else str(self.total)
        eta = "?" if self.eta_s is None else f"{self.eta_s:.0f}s"
        return (
            f"{self.done}/{total} conversations, {self.answers_per_s:.1f} answers/s, "
            f"{self.tokens_per_s:.0f} tokens/s, {self.retries} retries, {self.failures} failed, eta {eta}"
        )


@dataclass
class GenerationResult:
    generations: pl.DataFrame
    stats: GenerationStats


_NOT_LOOKED_UP = object()
"""Marks a turn whose ledger lookup has not been done yet (None means: looked up, not found)."""


@dataclass(frozen=True)
class _TurnOutcome:
    answer: LedgerAnswer | None = None
    error: str | None = None


def generate(
    conversations: Iterable[Conversation],
    settings: TeacherSettings,
    endpoint: TeacherEndpoint,
    ledger: Ledger,
    *,
    run_id: str | None = None,
    on_progress: Callable[[GenerationProgress], None] | None = None,
    progress_interval_s: float = 5.0,
    retry_policy: RetryPolicy | None = None,
) -> GenerationResult:
    """Answer every conversation with the teacher, paying only for answers not in the ledger.

    Args:
        conversations: streamed once; may be a generator (memory stays flat).
        settings: model, sampling, concurrency, rate limits, retries, timeout, budget.
        endpoint: from ``open_endpoint``.
        ledger: the ledger consulted before every request and appended to after it.
        run_id: recorded with every answer and failure (default: a new random id).
        on_progress: called every ``progress_interval_s`` seconds and once at the end.
        progress_interval_s: see ``on_progress``.
        retry_policy: backoff shape (default: 0.5 s base, 30 s cap, full jitter).

    Returns:
        One ``teacher_generations`` row per input conversation, in input order, and the stats.
    """
    if settings.max_concurrency < 1:
        raise ValueError(f"max_concurrency must be >= 1, got {settings.max_concurrency}")
    if settings.max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {settings.max_retries}")
    run = _Run(
        settings,
        endpoint,
        ledger,
        run_id=run_id or uuid.uuid4().hex,
        on_progress=on_progress,
        progress_interval_s=progress_interval_s,
        retry_policy=retry_policy or RetryPolicy(),
        total=len(conversations) if hasattr(conversations, "__len__") else None,
    )
    return _run_sync(run.main(conversations))


def _run_sync(coroutine):
    """Run ``coroutine`` on a fresh loop, in a helper thread if this thread already runs one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="teacher-generate")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class _Run:
    """The state of one ``generate`` call (lives on its event loop)."""

    def __init__(
        self,
        settings: TeacherSettings,
        endpoint: TeacherEndpoint,
        ledger: Ledger,
        *,
        run_id: str,
        on_progress: Callable[[GenerationProgress], None] | None,
        progress_interval_s: float,
        retry_policy: RetryPolicy,
        total: int | None,
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.ledger = ledger
        self.run_id = run_id
        self.on_progress = on_progress
        self.progress_interval_s = progress_interval_s
        self.retry_policy = retry_policy
        self.total = total
        self.sampling = settings.sampling_params()
        self.sampling_json = ids.canonical_json(self.sampling)
        self.address = endpoint.public_address
        self.stats = GenerationStats()
        self.limiter = RateLimiter(settings.requests_per_minute, settings.tokens_per_minute)
        self.rng = random.Random()
        self.inflight: dict[str, asyncio.Future] = {}
        self.writer: LedgerWriter | None = None
        self.client: AsyncOpenAI | None = None
        self.done = 0
        self.started = time.monotonic()
        self.rows_pending: dict[int, tuple] = {}
        self.next_row = 0
        self.row_buffer: list[tuple] = []
        self.frames: list[pl.DataFrame] = []

    # ----- redaction -----
    def redact(self, text: str) -> str:
        key = self.endpoint.api_key
        if key and key in text:
            text = text.replace(key, "***")
        return text

    # ----- main -----
    async def main(self, conversations: Iterable[Conversation]) -> GenerationResult:
        workers_count = self.settings.max_concurrency
        queue: asyncio.Queue = asyncio.Queue(maxsize=max(2 * workers_count, _LOOKUP_CHUNK))
        self.client = AsyncOpenAI(
            base_url=self.endpoint.base_url,
            api_key=self.endpoint.api_key or "not-needed",
            max_retries=0,
            timeout=self.settings.timeout_s,
            http_client=DefaultAioHttpClient(),
        )
        progress_task = None
        try:
            # Group commit: the writer thread commits whatever has arrived each time it wakes, so an
            # answer is durable (and survives kill -9) milliseconds after it arrives, while commits
            # still batch under load.
            with self.ledger.writer(run_id=self.run_id, batch_size=1) as writer:
                self.writer = writer
                async with self.client:
                    if self.on_progress is not None:
                        progress_task = asyncio.create_task(self._report_progress())
                    workers = [asyncio.create_task(self._worker(queue)) for _ in range(workers_count)]
                    producer = asyncio.create_task(self._produce(conversations, queue, workers_count))
                    try:
                        await asyncio.gather(producer, *workers)
                    except BaseException:
                        for task in (producer, *workers):
                            task.cancel()
                        await asyncio.gather(producer, *workers, return_exceptions=True)
                        raise
        finally:
            if progress_task is not None:
                progress_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await progress_task
        self.stats.elapsed_s = time.monotonic() - self.started
        if self.on_progress is not None:
            self.on_progress(self._progress())
        self._flush_rows(final=True)
        frame = pl.concat(self.frames, how="vertical") if self.frames else pl.DataFrame(schema=GENERATIONS_SCHEMA)
        if self.stats.budget_exhausted:
            log.warning("%s", self.stats.budget_message)
        return GenerationResult(generations=frame, stats=self.stats)

    async def _produce(self, conversations: Iterable[Conversation], queue: asyncio.Queue, workers_count: int) -> None:
        chunk: list[tuple[int, Conversation]] = []
        index = 0
        for conversation in conversations:
            chunk.append((index, conversation))
            index += 1
            if len(chunk) >= _LOOKUP_CHUNK:
                await self._enqueue(chunk, queue)
                chunk = []
        if chunk:
            await self._enqueue(chunk, queue)
        if self.total is None or self.total != index:
            self.total = index
        for _ in range(workers_count):
            await queue.put(None)

    async def _enqueue(self, chunk: list[tuple[int, Conversation]], queue: asyncio.Queue) -> None:
        first_keys = {}
        for index, conversation in chunk:
            messages = self._first_messages(conversation)
            if messages is not None:
                first_keys[index] = ids.request_hash(self.settings.model, messages, self.sampling)
        found = self.ledger.lookup(first_keys.values()) if first_keys else {}
        for index, conversation in chunk:
            key = first_keys.get(index)
            await queue.put((index, conversation, key, found.get(key) if key is not None else None))

    async def _worker(self, queue: asyncio.Queue) -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            index, conversation, first_key, first_answer = item
            row = await self._converse(conversation, first_key, first_answer)
            self.done += 1
            self._store_row(index, row)

    # ----- one conversation -----
    def _system_of(self, conversation: Conversation) -> str | None:
        return conversation.system if conversation.system is not None else self.settings.system_prompt

    def _first_messages(self, conversation: Conversation) -> list[dict] | None:
        if not isinstance(conversation, Conversation) or not conversation.turns:
            return None
        system = self._system_of(conversation)
        messages = [{"role": "system", "content": system}] if system else []
        return messages + [{"role": "user", "content": conversation.turns[0]}]

    async def _converse(self, conversation: Conversation, first_key: str | None, first_answer: LedgerAnswer | None) -> tuple:
        """All turns of one conversation, in order; the first turn's key and ledger lookup come
        from the producer (batched), later turns are looked up one by one (they depend on the
        earlier answers)."""
        self.stats.conversations += 1
        if not isinstance(conversation, Conversation):
            return self._row(str(getattr(conversation, "prompt_id", "")), [], [], [], f"not a Conversation: {type(conversation).__name__}")
        if not conversation.turns or any(not isinstance(t, str) or not t.strip() for t in conversation.turns):
            return self._row(conversation.prompt_id, [], [], [], "conversation has an empty or missing user turn")
        system = self._system_of(conversation)
        messages: list[dict] = [{"role": "system", "content": system}] if system else []
        hashes: list[str] = []
        answers: list[LedgerAnswer] = []
        for turn_index, turn in enumerate(conversation.turns):
            messages = messages + [{"role": "user", "content": turn}]
            key = first_key if turn_index == 0 and first_key else ids.request_hash(self.settings.model, messages, self.sampling)
            hashes.append(key)
            self.stats.requests_needed += 1
            outcome = await self._answer(messages, key, first_answer if turn_index == 0 else _NOT_LOOKED_UP)
            if outcome.answer is None:
                return self._row(conversation.prompt_id, messages, hashes, answers, outcome.error)
            answers.append(outcome.answer)
            messages = messages + [{"role": "assistant", "content": outcome.answer.content}]
        return self._row(conversation.prompt_id, messages, hashes, answers, None)

    async def _answer(self, messages: list[dict], key: str, known) -> _TurnOutcome:
        """One turn: from the ledger, from an identical request already in flight, or paid.

        ``known`` is the ledger's answer when the caller already looked it up (None: not there),
        or ``_NOT_LOOKED_UP``.
        """
        looked_up = known is not _NOT_LOOKED_UP
        if not looked_up or known is None:
            known = self.writer.pending(key)
        if known is None and key in self.inflight:
            outcome = await asyncio.shield(self.inflight[key])
            if outcome.answer is not None:
                self.stats.cache_hits += 1
            return outcome
        if known is None and not looked_up:
            known = self.ledger.lookup([key]).get(key)
        if known is not None:
            self.stats.cache_hits += 1
            return _TurnOutcome(answer=known)
        budget_message = self._budget_message()
        if budget_message is not None:
            return _TurnOutcome(error=budget_message)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.inflight[key] = future
        try:
            outcome = await self._call(messages, key)
            future.set_result(outcome)
            return outcome
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marks it retrieved when nobody else waits on it
            raise
        finally:
            del self.inflight[key]

    async def _call(self, messages: list[dict], key: str) -> _TurnOutcome:
        """Send one request, retrying what is worth retrying; record the answer or the failure."""
        settings = self.settings
        estimated = estimate_tokens(messages, settings.max_tokens) if self.limiter.tokens is not None else 0
        attempts = 0
        for retry_index in range(settings.max_retries + 1):
            await self.limiter.acquire(estimated)
            attempts += 1
            started = time.perf_counter()
            try:
                response = await self.client.chat.completions.create(model=settings.model, messages=messages, **self.sampling)
                if isinstance(response, str):
                    # The SDK returns raw text when the body is not labelled JSON.
                    raise EmptyAnswerError("response body is not a chat completion")
                choice = response.choices[0] if response.choices else None
                content = choice.message.content if choice is not None and choice.message is not None else None
                if not content or not content.strip():
                    raise EmptyAnswerError("empty answer content")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # classified below; unknown ones fail this request, not the run
                self.limiter.correct(estimated, 0)
                problem = classify(exc)
                if problem is None:
                    reason, status, retriable, retry_after = f"unexpected {type(exc).__name__}: {exc}", None, False, None
                else:
                    reason, status, retriable, retry_after = problem.reason, problem.status_code, problem.retriable, problem.retry_after_s
                reason = self.redact(reason)
                if retriable and retry_index < settings.max_retries:
                    self.stats.retries += 1
                    delay = self.retry_policy.delay(retry_index, retry_after, self.rng)
                    log.debug("retrying request %s in %.2fs after: %s", key[:12], delay, reason)
                    await asyncio.sleep(delay)
                    continue
                error = f"{reason} (after {attempts} attempt{'s' if attempts != 1 else ''})"
                self.stats.failures += 1
                self.writer.add_failure(key, settings.model, error, status_code=status, attempts=attempts)
                log.info("request %s failed: %s", key[:12], error)
                return _TurnOutcome(error=error)
            latency_ms = (time.perf_counter() - started) * 1000.0
            usage = response.usage
            prompt_tokens = int(usage.prompt_tokens) if usage is not None else 0
            completion_tokens = int(usage.completion_tokens) if usage is not None else 0
            self.limiter.correct(estimated, prompt_tokens + completion_tokens)
            answer = LedgerAnswer(
                request_hash=key,
                model=settings.model,
                messages_json=ids.canonical_json(messages),
                sampling_json=self.sampling_json,
                content=content,
                finish_reason=choice.finish_reason,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                latency_ms=latency_ms,
                attempts=attempts,
                response_id=response.id,
                endpoint=self.address,
                simulated=self.endpoint.simulated,
                created_at=datetime.now(timezone.utc),
                run_id=self.run_id,
            )
            self.writer.add_answer(answer)
            self.stats.requests_paid += 1
            self.stats.prompt_tokens += prompt_tokens
            self.stats.completion_tokens += completion_tokens
            self.stats.estimated_cost_usd += (
                prompt_tokens * settings.price_input_per_mtok + completion_tokens * settings.price_output_per_mtok
            ) / 1_000_000
            return _TurnOutcome(answer=answer)
        raise AssertionError("unreachable: the retry loop always returns")

    def _budget_message(self) -> str | None:
        if self.stats.budget_exhausted:
            return self.stats.budget_message
        settings, stats = self.settings, self.stats
        spent_tokens = stats.prompt_tokens + stats.completion_tokens
        reached = None
        if settings.budget_tokens is not None and spent_tokens >= settings.budget_tokens:
            reached = f"{spent_tokens} tokens spent of a {settings.budget_tokens}-token budget"
        elif settings.budget_usd is not None and stats.estimated_cost_usd >= settings.budget_usd:
            reached = f"${stats.estimated_cost_usd:.4f} spent of a ${settings.budget_usd:.4f} budget"
        if reached is None:
            return None
        stats.budget_exhausted = True
        stats.budget_message = (
            f"budget exhausted: {reached} after {stats.requests_paid} paid requests; "
            "conversations not yet answered were not generated this run (rerun with a larger budget to continue)"
        )
        return stats.budget_message

    # ----- rows and frame -----
    def _row(self, prompt_id: str, messages: list[dict], hashes: list[str], answers: list[LedgerAnswer], error: str | None) -> tuple:
        last = answers[-1] if answers and error is None else None
        finish_reason = None
        if last is not None:
            finish_reason = "length" if any(a.finish_reason == "length" for a in answers) else last.finish_reason
        return (
            self.settings.model,
            prompt_id,
            "ok" if error is None else "failed",
            _conversation_json(messages, last),
            last.content if last is not None else None,
            finish_reason,
            hashes[-1] if hashes else "",
            hashes,
            sum(a.prompt_tokens for a in answers),
            sum(a.completion_tokens for a in answers),
            float(sum(a.latency_ms for a in answers)),
            sum(a.attempts for a in answers),
            last.response_id if last is not None else None,
            self.endpoint.simulated,
            self.sampling_json,
            last.created_at if last is not None else None,
            error,
        )

    def _store_row(self, index: int, row: tuple) -> None:
        # Rows finish out of order; a small reorder buffer (about the worker count) restores input order.
        self.rows_pending[index] = row
        while self.next_row in self.rows_pending:
            self.row_buffer.append(self.rows_pending.pop(self.next_row))
            self.next_row += 1
        if len(self.row_buffer) >= _FRAME_CHUNK:
            self._flush_rows()

    def _flush_rows(self, *, final: bool = False) -> None:
        if self.row_buffer:
            self.frames.append(pl.DataFrame(self.row_buffer, schema=GENERATIONS_SCHEMA, orient="row"))
            self.row_buffer = []
        if final and self.rows_pending:
            raise AssertionError(f"{len(self.rows_pending)} generation rows were never placed in order")

    # ----- progress -----
    def _progress(self) -> GenerationProgress:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        tokens = self.stats.prompt_tokens + self.stats.completion_tokens
        eta = None
        if self.total is not None and rate > 0:
            eta = max(0.0, (self.total - self.done) / rate)
        return GenerationProgress(
            done=self.done,
            total=self.total,
            answers_per_s=rate,
            tokens_per_s=tokens / elapsed,
            retries=self.stats.retries,
            failures=self.stats.failures,
            eta_s=eta,
        )

    async def _report_progress(self) -> None:
        while True:
            await asyncio.sleep(self.progress_interval_s)
            try:
                self.on_progress(self._progress())
            except Exception:  # a broken progress callback must not stop a paid run
                log.exception("progress callback failed")


def _conversation_json(messages: list[dict], last: LedgerAnswer | None) -> str:
    """Canonical JSON of the whole conversation. For a finished one it extends the last turn's
    stored request JSON (same key, same messages) by the answer instead of re-encoding it all."""
    if last is None:
        return ids.canonical_json(messages) if messages else "[]"
    return f"{last.messages_json[:-1]},{ids.canonical_json(messages[-1])}]"


def conversations_from_frame(frame: pl.DataFrame) -> Iterator[Conversation]:
    """Conversations from rows with ``prompt_id``, ``system`` and ``turns`` (the prompt_pool layout)."""
    for row in frame.select("prompt_id", "system", "turns").iter_rows():
        yield Conversation(prompt_id=row[0], system=row[1], turns=list(row[2] or []))
