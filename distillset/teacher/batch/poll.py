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


@dataclass(frozen=True)
class ModelBatches:
    """The open batches of one teacher, as a sensor sees them."""

    model: str
    tokens: tuple[str, ...]
    finished: int
    """Of those, how many the provider has finished (or never got: an intent to resume)."""

    @property
    def ready(self) -> bool:
        """Every open batch can be ingested (or resubmitted) now: time for the run that does it."""
        return self.finished == len(self.tokens)


def open_batches_by_model(client: OpenAI, store: BatchStore, *, origin_prefix: str = "remote") -> list[ModelBatches]:
    """Each teacher with open batches at real endpoints, and how many of them the provider finished.

    Batches at the embedded simulator are left out: they live only as long as the step that
    started it (batch mode waits for them in that step).
    """
    by_model: dict[str, list[BatchRecord]] = {}
    for record in store.open_batches():
        if record.origin.startswith(origin_prefix):
            by_model.setdefault(record.model, []).append(record)
    summaries = []
    for model, records in sorted(by_model.items()):
        finished = 0
        for record in records:
            if record.state != "submitted" or refresh(client, store, record).status in FINISHED:
                finished += 1
        summaries.append(ModelBatches(model, tuple(r.token for r in records), finished))
    return summaries
