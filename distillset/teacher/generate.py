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
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
from distillset.teacher.rows import GENERATIONS_SCHEMA, VERDICT_COLUMNS, Conversation, RowCollector, generation_row
from distillset.verify.engine import verify
from distillset.verify.task import VerifiableTask
from distillset.verify.verdict import Verdict

log = logging.getLogger(__name__)

# Conversations are looked up in the ledger in chunks of this many (one SQL query per chunk).
_LOOKUP_CHUNK = 256


@dataclass
class GenerationResult:
    generations: pl.DataFrame
    stats: GenerationStats
    leases: LeaseStats | None = None
    """What claiming request keys cost and how often another worker had a key first."""


# Threads verifying answers as they arrive (each code check is one sandbox process tree).
VERIFY_WORKERS = max(1, min(4, os.cpu_count() or 1))
_STATUS = list(GENERATIONS_SCHEMA).index("status")
_FINISH_REASON = list(GENERATIONS_SCHEMA).index("finish_reason")
_HASHES = list(GENERATIONS_SCHEMA).index("request_hashes")
_VERDICT_START = list(GENERATIONS_SCHEMA).index(VERDICT_COLUMNS[0])


def _verify(answer: str, task: VerifiableTask) -> Verdict:
    """The verdict on one answer; a verifier that raises makes it ``unverifiable``, never a pass."""
    try:
        return verify(answer, task)
    except Exception as exc:  # one broken check must not stop a paid run
        log.exception("verifier %s failed", task.kind)
        return Verdict("unverifiable", "verifier_error", task.kind, detail=f"{type(exc).__name__}: {exc}")


def _with_verdict(row: tuple, verdict: Verdict) -> tuple:
    values = (verdict.status, verdict.reason, verdict.verifier, verdict.expected, verdict.extracted, verdict.detail)
    return row[:_VERDICT_START] + values + row[_VERDICT_START + len(values) :]


