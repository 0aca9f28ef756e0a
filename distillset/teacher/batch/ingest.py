"""A finished batch into the ledger: output lines become answers, error lines failed lines.

Answers get the same key as an online answer (the line's ``custom_id`` is the request hash, the
origin is the endpoint's), so a batch answer satisfies a later online run and the reverse. Lines
the provider never answered (an expired or cancelled batch, a failed validation) are ``expired`` or
``failed`` with the reason; the planner resubmits them once, or leaves them to an online call.
Ingesting twice is harmless: answers are ``INSERT OR IGNORE``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from openai import OpenAI

from distillset.settings import TeacherSettings
from distillset.teacher.batch.store import BatchRecord, BatchStore
from distillset.teacher.endpoints import TeacherEndpoint
from distillset.teacher.ledger import Ledger, LedgerAnswer, LedgerFailure
from distillset.teacher.reasoning import split_reasoning

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    """What one finished batch brought."""

    answered: int = 0
    failed: int = 0
    expired: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _lines(client: OpenAI, file_id: str | None) -> list[dict]:
    if not file_id:
        return []
    text = client.files.content(file_id).text
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _error_of(body) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or body["error"])
    return "no answer"


def _batch_errors(batch) -> str:
    """The provider's reasons for a failed batch (validation errors), as a suffix."""
    data = getattr(getattr(batch, "errors", None), "data", None) or []
    messages = [str(getattr(error, "message", None) or error) for error in data[:3]]
    return f": {'; '.join(messages)}" if messages else ""


def ingest(
    client: OpenAI,
    store: BatchStore,
    ledger: Ledger,
    record: BatchRecord,
    batch,
    *,
    settings: TeacherSettings,
    endpoint: TeacherEndpoint,
    run_id: str | None,
) -> IngestResult:
    """Read a finished provider ``batch``'s files, write answers and failures, close the batch."""
    lines = {key: (messages, sampling) for key, messages, sampling, _ in store.lines_of(record.token)}
    accepted = {settings.model, *settings.accept_model_aliases}
    finished_at = batch.completed_at or batch.expired_at or batch.failed_at or batch.cancelled_at
    latency_ms = max(0.0, (finished_at - batch.created_at) * 1000.0) if finished_at else 0.0
    outcomes: dict[str, tuple[str, str | None]] = {}
    answers: list[LedgerAnswer] = []
    result = IngestResult()
    for line in _lines(client, batch.output_file_id) + _lines(client, batch.error_file_id):
        key = line.get("custom_id")
        if key not in lines:
            log.warning("batch %s: a line for an unknown custom_id %r is ignored", batch.id, key)
            continue
        response = line.get("response") or {}
        error = line.get("error")
        if error:
            code = error.get("code") if isinstance(error, dict) else None
            state = "expired" if code == "batch_expired" else "failed"
            outcomes[key] = (
                state,
                f"batch line {code or 'error'}: {error.get('message') if isinstance(error, dict) else error}",
            )
            continue
        status, body = response.get("status_code"), response.get("body")
        if status != 200:
            outcomes[key] = ("failed", f"HTTP {status}: {_error_of(body)}")
            continue
        answer, problem = _answer(key, lines[key], body, settings, endpoint, accepted, latency_ms, run_id)
        if answer is None:
            outcomes[key] = ("failed", problem)
            continue
        answers.append(answer)
        outcomes[key] = ("answered", None)
        result.prompt_tokens += answer.prompt_tokens
        result.completion_tokens += answer.completion_tokens
    why = _batch_errors(batch)
    for key in lines:
        if key not in outcomes:
            state = "expired" if batch.status == "expired" else "failed"
            outcomes[key] = (state, f"batch {batch.status} without answering this line{why}")
    now = datetime.now(UTC)
    failures = [
        LedgerFailure(
            request_hash=key,
            model=settings.model,
            error=error or state,
            status_code=None,
            attempts=1,
            failed_at=now,
            run_id=run_id,
            origin=record.origin,
        )
        for key, (state, error) in outcomes.items()
        if state != "answered"
    ]
    ledger.merge(answers, failures)
    store.finish(record.token, outcomes, batch.status)
    result.answered = len(answers)
    result.failed = sum(1 for state, _ in outcomes.values() if state == "failed")
    result.expired = sum(1 for state, _ in outcomes.values() if state == "expired")
    return result


def _answer(
    key: str,
    line: tuple[str, str],
    body,
    settings: TeacherSettings,
    endpoint: TeacherEndpoint,
    accepted: set[str],
    latency_ms: float,
    run_id: str | None,
) -> tuple[LedgerAnswer | None, str | None]:
    """The ledger answer of one output line, or why the line is not usable (the online checks)."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not choices:
        return None, "response body is not a chat completion"
    choice = choices[0]
    message = choice.get("message") or {}
    raw = message.get("content")
    content, reasoning = split_reasoning(raw, message)
    finish_reason = choice.get("finish_reason")
    if not content and not (reasoning and finish_reason == "length"):
        return None, "empty answer content"
    served = body.get("model")
    if served and served not in accepted:
        return None, (
            f"the endpoint answered with model {served!r}, not {settings.model!r} "
            "(list accepted ids in TEACHER_ACCEPT_MODEL_ALIASES)"
        )
    if len((raw or "") + (reasoning or "")) > settings.max_response_chars:
        return None, f"the answer is longer than TEACHER_MAX_RESPONSE_CHARS={settings.max_response_chars}"
    usage = body.get("usage") or {}
    messages_json, sampling_json = line
    return (
        LedgerAnswer(
            request_hash=key,
            model=settings.model,
            messages_json=messages_json,
            sampling_json=sampling_json,
            content=content,
            finish_reason=finish_reason,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_ms=latency_ms,
            attempts=1,
            response_id=body.get("id"),
            endpoint=endpoint.public_address,
            simulated=endpoint.simulated,
            created_at=datetime.now(UTC),
            run_id=run_id,
            origin=endpoint.origin,
            served_model=served,
            reasoning=reasoning,
        ),
        None,
    )
