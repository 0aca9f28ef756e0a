"""The summary of a scored set stored as asset metadata and shown on the dataset card."""

from __future__ import annotations

import polars as pl

from distillset.quality.aggregates import HISTOGRAM_BINS, ScoreAggregates, frame_aggregates
from distillset.quality.rules import QUALITY_RULES
from distillset.quality.verifiable import CHECKED_RESULTS


def quality_summary(scores: pl.DataFrame) -> dict:
    """Figures for asset metadata and the dataset card (see ``summary_of``), of a frame returned
    by ``score_frame``."""
    return summary_of(frame_aggregates(scores))


def summary_of(aggregates: ScoreAggregates) -> dict:
    """Figures for asset metadata and the dataset card, from a scored set's aggregates
    (``distillset.quality.aggregates``: a catalog partition's or a frame's).

    Returns:
        ``rows``, ``passed``, ``pass_rate`` (None if no rows), ``mean_score``, ``failed_rules``
        (rule -> rows failing it, most frequent first, every rule listed), ``score_histogram``
        (10 bins of width 0.1 over [0, 1], the last one closed: ``{"bin": "0.9-1.0", "count": n}``)
        and ``verifiable`` (``correct``, ``wrong``, ``no_final_answer``, ``unverifiable``, ``rows``
        (all rows with a verifiable reference), ``checked`` (correct + wrong + no_final_answer) and
        ``accuracy`` = correct / checked, None when nothing was checked); for the
        dataset card also ``count`` (= rows), the score quantiles ``min``, ``p25``, ``median``,
        ``p75``, ``max`` (None without rows) and ``histogram`` (the 10 bin counts as a list).
    """
    rows = aggregates.rows
    rule_counts = {**dict.fromkeys(QUALITY_RULES, 0), **aggregates.failed_rules}
    histogram = list(aggregates.bins)
    counts = aggregates.verifiable_counts()
    checked = sum(counts[result] for result in CHECKED_RESULTS)
    passed = aggregates.passed
    return {
        "rows": rows,
        "passed": passed,
        "pass_rate": passed / rows if rows else None,
        "mean_score": aggregates.mean_score,
        "failed_rules": dict(sorted(rule_counts.items(), key=lambda item: (-item[1], item[0]))),
        "score_histogram": [
            {"bin": f"{i / HISTOGRAM_BINS:.1f}-{(i + 1) / HISTOGRAM_BINS:.1f}", "count": histogram[i]}
            for i in range(HISTOGRAM_BINS)
        ],
        "verifiable": {
            **counts,
            "rows": checked + counts["unverifiable"],
            "checked": checked,
            "accuracy": counts["correct"] / checked if checked else None,
        },
        # The score distribution in the shape the dataset card reads (distillset.publish.card).
        "count": rows,
        **aggregates.quantiles,
        "histogram": histogram,
    }