def _sendable(conversation: Conversation) -> bool:
    """Every turn of the conversation is a non-blank string (else its row fails unsent)."""
    return bool(conversation.turns) and all(isinstance(t, str) and t.strip() for t in conversation.turns)


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
    unanswered: Callable[[str], str] | None = None,
    on_rows: Callable[[pl.DataFrame], None] | None = None,
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
        unanswered: when given, nothing is sent: a request not in the ledger fails its row with
            ``unanswered(key)`` as the error (batch mode, ``distillset.teacher.batch.run``).
        on_rows: takes the rows as they finish, a frame at a time in input order (every sample
            of a conversation in one frame), so they need not be held (``RowCollector``); the
            result's ``generations`` is then empty. Called on the event loop's thread: it should
            be quick (buffer, or write a file).

    Returns:
        One ``teacher_generations`` row per input conversation, in input order, and the stats.
    """
    # Verifiers run off the event loop: math-verify is CPU work and a code check waits on its
    # sandbox subprocess, and neither may hold up the requests in flight.
    with ThreadPoolExecutor(max_workers=VERIFY_WORKERS, thread_name_prefix="distillset-verify") as verify_pool:
        run = _Run(
            settings,
            endpoint,
            ledger,
            run_id=run_id or uuid.uuid4().hex,
            on_progress=on_progress,
            progress_interval_s=progress_interval_s,
            retry_policy=retry_policy or RetryPolicy(),
            total=len(conversations) if hasattr(conversations, "__len__") else None,
            verify_pool=verify_pool,
            unanswered=unanswered,
            on_rows=on_rows,
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
        verify_pool: ThreadPoolExecutor,
        unanswered: Callable[[str], str] | None = None,
        on_rows: Callable[[pl.DataFrame], None] | None = None,
    ) -> None:
        self.settings = settings
        self.unanswered = unanswered
        self.endpoint = endpoint
        self.ledger = ledger
        self.run_id = run_id
        self.on_progress = on_progress
        self.progress_interval_s = progress_interval_s
        self.retry_policy = retry_policy
        self.total = total
        self.sampling = settings.sampling_params()
        self.samples = settings.samples_per_prompt
        self.max_answers = settings.max_answers_per_prompt
        # A pass-rate window measures difficulty over all N samples: stopping at the first pass
        # would make every pass rate 1/j, so early stop is off while a window is set.
        self.early_stop = settings.pass_rate_min is None and settings.pass_rate_max is None
        self.sample_sampling = [settings.sample_params(i) for i in range(self.samples)]
        self.sample_sampling_json = [ids.canonical_json(p) for p in self.sample_sampling]
        self.model_json = ids.canonical_json(settings.model)
        self.verify_pool = verify_pool
        self.slots = asyncio.Semaphore(settings.max_concurrency)
        self.stats = GenerationStats()
        self.rows = RowCollector(on_rows)
        self.inflight: dict[str, asyncio.Future] = {}
        self.leases = Leases(ledger, lease_owner(run_id), settings.lease_s)
        # Claiming ahead (``_claim_ahead``): the producer claims the first keys of the next group of
        # prompts in one transaction before queueing them, so a worker sends without waiting for a
        # claim of its own (a wait per request made the cyclic GC run ~10x as often). A group is at
        # most half the workers and the queue holds at most one group, so what is leased but not in
        # flight stays under the concurrency.
        self.group_size = max(1, settings.max_concurrency // 2)
        self.claiming: set[str] = set()
        """Keys claimed ahead whose claim is not back yet."""
        self.held: dict[str, float] = {}
        """Keys claimed ahead and held, not yet sent: when they were claimed (monotonic seconds)."""
        self.sender: RequestSender | None = None
        self.done = 0
        self.started = time.monotonic()

    async def main(self, conversations: Iterable[Conversation]) -> GenerationResult:
        workers_count = self.settings.max_concurrency
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.group_size)
        client = AsyncOpenAI(
            base_url=self.endpoint.base_url,
            api_key=self.endpoint.api_key or "not-needed",
            max_retries=0,
            timeout=self.settings.timeout_s,
            http_client=DefaultAioHttpClient(),
        )
        progress_task = None
        try:
            # Group commit: whatever arrived in one iteration of this loop is committed in the next
            # (on this thread for a SQLite ledger, by the writer's thread for PostgreSQL or when
            # another process holds the lock), so an answer is durable (and survives kill -9)
            # within milliseconds of arriving, while commits still batch under load.
            with self.ledger.writer(
                run_id=self.run_id, batch_size=1, lease_owner=self.leases.owner, loop=asyncio.get_running_loop()
            ) as writer:
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
        # Pipelined: the next group's claims are on their way while this group waits for room in
        # the queue, so the workers find their prompts claimed and the queue seldom runs dry.
        ahead: tuple[list[tuple], list[str], asyncio.Future | None] | None = None
        try:
            for group in self._groups(conversations):
                submitted = (group, *self._submit_ahead(group))
                if ahead is not None:
                    await self._hand_over(ahead, queue)
                ahead = submitted
            if ahead is not None:
                await self._hand_over(ahead, queue)
        except BaseException:
            if ahead is not None and ahead[2] is not None:
                ahead[2].cancel()  # nobody will read its claims (release_all frees them)
            raise
        for _ in range(workers_count):
            await queue.put(None)

    def _groups(self, conversations: Iterable[Conversation]) -> Iterator[list[tuple]]:
        """The work items (index, conversation, first keys, their ledger answers), a group at a time.

        Looked up in the ledger a chunk at a time; sets ``total`` once the input is exhausted.
        """
        chunk: list[tuple[int, Conversation]] = []
        index = 0
        for conversation in conversations:
            chunk.append((index, conversation))
            index += 1
            if len(chunk) >= _LOOKUP_CHUNK:
                yield from self._looked_up(chunk)
                chunk = []
        if chunk:
            yield from self._looked_up(chunk)
        if self.total is None or self.total != index:
            self.total = index

    def _looked_up(self, chunk: list[tuple[int, Conversation]]) -> Iterator[list[tuple]]:
        # The first turn of every sample a prompt may need, looked up in one query: a rerun (or a
        # raised N) finds what it already paid for without a query per sample.
        # The messages' JSON is encoded once per prompt: every sample's key is spliced from it
        # (``ids.request_hash_of_json``) and the ledger record of the first turn reuses it.
        first_keys: dict[int, tuple[list[str], str]] = {}
        for index, conversation in chunk:
            messages = self._first_messages(conversation)
            if messages is not None:
                messages_json = ids.canonical_json(messages)
                first_keys[index] = (
                    [
                        ids.request_hash_of_json(self.model_json, messages_json, self.sample_sampling_json[i])
                        for i in range(self.samples)
                    ],
                    messages_json,
                )
        wanted = [key for keys, _json in first_keys.values() for key in keys]
        found = self.ledger.lookup(wanted, origin=self.endpoint.origin) if wanted else {}
        items = []
        for index, conversation in chunk:
            keys, messages_json = first_keys.get(index, (None, None))
            known = [found.get(key) for key in keys] if keys is not None else None
            items.append((index, conversation, keys, known, messages_json))
        for start in range(0, len(items), self.group_size):
            yield items[start : start + self.group_size]

    def _submit_ahead(self, group: list[tuple]) -> tuple[list[str], asyncio.Future | None]:
        """Start claiming, in one transaction, the keys the first round of ``group``'s prompts will pay.

        Only keys sure to be sent: first turns of valid conversations, the ledger without their
        answer, the samples of the first round (``_sample_prompt``), none in batch mode or once the
        budget is spent, and none another request of this run already has (in flight, held, or
        being claimed). Returns the keys and the claims' future (None: nothing to claim).
        """
        if self.unanswered is not None or self.stats.budget_message_for(self.settings) is not None:
            return [], None
        wanted: list[str] = []
        for _index, conversation, keys, known, _json in group:
            if keys is None or not _sendable(conversation):
                continue
            task = conversation.task
            first_round = self.samples if task is None or not self.early_stop else min(self.max_answers, self.samples)
            for i in range(first_round):
                key = keys[i]
                if known[i] is None and key not in self.claiming and key not in self.held and key not in self.inflight:
                    self.claiming.add(key)
                    wanted.append(key)
        if not wanted:
            return wanted, None
        return wanted, self.leases.submit_many(wanted, self.endpoint.origin)

    async def _hand_over(
        self, ahead: tuple[list[tuple], list[str], asyncio.Future | None], queue: asyncio.Queue
    ) -> None:
        """Queue a group for the workers once its claims are back; the keys claimed become ``held``.

        The worker that reaches a held key first sends it without a claim of its own
        (``_leased_send``). Keys answered or leased elsewhere meanwhile are left to the worker's
        own claim, which reuses the answer or waits for it.
        """
        group, wanted, claims = ahead
        if claims is not None:
            started = time.perf_counter()
            results = await claims
            self.leases.stats.claim_s += time.perf_counter() - started
            now = time.monotonic()
            for key, claim in zip(wanted, results, strict=True):
                # Gone from ``claiming``: a worker reached the key first and claimed it itself.
                if key in self.claiming:
                    self.claiming.discard(key)
                    if claim.claimed:
                        self.held[key] = now
        for item in group:
            await queue.put(item)

    async def _worker(self, queue: asyncio.Queue) -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            index, conversation, first_keys, first_answers, first_json = item
            rows = await self._sample_prompt(conversation, first_keys, first_answers, first_json)
            self.done += 1
            self.rows.add(index, rows)

    # ----- the samples of one prompt -----
    async def _sample_prompt(
        self,
        conversation: Conversation,
        first_keys: list[str] | None,
        first_answers: list | None,
        first_json: str | None = None,
    ) -> list[tuple]:
        """Up to N samples of one conversation, one row each, in sample order.

        ``first_json`` is the canonical JSON of the first turn's messages, the keys' source.

        Without a verifier (or with a pass-rate window, which needs all N) every sample is drawn
        (they are ranked later). With one, samples are drawn in rounds of as many as could still
        change what is published (k minus the samples already correct), so sampling stops as soon
        as k passed and no sample is paid that could not be published.
        """
        task = conversation.task if isinstance(conversation, Conversation) else None
        rows: list[tuple] = []
        passed = 0
        next_index = 0
        while next_index < self.samples:
            wanted = self.samples - next_index if task is None or not self.early_stop else self.max_answers - passed
            batch = range(next_index, next_index + min(wanted, self.samples - next_index))
            samples = [
                self._sample(
                    conversation,
                    i,
                    first_keys[i] if first_keys else None,
                    first_answers[i] if first_answers else None,
                    first_json,
                )
                for i in batch
            ]
            # One sample (the common case) is awaited in this task: gather would wrap it in a Task
            # of its own, and a Task per request makes the cyclic GC run far more often.
            results = [await samples[0]] if len(samples) == 1 else await asyncio.gather(*samples)
            next_index = batch.stop
            stop = False
            for row, verdict in results:
                rows.append(row)
                status, finish_reason = row[_STATUS], row[_FINISH_REASON]
                if status == "skipped" or not row[_HASHES]:
                    stop = True  # the budget is spent, or nothing could be sent: more samples cannot help
                if verdict is not None and verdict.passed and finish_reason != "length":
                    passed += 1
            if stop or (task is not None and self.early_stop and passed >= self.max_answers):
                break
        self.stats.samples_drawn += len(rows)
        return rows

    async def _sample(
        self,
        conversation: Conversation,
        sample_index: int,
        first_key: str | None,
        first_answer,
        first_json: str | None = None,
    ) -> tuple[tuple, Verdict | None]:
        """One sample's row and, for a verifiable prompt with an answer, its verdict."""
        row, response = await self._converse(conversation, first_key, first_answer, sample_index, first_json)
        task = conversation.task if isinstance(conversation, Conversation) else None
        if task is None or response is None:
            return row, None
        verdict = await asyncio.get_running_loop().run_in_executor(self.verify_pool, _verify, response, task)
        return _with_verdict(row, verdict), verdict

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
        sample_index: int = 0,
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
            sampling_json=self.sample_sampling_json[sample_index],
            sample_index=sample_index,
        )

    async def _converse(
        self,
        conversation: Conversation,
        first_key: str | None,
        first_answer: LedgerAnswer | None,
        sample_index: int = 0,
        first_json: str | None = None,
    ) -> tuple[tuple, str | None]:
        """All turns of one sample of a conversation, in order, and its last answer (None if none).

        The first turn's key, its messages' JSON (``first_json``) and ledger lookup come from the
        producer (batched), later turns are looked up one by one (they depend on the earlier
        answers). Every turn of sample i sends sample i's sampling parameters
        (``TeacherSettings.sample_params``).
        """
        if sample_index == 0:
            self.stats.conversations += 1
        sampling = self.sample_sampling[sample_index]
        if not isinstance(conversation, Conversation):
            row = self._row(
                str(getattr(conversation, "prompt_id", "")),
                [],
                [],
                [],
                f"not a Conversation: {type(conversation).__name__}",
                sample_index=sample_index,
            )
            return row, None
        if not _sendable(conversation):
            row = self._row(
                conversation.prompt_id,
                [],
                [],
                [],
                "conversation has an empty or missing user turn",
                sample_index=sample_index,
            )
            return row, None
        system = self._system_of(conversation)
        messages: list[dict] = [{"role": "system", "content": system}] if system else []
        hashes: list[str] = []
        answers: list[LedgerAnswer] = []
        for turn_index, turn in enumerate(conversation.turns):
            messages = messages + [{"role": "user", "content": turn}]
            if turn_index == 0 and first_key and first_json is not None:
                key, messages_json = first_key, first_json
            else:
                messages_json = ids.canonical_json(messages)
                key = ids.request_hash_of_json(self.model_json, messages_json, self.sample_sampling_json[sample_index])
            hashes.append(key)
            self.stats.requests_needed += 1
            outcome = await self._answer(
                messages, key, first_answer if turn_index == 0 else _NOT_LOOKED_UP, sampling, messages_json
            )
            if outcome.answer is None:
                if outcome.skipped:
                    self.stats.skipped_for_budget += 1
                row = self._row(
                    conversation.prompt_id,
                    messages,
                    hashes,
                    answers,
                    outcome.error,
                    skipped=outcome.skipped,
                    sample_index=sample_index,
                )
                return row, None
            answers.append(outcome.answer)
            messages = messages + [{"role": "assistant", "content": outcome.answer.content}]
        row = self._row(conversation.prompt_id, messages, hashes, answers, None, sample_index=sample_index)
        return row, answers[-1].content

    async def _answer(
        self, messages: list[dict], key: str, known, sampling: dict | None = None, messages_json: str | None = None
    ) -> TurnOutcome:
        """One turn: from the ledger, from an identical request already in flight, or paid.

        ``known`` is the ledger's answer when the caller already looked it up (None: not there),
        or ``_NOT_LOOKED_UP``. ``messages_json`` is ``messages``' canonical JSON when known.
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
        if self.unanswered is not None:
            self.stats.failures += 1
            return TurnOutcome(error=self.unanswered(key))
        budget_message = self.stats.budget_message_for(self.settings)
        if budget_message is not None:
            return TurnOutcome(error=budget_message, skipped=True)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.inflight[key] = future
        try:
            outcome = await self._leased_send(messages, key, sampling, messages_json)
            future.set_result(outcome)
            return outcome
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marks it retrieved when nobody else waits on it
            raise
        finally:
            del self.inflight[key]

    async def _leased_send(
        self, messages: list[dict], key: str, sampling, messages_json: str | None = None
    ) -> TurnOutcome:
        """Pay for ``key`` only while holding its lease; another worker's answer is reused instead."""
        claimed_at = self.held.pop(key, None)
        # Claimed ahead, and fresh: no other request of this run has sent it since (it would have
        # taken it from ``held``), so its answer is not in the ledger and the lease is this run's.
        # An old claim (a long rate-limit wait) is claimed again, which renews it.
        if claimed_at is not None and time.monotonic() - claimed_at < self.leases.lease_s / 2:
            self.leases.stats.ahead += 1
        else:
            self.claiming.discard(key)  # a claim ahead still on its way is no longer this key's
            answer = await self.leases.acquire(key, self.endpoint.origin)
            if answer is not None:
                self.stats.cache_hits += 1
                return TurnOutcome(answer=answer)
        # Samples of one prompt run concurrently: the semaphore keeps the requests in flight
        # within TEACHER_MAX_CONCURRENCY however many samples each worker draws at once.
        async with self.slots:
            return await self.sender.send(messages, key, sampling, messages_json, self._sampling_json_of(sampling))

    def _sampling_json_of(self, sampling) -> str | None:
        """The canonical JSON of one of the run's samples' parameters, encoded once per run (None: not one)."""
        for params, params_json in zip(self.sample_sampling, self.sample_sampling_json, strict=True):
            if params is sampling:
                return params_json
        return None

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
