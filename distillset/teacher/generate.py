"""Teacher generation: answer every conversation once, through the ledger, against a flaky endpoint.

``generate`` is the one entry point. It streams the conversations through a fixed pool of workers
(``max_concurrency`` requests in flight at most, memory flat however many prompts there are),
looks every turn up in the ledger before paying for it, writes every answer to the ledger as it
arrives, retries what is worth retrying (``distillset.teacher.request``), respects client-side
rate limits (``distillset.teacher.rate_limit``) and a token / dollar budget
(``distillset.teacher.accounting``), and returns one row per conversation in the
``teacher_generations`` layout of ``docs/engine.md`` (``distillset.teacher.rows``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import polars as pl
from openai import AsyncOpenAI, DefaultAioHttpClient

from distillset import ids
from distillset.settings import TeacherSettings
from distillset.teacher.accounting import GenerationProgress, GenerationStats, progress
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.leases import Leases, LeaseStats, lease_owner
from distillset.teacher.ledger import Ledger, LedgerAnswer
from distillset.teacher.request import RequestSender, TurnOutcome
from distillset.teacher.retry import RetryPolicy
from distillset.teacher.rows import Conversation, RowCollector, generation_row

log = logging.getLogger(__name__)

# Conversations are looked up in the ledger in chunks of this many (one SQL query per chunk).
_LOOKUP_CHUNK = 256


@dataclass
class GenerationResult:
    generations: pl.DataFrame
    stats: GenerationStats
    leases: LeaseStats | None = None
    """What claiming request keys cost and how often another worker had a key first."""


_NOT_LOOKED_UP = object()
"""Marks a turn whose ledger lookup has not been done yet (None means: looked up, not found)."""


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
        endpoint: from ``distillset.simulator.endpoint.open_endpoint`` (or built directly).
        ledger: the ledger consulted before every request and appended to after it.
        run_id: recorded with every answer and failure (default: a new random id).
        on_progress: called every ``progress_interval_s`` seconds and once at the end.
        progress_interval_s: see ``on_progress``.
        retry_policy: backoff shape (default: 0.5 s base, 30 s cap, full jitter).

    Returns:
        One ``teacher_generations`` row per input conversation, in input order, and the stats.
    """
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
    """One ``generate`` call on its event loop: the producer, the workers and the turn logic.

    Sending a request is ``RequestSender``'s job, counting is ``GenerationStats``', ordering rows
    is ``RowCollector``'s; what is left here is which turn needs paying for.
    """

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
        self.stats = GenerationStats()
        self.rows = RowCollector()
        self.inflight: dict[str, asyncio.Future] = {}
        self.leases = Leases(ledger, lease_owner(run_id), settings.lease_s)
        self.sender: RequestSender | None = None
        self.done = 0
        self.started = time.monotonic()

    async def main(self, conversations: Iterable[Conversation]) -> GenerationResult:
        workers_count = self.settings.max_concurrency
        queue: asyncio.Queue = asyncio.Queue(maxsize=max(2 * workers_count, _LOOKUP_CHUNK))
        client = AsyncOpenAI(
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
            with self.ledger.writer(run_id=self.run_id, batch_size=1, lease_owner=self.leases.owner) as writer:
                self.leases.writer = writer  # claims share the writer's transactions
                self.sender = RequestSender(
                    client,
                    self.settings,
                    self.endpoint,
                    writer,
                    self.stats,
                    run_id=self.run_id,
                    retry_policy=self.retry_policy,
                )
                async with client:
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
            # After the writer closed (its answers are committed): keys still claimed were not paid
            # (a stop, an error); other workers may take them at once instead of at expiry.
            try:
                self.leases.release_all()
            except Exception:  # an unreachable ledger must not hide the run's own error
                log.exception("could not release the run's request leases")
            if progress_task is not None:
                progress_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await progress_task
        self.stats.elapsed_s = time.monotonic() - self.started
        self.stats.finish()
        if self.on_progress is not None:
            self.on_progress(self._progress())
        if self.stats.budget_exhausted:
            log.warning("%s", self.stats.budget_message)
        return GenerationResult(generations=self.rows.frame(), stats=self.stats, leases=self.leases.stats)

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
        found = self.ledger.lookup(first_keys.values(), origin=self.endpoint.origin) if first_keys else {}
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
            self.rows.add(index, row)

    # ----- one conversation -----
    def _system_of(self, conversation: Conversation) -> str | None:
        return conversation.system if conversation.system is not None else self.settings.sampling.system_prompt

    def _first_messages(self, conversation: Conversation) -> list[dict] | None:
        if not isinstance(conversation, Conversation) or not conversation.turns:
            return None
        system = self._system_of(conversation)
        messages = [{"role": "system", "content": system}] if system else []
        return messages + [{"role": "user", "content": conversation.turns[0]}]

    def _row(
        self,
        prompt_id: str,
        messages: list[dict],
        hashes: list[str],
        answers: list[LedgerAnswer],
        error: str | None,
        *,
        skipped: bool = False,
    ) -> tuple:
        return generation_row(
            model=self.settings.model,
            prompt_id=prompt_id,
            messages=messages,
            hashes=hashes,
            answers=answers,
            error=error,
            skipped=skipped,
            simulated=self.endpoint.simulated,
            sampling_json=self.sender.sampling_json,
        )

    async def _converse(
        self, conversation: Conversation, first_key: str | None, first_answer: LedgerAnswer | None
    ) -> tuple:
        """All turns of one conversation, in order; the first turn's key and ledger lookup come
        from the producer (batched), later turns are looked up one by one (they depend on the
        earlier answers)."""
        self.stats.conversations += 1
        if not isinstance(conversation, Conversation):
            return self._row(
                str(getattr(conversation, "prompt_id", "")),
                [],
                [],
                [],
                f"not a Conversation: {type(conversation).__name__}",
            )
        if not conversation.turns or any(not isinstance(t, str) or not t.strip() for t in conversation.turns):
            return self._row(conversation.prompt_id, [], [], [], "conversation has an empty or missing user turn")
        system = self._system_of(conversation)
        messages: list[dict] = [{"role": "system", "content": system}] if system else []
        hashes: list[str] = []
        answers: list[LedgerAnswer] = []
        for turn_index, turn in enumerate(conversation.turns):
            messages = messages + [{"role": "user", "content": turn}]
            key = (
                first_key
                if turn_index == 0 and first_key
                else ids.request_hash(self.settings.model, messages, self.sampling)
            )
            hashes.append(key)
            self.stats.requests_needed += 1
            outcome = await self._answer(messages, key, first_answer if turn_index == 0 else _NOT_LOOKED_UP)
            if outcome.answer is None:
                if outcome.skipped:
                    self.stats.skipped_for_budget += 1
                return self._row(
                    conversation.prompt_id, messages, hashes, answers, outcome.error, skipped=outcome.skipped
                )
            answers.append(outcome.answer)
            messages = messages + [{"role": "assistant", "content": outcome.answer.content}]
        return self._row(conversation.prompt_id, messages, hashes, answers, None)

    async def _answer(self, messages: list[dict], key: str, known) -> TurnOutcome:
        """One turn: from the ledger, from an identical request already in flight, or paid.

        ``known`` is the ledger's answer when the caller already looked it up (None: not there),
        or ``_NOT_LOOKED_UP``.
        """
        looked_up = known is not _NOT_LOOKED_UP
        origin = self.endpoint.origin
        if not looked_up or known is None:
            known = self.sender.writer.pending(key, origin)
        if known is None and key in self.inflight:
            outcome = await asyncio.shield(self.inflight[key])
            if outcome.answer is not None:
                self.stats.cache_hits += 1
            return outcome
        if known is None and not looked_up:
            known = self.ledger.lookup([key], origin=origin).get(key)
        if known is not None:
            self.stats.cache_hits += 1
            return TurnOutcome(answer=known)
        budget_message = self.stats.budget_message_for(self.settings)
        if budget_message is not None:
            return TurnOutcome(error=budget_message, skipped=True)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.inflight[key] = future
        try:
            outcome = await self._leased_send(messages, key)
            future.set_result(outcome)
            return outcome
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marks it retrieved when nobody else waits on it
            raise
        finally:
            del self.inflight[key]

    async def _leased_send(self, messages: list[dict], key: str) -> TurnOutcome:
        """Pay for ``key`` only while holding its lease; another worker's answer is reused instead."""
        origin = self.endpoint.origin
        answer = await self.leases.acquire(key, origin)
        if answer is not None:
            self.stats.cache_hits += 1
            return TurnOutcome(answer=answer)
        return await self.sender.send(messages, key)

    # ----- progress -----
    def _progress(self) -> GenerationProgress:
        return progress(self.stats, self.done, self.total, time.monotonic() - self.started)

    async def _report_progress(self) -> None:
        while True:
            await asyncio.sleep(self.progress_interval_s)
            try:
                self.on_progress(self._progress())
            except Exception:  # a broken progress callback must not stop a paid run
                log.exception("progress callback failed")
