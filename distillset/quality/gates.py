"""Quality gates (the blocking checks on a scored set) and the summary stored as asset metadata."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from distillset.quality.thresholds import QUALITY_RULES, QualityGates

HISTOGRAM_BINS = 10


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
    """Check a frame returned by ``score_frame`` against the gate limits.

    Gates: ``refusal_rate`` (<= max), ``truncation_rate`` (<= max), ``verifiable_accuracy``
    (>= min, judged only from ``min_verifiable_rows`` rows whose answer was correct or
    incorrect; passes with a note below that) and ``pass_rate`` (>= min). An empty frame fails
    ``pass_rate``: there is nothing to publish.

    Args:
        scores: the output of ``score_frame``.
        gates: the limits; ``QualityGates.from_env()`` when omitted.

    Returns:
        One result per gate, in the order above.
    """
    gates = gates or QualityGates.from_env()
    rows = scores.height
    refusal_rate = _mean(scores, "is_refusal")
    truncation_rate = _mean(scores, "is_truncated")
    pass_rate = _mean(scores, "passed")
    counts = _verifiable_counts(scores)
    judged = counts["correct"] + counts["incorrect"]
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
                f"accuracy on {judged} verifiable rows ({accuracy:.1%}) must be at least {gates.min_verifiable_accuracy:.1%}",
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


def quality_summary(scores: pl.DataFrame) -> dict:
    """Figures for asset metadata and the dataset card.

    Returns:
        ``rows``, ``passed``, ``pass_rate`` (None if no rows), ``mean_score``, ``failed_rules``
        (rule -> rows failing it, most frequent first, every rule listed), ``score_histogram``
        (10 bins of width 0.1 over [0, 1], the last one closed: ``{"bin": "0.9-1.0", "count": n}``)
        and ``verifiable`` (``correct``, ``incorrect``, ``unparseable``, ``rows`` and
        ``accuracy`` = correct / (correct + incorrect), None when nothing was judged); for the
        dataset card also ``count`` (= rows), the score quantiles ``min``, ``p25``, ``median``,
        ``p75``, ``max`` (None without rows) and ``histogram`` (the 10 bin counts as a list).
    """
    rows = scores.height
    rule_counts = dict.fromkeys(QUALITY_RULES, 0)
    if rows:
        exploded = scores.select(pl.col("failed_rules").explode().drop_nulls().alias("rule"))
        for rule, count in exploded.group_by("rule").len().iter_rows():
            rule_counts[rule] = int(count)
    histogram = [0] * HISTOGRAM_BINS
    if rows:
        bins = (
            # The epsilon keeps a score of exactly 0.3 in bin 0.3-0.4 despite binary rounding.
            scores.select(
                (pl.col("score").clip(0.0, 1.0) * HISTOGRAM_BINS + 1e-9)
                .floor()
                .cast(pl.Int64)
                .clip(0, HISTOGRAM_BINS - 1)
                .alias("bin")
            )
            .group_by("bin")
            .len()
        )
        for index, count in bins.iter_rows():
            histogram[index] = int(count)
    counts = _verifiable_counts(scores)
    judged = counts["correct"] + counts["incorrect"]
    passed = int(scores.get_column("passed").sum()) if rows else 0
    return {
        "rows": rows,
        "passed": passed,
        "pass_rate": passed / rows if rows else None,
        "mean_score": float(scores.get_column("score").mean()) if rows else None,
        "failed_rules": dict(sorted(rule_counts.items(), key=lambda item: (-item[1], item[0]))),
        "score_histogram": [
            {"bin": f"{i / HISTOGRAM_BINS:.1f}-{(i + 1) / HISTOGRAM_BINS:.1f}", "count": histogram[i]}
            for i in range(HISTOGRAM_BINS)
        ],
        "verifiable": {
            **counts,
            "rows": judged + counts["unparseable"],
            "accuracy": counts["correct"] / judged if judged else None,
        },
        # The score distribution in the shape the dataset card reads (distillset.publish.card).
        "count": rows,
        **_quantiles(scores),
        "histogram": histogram,
    }


def _quantiles(scores: pl.DataFrame) -> dict[str, float | None]:
    names = {"min": 0.0, "p25": 0.25, "median": 0.5, "p75": 0.75, "max": 1.0}
    if not scores.height:
        return dict.fromkeys(names)
    column = scores.get_column("score")
    return {name: float(column.quantile(q, interpolation="linear")) for name, q in names.items()}


def _mean(scores: pl.DataFrame, column: str) -> float | None:
    if scores.height == 0:
        return None
    return float(scores.get_column(column).cast(pl.Float64).mean())


def _of(value: float | None, rows: int) -> str:
    return f" ({value:.1%} of {rows} rows)" if value is not None else ""


def _verifiable_counts(scores: pl.DataFrame) -> dict[str, int]:
    counts = {"correct": 0, "incorrect": 0, "unparseable": 0}
    if scores.height:
        for result, count in scores.get_column("verifiable_result").drop_nulls().value_counts().iter_rows():
            counts[result] = int(count)
    return counts
