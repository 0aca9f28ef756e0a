"""The summary of a scored set stored as asset metadata and shown on the dataset card."""

from __future__ import annotations

import polars as pl

from distillset.quality.gates import verifiable_counts
from distillset.quality.rules import QUALITY_RULES
from distillset.quality.verifiable import CHECKED_RESULTS

HISTOGRAM_BINS = 10


def quality_summary(scores: pl.DataFrame) -> dict:
    """Figures for asset metadata and the dataset card.

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
    counts = verifiable_counts(scores)
    checked = sum(counts[result] for result in CHECKED_RESULTS)
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
            "rows": checked + counts["unverifiable"],
            "checked": checked,
            "accuracy": counts["correct"] / checked if checked else None,
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
