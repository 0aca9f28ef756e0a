"""Quality gates: the blocking checks on a scored set, each with its measured value and limit."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from distillset.quality.aggregates import ScoreAggregates, frame_aggregates
from distillset.quality.verifiable import CHECKED_RESULTS
from distillset.settings import QualityGates


@dataclass(frozen=True)
class GateResult:
    """The verdict of one gate.

    ``value`` is the measured figure (None when there is nothing to measure); ``limit`` the
    configured bound; ``description`` a sentence a reviewer can read in the UI.
    """

    name: str
    passed: bool
    value: float | None
    limit: float
    description: str


def evaluate_gates(scores: pl.DataFrame, gates: QualityGates | None = None) -> list[GateResult]:
    """Check a frame returned by ``score_frame`` against the gate limits (see ``gates_of``)."""
    return gates_of(frame_aggregates(scores), gates)


def gates_of(aggregates: ScoreAggregates, gates: QualityGates | None = None) -> list[GateResult]:
    """Check a scored set's aggregates (``distillset.quality.aggregates``) against the gate limits.

    Gates: ``refusal_rate`` (<= max), ``truncation_rate`` (<= max), ``verifiable_accuracy``
    (>= min: correct / (correct + wrong + no_final_answer), so an answer with no final answer
    counts as not correct; judged only from ``min_verifiable_rows`` such rows, passes with a note
    below that; ``unverifiable`` rows are left out) and ``pass_rate`` (>= min). An empty frame fails
    ``pass_rate``: there is nothing to publish.

    Args:
        aggregates: the figures of the scored set (a catalog partition's or a frame's).
        gates: the limits (``settings.gates``); the defaults when omitted.

    Returns:
        One result per gate, in the order above.
    """
    gates = gates or QualityGates()
    rows = aggregates.rows
    refusal_rate = aggregates.rate(aggregates.refusals)
    truncation_rate = aggregates.rate(aggregates.truncated)
    pass_rate = aggregates.rate(aggregates.passed)
    counts = aggregates.verifiable_counts()
    judged = sum(counts[result] for result in CHECKED_RESULTS)
    accuracy = counts["correct"] / judged if judged else None

    results = [
        GateResult(
            "refusal_rate",
            refusal_rate is None or refusal_rate <= gates.max_refusal_rate,
            refusal_rate,
            gates.max_refusal_rate,
            f"share of refusals and deflections{_of(refusal_rate, rows)} must be at most {gates.max_refusal_rate:.1%}",
        ),
        GateResult(
            "truncation_rate",
            truncation_rate is None or truncation_rate <= gates.max_truncation_rate,
            truncation_rate,
            gates.max_truncation_rate,
            f"share of truncated answers{_of(truncation_rate, rows)} must be at most {gates.max_truncation_rate:.1%}",
        ),
    ]
    if judged >= gates.min_verifiable_rows:
        results.append(
            GateResult(
                "verifiable_accuracy",
                accuracy >= gates.min_verifiable_accuracy,
                accuracy,
                gates.min_verifiable_accuracy,
                f"accuracy on {judged} verifiable rows ({accuracy:.1%}) must be at least "
                f"{gates.min_verifiable_accuracy:.1%}",
            )
        )
    else:
        results.append(
            GateResult(
                "verifiable_accuracy",
                True,
                accuracy,
                gates.min_verifiable_accuracy,
                f"not judged: {judged} verifiable row(s), fewer than {gates.min_verifiable_rows}",
            )
        )
    results.append(
        GateResult(
            "pass_rate",
            pass_rate is not None and pass_rate >= gates.min_pass_rate,
            pass_rate,
            gates.min_pass_rate,
            f"share of rows passing every rule{_of(pass_rate, rows)} must be at least {gates.min_pass_rate:.1%}"
            if rows
            else "no rows were scored",
        )
    )
    return results


def _of(value: float | None, rows: int) -> str:
    return f" ({value:.1%} of {rows} rows)" if value is not None else ""


def verifiable_counts(scores: pl.DataFrame) -> dict[str, int]:
    """Rows per ``verifiable_result`` (``correct``, ``wrong``, ``no_final_answer``, ``unverifiable``)."""
    return frame_aggregates(scores).verifiable_counts()
