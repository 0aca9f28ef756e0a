"""Batch request lines: one JSONL line per request, and batches cut within the provider's limits."""

from __future__ import annotations

import json
from dataclasses import dataclass

from distillset import ids

CHAT_ENDPOINT = "/v1/chat/completions"


@dataclass(frozen=True)
class BatchLine:
    """One request of a batch: its ledger key (also its ``custom_id``), messages and sampling."""

    key: str
    model: str
    messages: list[dict]
    sampling: dict

    def encode(self) -> bytes:
        """The JSONL line (newline included) the provider reads."""
        body = {"model": self.model, "messages": self.messages, **self.sampling}
        line = {"custom_id": self.key, "method": "POST", "url": CHAT_ENDPOINT, "body": body}
        return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()

    @property
    def messages_json(self) -> str:
        return ids.canonical_json(self.messages)

    @property
    def sampling_json(self) -> str:
        return ids.canonical_json(self.sampling)


def split_lines(
    lines: list[BatchLine], *, max_requests: int, max_bytes: int
) -> tuple[list[list[BatchLine]], list[tuple[BatchLine, str]]]:
    """Cut ``lines`` into batches of at most ``max_requests`` lines and ``max_bytes`` bytes, in order.

    Returns:
        The batches, and the lines no batch can hold (one line larger than ``max_bytes``) with why.
    """
    batches: list[list[BatchLine]] = []
    too_large: list[tuple[BatchLine, str]] = []
    current: list[BatchLine] = []
    size = 0
    for line in lines:
        length = len(line.encode())
        if length > max_bytes:
            too_large.append((line, f"request line of {length} bytes exceeds TEACHER_BATCH_MAX_BYTES={max_bytes}"))
            continue
        if current and (len(current) >= max_requests or size + length > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(line)
        size += length
    if current:
        batches.append(current)
    return batches, too_large
