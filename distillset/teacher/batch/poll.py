"""Following submitted batches: one ``batches.retrieve`` each, and what the progress line says."""

from __future__ import annotations

from dataclasses import dataclass

from openai import OpenAI

from distillset.teacher.batch.store import BatchRecord, BatchStore

FINISHED = frozenset({"completed", "failed", "expired", "cancelled"})


def refresh(client: OpenAI, store: BatchStore, record: BatchRecord):
    """The provider's view of a submitted batch (its status recorded in the ledger)."""
    batch = client.batches.retrieve(record.batch_id)
    if batch.status != record.provider_status:
        store.set_provider_status(record.token, batch.status)
    return batch


@dataclass
class BatchProgress:
    """A snapshot while waiting for batches (``eta_s`` None until a line is done)."""

    batches_open: int
    lines_total: int
    lines_done: int
    elapsed_s: float
    eta_s: float | None
    answered: int = 0
    failed: int = 0

    def __str__(self) -> str:
        eta = "?" if self.eta_s is None else f"{self.eta_s:.0f}s"
        return (
            f"batches: {self.batches_open} open, {self.lines_done}/{self.lines_total} lines done "
            f"({self.answered} answered, {self.failed} failed or expired) after {self.elapsed_s:.0f}s, eta {eta}"
        )


def eta(lines_done: int, lines_total: int, elapsed_s: float) -> float | None:
    """Seconds left at the rate so far (None before the first line is done)."""
    if lines_done <= 0 or elapsed_s <= 0:
        return None
    return max(0.0, (lines_total - lines_done) * elapsed_s / lines_done)
