"""Batch mode's driver: rounds of plan, submit, poll and ingest, then the rows from the ledger.

``run_batches`` first resumes what the ledger says is open (adopting a batch created before a crash,
polling the submitted ones, ingesting the finished ones), then plans the requests now due and
submits them in batches within ``TEACHER_BATCH_MAX_REQUESTS`` / ``TEACHER_BATCH_MAX_BYTES``. With
``wait`` it polls every ``TEACHER_BATCH_POLL_S`` until nothing is open and nothing is due (a
multi-turn conversation takes one round per turn, best-of-N one per sampling round); without it,
it returns after one pass with the batches still open (the Dagster asset: the sensor comes back).

``generate_with_batches`` then builds the ``teacher_generations`` rows with the online generator
reading the ledger: every answer is there, so nothing is sent, except the requests the batches gave
up on when ``TEACHER_BATCH_FALLBACK=online``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from openai import APIConnectionError, APITimeoutError, OpenAI

from distillset.settings import TeacherSettings
from distillset.teacher.batch.ingest import IngestResult, ingest
from distillset.teacher.batch.lines import split_lines
from distillset.teacher.batch.plan import Planner
from distillset.teacher.batch.poll import FINISHED, BatchProgress, eta, refresh
from distillset.teacher.batch.store import BatchStore
from distillset.teacher.batch.submit import advance, submit
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.generate import GenerationResult, generate
from distillset.teacher.ledger import Ledger
from distillset.teacher.retry import RetryPolicy
from distillset.teacher.rows import Conversation

log = logging.getLogger(__name__)

# Control-plane calls (upload, retrieve, list, file content) are free and idempotent: the SDK may retry them.
_CONTROL_RETRIES = 3
_CONTROL_TIMEOUT_S = 120.0


@dataclass
class BatchRunResult:
    """What ``run_batches`` did: batches created and still open, lines answered, what was given up."""

    pending_batches: int = 0
    pending_lines: int = 0
    submitted_batches: int = 0
    submitted_lines: int = 0
    ingested: IngestResult = field(default_factory=IngestResult)
    cost_usd: float = 0.0
    """The estimated cost of the answers ingested, at ``TEACHER_BATCH_PRICE_FACTOR`` x the online price."""
    given_up: dict[str, str] = field(default_factory=dict)
    rounds: int = 0

    def as_metadata(self) -> dict:
        return {
            "pending_batches": self.pending_batches,
            "pending_lines": self.pending_lines,
            "submitted_batches": self.submitted_batches,
            "submitted_lines": self.submitted_lines,
            "answers_ingested": self.ingested.answered,
            "lines_failed": self.ingested.failed,
            "lines_expired": self.ingested.expired,
            "given_up": len(self.given_up),
            "cost_usd": round(self.cost_usd, 6),
        }


@dataclass
class BatchGeneration:
    """The rows (None while batches are pending) and what the batches did."""

    result: GenerationResult | None
    batches: BatchRunResult

    @property
    def pending(self) -> bool:
        return self.result is None


def batch_client(endpoint: TeacherEndpoint) -> OpenAI:
    """The sync SDK client for the Batch API of ``endpoint`` (the key goes to the SDK only)."""
    return OpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key or "not-needed",
        max_retries=_CONTROL_RETRIES,
        timeout=_CONTROL_TIMEOUT_S,
    )


def batch_cost(settings: TeacherSettings, prompt_tokens: int, completion_tokens: int) -> float:
    """Estimated USD of batch answers: the online prices times ``TEACHER_BATCH_PRICE_FACTOR``."""
    online = (prompt_tokens * settings.price_input_per_mtok + completion_tokens * settings.price_output_per_mtok) / 1e6
    return online * settings.batch_price_factor


def run_batches(
    conversations: list[Conversation],
    settings: TeacherSettings,
    endpoint: TeacherEndpoint,
    ledger: Ledger,
    *,
    run_id: str | None = None,
    wait: bool = True,
    on_progress: Callable[[BatchProgress], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    client: OpenAI | None = None,
) -> BatchRunResult:
    """Answer ``conversations`` through the Batch API into the ledger (see the module docstring)."""
    client = client or batch_client(endpoint)
    store = BatchStore(ledger)
    planner = Planner(settings, ledger, store, endpoint.origin)
    outcome = BatchRunResult()
    started = time.monotonic()
    while True:
        outcome.rounds += 1
        done_lines = _resume(client, store, ledger, settings, endpoint, run_id, outcome)
        plan = planner.plan(conversations)
        outcome.given_up = plan.given_up
        if plan.due:
            batches, too_large = split_lines(
                plan.due, max_requests=settings.batch_max_requests, max_bytes=settings.batch_max_bytes
            )
            for line, reason in too_large:
                outcome.given_up[line.key] = reason
            for lines in batches:
                record = submit(
                    client,
                    store,
                    lines,
                    model=settings.model,
                    origin=endpoint.origin,
                    endpoint=endpoint.public_address,
                    window=settings.batch_window,
                    run_id=run_id,
                )
                if record is None:
                    continue
                outcome.submitted_batches += 1
                outcome.submitted_lines += record.lines
                log.info("batch %s: %d lines submitted as %s", record.token, record.lines, record.batch_id)
        open_batches = store.open_batches(model=settings.model, origin=endpoint.origin)
        outcome.pending_batches = len(open_batches)
        outcome.pending_lines = sum(record.lines for record in open_batches)
        if on_progress is not None:
            on_progress(_progress(open_batches, done_lines, outcome, time.monotonic() - started))
        if not open_batches or not wait:
            break
        sleep(settings.batch_poll_s)
    outcome.cost_usd = batch_cost(settings, outcome.ingested.prompt_tokens, outcome.ingested.completion_tokens)
    return outcome


def _resume(client, store, ledger, settings, endpoint, run_id, outcome: BatchRunResult) -> dict[str, int]:
    """One pass over the open batches: adopt or submit intents, poll, ingest the finished ones.

    Returns lines done so far per open batch (the provider's request counts), for progress.
    """
    done: dict[str, int] = {}
    for record in store.open_batches(model=settings.model, origin=endpoint.origin):
        try:
            if record.state != "submitted":
                record = advance(client, store, record, window=settings.batch_window)
                continue
            batch = refresh(client, store, record)
        except (APIConnectionError, APITimeoutError) as exc:
            # The provider is unreachable for now: the batch stays open and the next poll tries again.
            log.warning("batch %s: provider unreachable (%s); trying again at the next poll", record.token, exc)
            continue
        if batch.status in FINISHED:
            got = ingest(client, store, ledger, record, batch, settings=settings, endpoint=endpoint, run_id=run_id)
            log.info(
                "batch %s (%s): %s, %d answered, %d failed, %d expired",
                record.token,
                batch.id,
                batch.status,
                got.answered,
                got.failed,
                got.expired,
            )
            for name in ("answered", "failed", "expired", "prompt_tokens", "completion_tokens"):
                setattr(outcome.ingested, name, getattr(outcome.ingested, name) + getattr(got, name))
        else:
            counts = batch.request_counts
            done[record.token] = (counts.completed + counts.failed) if counts is not None else 0
    return done


def _progress(open_batches, done_lines: dict[str, int], outcome: BatchRunResult, elapsed_s: float) -> BatchProgress:
    finished = outcome.ingested.answered + outcome.ingested.failed + outcome.ingested.expired
    lines_total = finished + sum(record.lines for record in open_batches)
    lines_done = finished + sum(done_lines.get(record.token, 0) for record in open_batches)
    return BatchProgress(
        batches_open=len(open_batches),
        lines_total=lines_total,
        lines_done=lines_done,
        elapsed_s=elapsed_s,
        eta_s=eta(lines_done, lines_total, elapsed_s) if open_batches else 0.0,
        answered=outcome.ingested.answered,
        failed=outcome.ingested.failed + outcome.ingested.expired,
    )


def generate_with_batches(
    conversations: Iterable[Conversation],
    settings: TeacherSettings,
    endpoint: TeacherEndpoint,
    ledger: Ledger,
    *,
    run_id: str | None = None,
    wait: bool = True,
    on_progress: Callable | None = None,
    on_batch_progress: Callable[[BatchProgress], None] | None = None,
    retry_policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_rows: Callable | None = None,
) -> BatchGeneration:
    """``generate``'s batch-mode twin: batches first, then the rows from the ledger.

    Returns ``result=None`` while batches are open (only without ``wait``). ``on_rows`` as in
    ``generate``. The conversations are held in memory (the planner reads them once per round):
    batch mode does not stream its input yet.
    """
    run_id = run_id or uuid.uuid4().hex
    conversations = list(conversations)  # planned once per round, then read again for the rows
    batches = run_batches(
        conversations,
        settings,
        endpoint,
        ledger,
        run_id=run_id,
        wait=wait,
        on_progress=on_batch_progress,
        sleep=sleep,
    )
    if batches.pending_batches:
        return BatchGeneration(result=None, batches=batches)
    given_up = batches.given_up

    def unanswered(key: str) -> str:
        return f"not answered through the Batch API: {given_up.get(key, 'no batch answered this request')}"

    result = generate(
        conversations,
        settings,
        endpoint,
        ledger,
        run_id=run_id,
        on_progress=on_progress,
        retry_policy=retry_policy,
        unanswered=None if settings.batch_fallback == "online" else unanswered,
        on_rows=on_rows,
    )
    result.stats.record_batches(
        batches.ingested.answered, batches.ingested.prompt_tokens, batches.ingested.completion_tokens, batches.cost_usd
    )
    return BatchGeneration(result=result, batches=batches)
