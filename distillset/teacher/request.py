"""One teacher request: sent, retried when worth it, rate-limited, and recorded in the ledger."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from openai import AsyncOpenAI

from distillset import ids
from distillset.settings import TeacherSettings
from distillset.teacher.accounting import GenerationStats
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.ledger import LedgerAnswer, LedgerWriter
from distillset.teacher.rate_limit import RateLimiter, estimate_tokens
from distillset.teacher.reasoning import split_reasoning
from distillset.teacher.retry import (
    EmptyAnswerError,
    EndpointRefusedKeyError,
    RetryPolicy,
    UnusableAnswerError,
    classify,
)

AUTH_STATUS = frozenset({401, 403})

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TurnOutcome:
    """The answer to one turn, or why there is none."""

    answer: LedgerAnswer | None = None
    error: str | None = None
    skipped: bool = False
    """Not sent at all: the budget was spent (not a failure of the endpoint)."""


class RequestSender:
    """Sends requests for one run: one client, one rate limiter, one ledger writer, one set of stats.

    The API key is handed to the SDK client and nowhere else: errors are built from status codes
    and server messages with the key redacted; the ledger stores the endpoint's scheme and host.
    """

    def __init__(
        self,
        client: AsyncOpenAI,
        settings: TeacherSettings,
        endpoint: TeacherEndpoint,
        writer: LedgerWriter,
        stats: GenerationStats,
        *,
        run_id: str,
        retry_policy: RetryPolicy,
    ) -> None:
        self.client = client
        self.settings = settings
        self.endpoint = endpoint
        self.writer = writer
        self.stats = stats
        self.run_id = run_id
        self.retry_policy = retry_policy
        self.sampling = settings.sampling_params()
        self.sampling_json = ids.canonical_json(self.sampling)
        self.address = endpoint.public_address
        self.limiter = RateLimiter(settings.requests_per_minute, settings.tokens_per_minute)
        self.rng = random.Random()
        self.accepted_models = {settings.model, *settings.accept_model_aliases}
        self.auth_failures = 0

    def redact(self, text: str) -> str:
        key = self.endpoint.api_key
        if key and key in text:
            text = text.replace(key, "***")
        return text

    async def send(
        self,
        messages: list[dict],
        key: str,
        sampling: dict | None = None,
        messages_json: str | None = None,
        sampling_json: str | None = None,
    ) -> TurnOutcome:
        """Send one request, retrying what is worth retrying; record the answer or the failure.

        ``sampling`` is this request's parameters (a best-of-N sample's own seed), default the run's.
        ``messages_json`` is ``ids.canonical_json(messages)`` when the caller has it (it made the key),
        ``sampling_json`` likewise ``sampling``'s (``generate`` encodes each sample's once per run).
        """
        settings = self.settings
        sampling = self.sampling if sampling is None else sampling
        if sampling_json is None:
            sampling_json = self.sampling_json if sampling is self.sampling else ids.canonical_json(sampling)
        estimated = estimate_tokens(messages, settings.sampling.max_tokens) if self.limiter.tokens is not None else 0
        attempts = 0
        for retry_index in range(settings.max_retries + 1):
            await self.limiter.acquire(estimated)
            attempts += 1
            started = time.perf_counter()
            try:
                # A deadline for the whole request: the SDK's timeout applies to each read, so an
                # endpoint that trickles a few bytes at a time could hold a request for ever. A
                # timeout scope, not wait_for: wait_for runs the call in a Task of its own, and a
                # Task per request makes the cyclic GC run ~25x as often (measured, bench/README.md).
                async with asyncio.timeout(settings.timeout_s):
                    response = await self.client.chat.completions.create(
                        model=settings.model, messages=messages, **sampling
                    )
                if isinstance(response, str):
                    # The SDK returns raw text when the body is not labelled JSON.
                    raise EmptyAnswerError("response body is not a chat completion")
                choice = response.choices[0] if response.choices else None
                message = choice.message if choice is not None else None
                raw = message.content if message is not None else None
                content, reasoning = split_reasoning(raw, message)
                # A trace cut by the token limit leaves no answer, but it was paid: it is stored
                # (and never published), not retried as an empty answer.
                if not content and not (reasoning and choice.finish_reason == "length"):
                    raise EmptyAnswerError("empty answer content")
                self._check_usable(response, (raw or "") + (reasoning or ""))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # classified below; unknown ones fail this request, not the run
                self.limiter.correct(estimated, 0)
                problem = classify(exc)
                if problem is None:
                    reason, status, retriable, retry_after = (
                        f"unexpected {type(exc).__name__}: {exc}",
                        None,
                        False,
                        None,
                    )
                else:
                    reason, status, retriable, retry_after = (
                        problem.reason,
                        problem.status_code,
                        problem.retriable,
                        problem.retry_after_s,
                    )
                reason = self.redact(reason)
                self.auth_failures = self.auth_failures + 1 if status in AUTH_STATUS else 0
                if retriable and retry_index < settings.max_retries:
                    self.stats.retries += 1
                    delay = self.retry_policy.delay(retry_index, retry_after, self.rng)
                    log.debug("retrying request %s in %.2fs after: %s", key[:12], delay, reason)
                    await asyncio.sleep(delay)
                    continue
                error = f"{reason} (after {attempts} attempt{'s' if attempts != 1 else ''})"
                self.stats.failures += 1
                self.writer.add_failure(
                    key, settings.model, error, status_code=status, attempts=attempts, origin=self.endpoint.origin
                )
                log.info("request %s failed: %s", key[:12], error)
                if self.auth_failures >= settings.max_auth_failures:
                    raise EndpointRefusedKeyError(
                        f"the endpoint refused the API key (HTTP {status}) on {self.auth_failures} requests in a row: "
                        f"{reason}; check TEACHER_API_KEY"
                    ) from None
                return TurnOutcome(error=error)
            self.auth_failures = 0
            latency_ms = (time.perf_counter() - started) * 1000.0
            usage = response.usage
            prompt_tokens = int(usage.prompt_tokens) if usage is not None else 0
            completion_tokens = int(usage.completion_tokens) if usage is not None else 0
            self.limiter.correct(estimated, prompt_tokens + completion_tokens)
            answer = LedgerAnswer(
                request_hash=key,
                model=settings.model,
                messages_json=ids.canonical_json(messages) if messages_json is None else messages_json,
                sampling_json=sampling_json,
                content=content,
                finish_reason=choice.finish_reason,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                latency_ms=latency_ms,
                attempts=attempts,
                response_id=response.id,
                endpoint=self.address,
                simulated=self.endpoint.simulated,
                created_at=datetime.now(UTC),
                run_id=self.run_id,
                origin=self.endpoint.origin,
                served_model=getattr(response, "model", None),
                reasoning=reasoning,
            )
            self.writer.add_answer(answer)
            self.stats.record_paid(settings, prompt_tokens, completion_tokens)
            return TurnOutcome(answer=answer)
        raise AssertionError("unreachable: the retry loop always returns")

    def _check_usable(self, response, content: str) -> None:
        served = getattr(response, "model", None)
        if served and served not in self.accepted_models:
            raise UnusableAnswerError(
                f"the endpoint answered with model {served!r}, not {self.settings.model!r} "
                "(list accepted ids in TEACHER_ACCEPT_MODEL_ALIASES)"
            )
        if len(content) > self.settings.max_response_chars:
            raise UnusableAnswerError(
                f"the answer has {len(content)} characters, more than TEACHER_MAX_RESPONSE_CHARS="
                f"{self.settings.max_response_chars}"
            )
