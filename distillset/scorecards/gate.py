"""The release gate: is a new teacher release worse than the incumbent, beyond doubt?

The incumbent on a benchmark is the best teacher scorecard so far (each other model's latest
evaluation). A release is **worse** on a benchmark when even the top of its 95% interval is more
than ``margin`` (absolute) below the incumbent's accuracy:
``candidate.ci_high + margin < incumbent.accuracy``. So noise alone (a small n) never blocks a
release, and a release a little behind (within the margin) still distills.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from distillset.scorecards.evaluate import BenchmarkScore
from distillset.scorecards.store import Scorecard, ScorecardStore


@dataclass(frozen=True)
class Comparison:
    """The candidate against the incumbent on one benchmark."""

    benchmark: str
    candidate: BenchmarkScore
    incumbent: Scorecard | None
    margin: float

    @property
    def worse(self) -> bool:
        """Worse by more than ``margin``, beyond the candidate's interval."""
        if self.incumbent is None:
            return False
        return self.candidate.ci_high + self.margin < self.incumbent.accuracy

    def sentence(self) -> str:
        """One line: the two accuracies and the verdict."""
        c = self.candidate
        own = f"{c.benchmark}: {c.model} {c.accuracy:.3f} [{c.ci_low:.3f}, {c.ci_high:.3f}] (n={c.n})"
        if self.incumbent is None:
            return f"{own}; no incumbent teacher scorecard to compare with"
        i = self.incumbent
        verdict = (
            f"WORSE by more than {self.margin:g} beyond the interval"
            if self.worse
            else f"not worse by more than {self.margin:g}"
        )
        return f"{own} vs incumbent {i.model} {i.accuracy:.3f} (n={i.n}): {verdict}"


def compare(
    scores: Sequence[BenchmarkScore], store: ScorecardStore, *, benchmarks: Sequence[str], margin: float
) -> list[Comparison]:
    """The comparison on every gated benchmark among ``scores`` (the incumbent excludes the candidate)."""
    return [
        Comparison(s.benchmark, s, store.incumbent(s.benchmark, exclude_model=s.model), margin)
        for s in scores
        if s.benchmark in benchmarks
    ]


def blocking_reason(comparisons: Sequence[Comparison]) -> str | None:
    """Why the release must not be distilled, or None when it may."""
    worse = [c for c in comparisons if c.worse]
    if not worse:
        return None
    return "the new release is worse than the incumbent teacher, nothing was paid for generation: " + "; ".join(
        c.sentence() for c in worse
    )
