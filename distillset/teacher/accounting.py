"""What a generation run did and spent: counters, progress snapshots and the budget check."""

from __future__ import annotations

from dataclasses import dataclass

from distillset.settings import TeacherSettings


@dataclass
class GenerationStats:
    """What one ``generate`` call did and spent.

    Tokens and cost count paid requests only. ``failures`` counts requests that failed after
    their retries (or at once for 400/401/403/404/422); conversations skipped because the budget
    ran out are not failures of the endpoint and are described by ``budget_message``.
    """

    conversations: int = 0
    samples_drawn: int = 0
    """Samples with a row (paid, from the ledger or failed), over all conversations (best-of-N)."""
    skipped_for_budget: int = 0
    """Conversations not (fully) answered because the budget was spent."""
    requests_needed: int = 0
    cache_hits: int = 0
    requests_paid: int = 0
    failures: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated_cost_usd: float = 0.0
    budget_exhausted: bool = False
    budget_reached: str | None = None
    """What ran out, as measured when it did (``3012 tokens spent of a 3000-token budget``)."""
    budget_message: str | None = None
    elapsed_s: float = 0.0
    batch_answers: int = 0
    """Answers ingested from provider batches by this run (counted in ``requests_paid`` too)."""
    batch_cost_usd: float = 0.0
    """Their estimated cost, at ``TEACHER_BATCH_PRICE_FACTOR`` x the online price (in ``estimated_cost_usd`` too)."""

    def as_metadata(self) -> dict:
        """Plain values for asset metadata (no secrets: there are none here).

        ``budget_message`` is there only when a budget stopped the run: the UI shows an empty entry
        as a blank field, which reads like a missing message rather than "no budget stop".
        """
        metadata = {
            "conversations": self.conversations,
            "samples_drawn": self.samples_drawn,
            "skipped_for_budget": self.skipped_for_budget,
            "requests_needed": self.requests_needed,
            "cache_hits": self.cache_hits,
            "requests_paid": self.requests_paid,
            "failures": self.failures,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "estimated_cost_usd": round(self.estimated_cost_usd, 6),
            "budget_exhausted": self.budget_exhausted,
            "budget_message": self.budget_message,
            "account": self.account(),
            "elapsed_s": round(self.elapsed_s, 3),
            "batch_answers": self.batch_answers,
            "batch_cost_usd": round(self.batch_cost_usd, 6),
        }
        return {k: v for k, v in metadata.items() if not (k == "budget_message" and not v)}

    def record_paid(self, settings: TeacherSettings, prompt_tokens: int, completion_tokens: int) -> None:
        """Count one paid answer and its estimated cost."""
        self.requests_paid += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.estimated_cost_usd += (
            prompt_tokens * settings.price_input_per_mtok + completion_tokens * settings.price_output_per_mtok
        ) / 1_000_000

    def record_batches(self, answers: int, prompt_tokens: int, completion_tokens: int, cost_usd: float) -> None:
        """Count answers a batch brought into the ledger as paid by this run, not reused."""
        self.batch_answers += answers
        self.batch_cost_usd += cost_usd
        self.requests_paid += answers
        self.cache_hits = max(0, self.cache_hits - answers)
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.estimated_cost_usd += cost_usd

    def account(self) -> str:
        """The one account of a run every output repeats: paid, reused, skipped for budget, failed.

        Requests and conversations are different units (a two-turn conversation is two requests), so
        each figure names its unit.
        """
        batches = f" ({self.batch_answers} through provider batches)" if self.batch_answers else ""
        return (
            f"{self.requests_paid} teacher calls paid{batches}, {self.cache_hits} answers reused from the ledger, "
            f"{self.skipped_for_budget} conversations skipped for budget, {self.failures} calls failed"
        )

    def finish(self) -> None:
        """Write the final budget message from the final counts.

        Requests already in flight when the budget ran out are still paid and recorded, so figures
        taken at that moment would disagree with the run's totals.
        """
        if self.budget_exhausted:
            self.budget_message = (
                f"budget exhausted ({self.budget_reached}): {self.account()}; "
                "rerun with a larger budget to answer the skipped conversations"
            )

    def budget_message_for(self, settings: TeacherSettings) -> str | None:
        """None while the budget allows another request; otherwise why not (and the budget is marked
        exhausted, so the same message is returned from then on)."""
        if self.budget_exhausted:
            return self.budget_message
        spent_tokens = self.prompt_tokens + self.completion_tokens
        reached = None
        if settings.budget_tokens is not None and spent_tokens >= settings.budget_tokens:
            reached = f"{spent_tokens} tokens spent of a {settings.budget_tokens}-token budget"
        elif settings.budget_usd is not None and self.estimated_cost_usd >= settings.budget_usd:
            reached = f"${self.estimated_cost_usd:.4f} spent of a ${settings.budget_usd:.4f} budget"
        if reached is None:
            return None
        self.budget_exhausted = True
        self.budget_reached = reached
        self.budget_message = f"budget exhausted: {reached}; conversations not yet answered are skipped this run"
        return self.budget_message


@dataclass
class GenerationProgress:
    """A snapshot for progress logs (``total`` is None while the input length is unknown)."""

    done: int
    total: int | None
    answers_per_s: float
    tokens_per_s: float
    retries: int
    failures: int
    eta_s: float | None
    paid: int = 0
    reused: int = 0
    cost_usd: float = 0.0
    skipped: int = 0

    def __str__(self) -> str:
        # What was paid and what came from the ledger first: a rerun's speed alone says nothing.
        total = "?" if self.total is None else str(self.total)
        eta = "?" if self.eta_s is None else f"{self.eta_s:.0f}s"
        skipped = f", {self.skipped} skipped for budget" if self.skipped else ""
        return (
            f"{self.done}/{total} conversations: {self.paid} calls paid, {self.reused} answers from the ledger, "
            f"${self.cost_usd:.2f}{skipped}; {self.answers_per_s:.1f} conversations/s, "
            f"{self.tokens_per_s:.0f} paid tokens/s, {self.retries} retries, {self.failures} failed, eta {eta}"
        )


def progress(stats: GenerationStats, done: int, total: int | None, elapsed_s: float) -> GenerationProgress:
    """The progress snapshot after ``elapsed_s`` seconds with ``done`` conversations finished."""
    elapsed = max(elapsed_s, 1e-9)
    rate = done / elapsed
    eta = max(0.0, (total - done) / rate) if total is not None and rate > 0 else None
    return GenerationProgress(
        done=done,
        total=total,
        answers_per_s=rate,
        tokens_per_s=(stats.prompt_tokens + stats.completion_tokens) / elapsed,
        retries=stats.retries,
        failures=stats.failures,
        eta_s=eta,
        paid=stats.requests_paid,
        reused=stats.cache_hits,
        cost_usd=stats.estimated_cost_usd,
        skipped=stats.skipped_for_budget,
    )
