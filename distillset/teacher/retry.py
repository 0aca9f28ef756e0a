"""When a teacher call is retried, and how long to wait: exponential backoff with full jitter.

The OpenAI SDK's own retries are off (``max_retries=0``) because they cannot tell the ledger how
many attempts an answer took, cannot retry a 200 whose body is unusable (invalid JSON, empty
content), and do not share the run's budget and rate limits.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import openai

# Never retried: the same request would fail the same way (bad request, bad key, no access,
# unknown model, unprocessable); retrying would only burn rate limit.
NON_RETRIABLE_STATUS = frozenset({400, 401, 403, 404, 422})
# A provider's Retry-After is honoured up to this; beyond it the request is better failed and
# picked up by the next run than holding a worker for minutes.
MAX_RETRY_AFTER_S = 300.0


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff shape: attempt ``k`` (0-based) waits uniform(0, min(cap_s, base_s * 2**k)) seconds,
    and at least the server's ``Retry-After`` when it sent one."""

    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, retry_index: int, retry_after_s: float | None, rng: random.Random) -> float:
        backoff = rng.uniform(0.0, min(self.cap_s, self.base_s * (2**retry_index)))
        if retry_after_s is not None:
            return max(backoff, min(retry_after_s, MAX_RETRY_AFTER_S))
        return backoff


class EmptyAnswerError(Exception):
    """A 200 whose body parsed but carried no usable answer (no choices, empty content)."""


class UnusableAnswerError(Exception):
    """A 200 whose answer must not be kept: another model than the one asked, or far too long.
    Not retried: the same request would most likely be answered the same way."""


class EndpointRefusedKeyError(RuntimeError):
    """The endpoint refused the API key several times in a row: every further request would too."""


@dataclass(frozen=True)
class CallError:
    """A classified failure of one attempt."""

    retriable: bool
    reason: str
    status_code: int | None = None
    retry_after_s: float | None = None


def classify(exc: BaseException) -> CallError | None:
    """How to treat an exception raised by one attempt; None if it is not a call failure (a bug)."""
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retriable = status not in NON_RETRIABLE_STATUS and (
            status == 408 or status == 409 or status == 429 or status >= 500
        )
        return CallError(retriable, f"HTTP {status}: {_status_message(exc)}", status, _retry_after(exc))
    if isinstance(exc, openai.APITimeoutError):
        return CallError(True, "timeout or dropped connection")
    if isinstance(exc, openai.APIConnectionError):
        return CallError(True, "connection error")
    if isinstance(exc, openai.APIResponseValidationError):
        return CallError(True, "response did not match the chat completion format")
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        # The SDK hands a 200 with an unparseable JSON body straight through from response.json().
        return CallError(True, "response body is not valid JSON")
    if isinstance(exc, EmptyAnswerError):
        return CallError(True, str(exc))
    if isinstance(exc, UnusableAnswerError):
        return CallError(False, str(exc))
    if isinstance(exc, TimeoutError):
        # asyncio.timeout's deadline over the whole request (the SDK's timeout is per read).
        return CallError(True, "no complete answer within the request deadline (TEACHER_TIMEOUT_S)")
    return None


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:300]
    return str(exc.message)[:300]


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers if exc.response is not None else {}
    raw = headers.get("retry-after-ms")
    if raw is not None:
        try:
            return float(raw) / 1000.0
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        # An HTTP date: rare from LLM endpoints; a modest fixed wait is close enough.
        return 1.0
