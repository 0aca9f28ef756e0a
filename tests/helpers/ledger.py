"""Ledger records for tests: one answer with every field filled, overridable by name."""

from __future__ import annotations

from datetime import UTC, datetime

from distillset.teacher.ledger import LedgerAnswer


def ledger_answer(request_hash: str, **fields) -> LedgerAnswer:
    """A paid answer to ``request_hash`` (a remote, non-simulated call of model ``m`` in run ``r``);
    ``fields`` replace any of its values."""
    values = {
        "request_hash": request_hash,
        "model": "m",
        "messages_json": "[]",
        "sampling_json": "{}",
        "content": f"answer to {request_hash}",
        "finish_reason": "stop",
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "latency_ms": 1.0,
        "attempts": 1,
        "response_id": None,
        "endpoint": "http://127.0.0.1",
        "simulated": False,
        "created_at": datetime.now(UTC),
        "run_id": "r",
        "origin": "remote",
    }
    values.update(fields)
    return LedgerAnswer(**values)
