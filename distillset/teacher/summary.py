"""The best-of-N summary of the teacher stage, counted part by part from the spooled Parquet files.

``best_of_n.selection_summary`` takes the whole ``teacher_samples`` and ``prompt_pass_rates``
frames: at a million prompts the spool's parts read back whole (and a Python string per sample
for the selection and drop-reason counts) were a few hundred MB at the end of the teacher stage.
Every figure of the summary is a sum of counts over disjoint prompts, so ``summary_of_parts``
reads one part at a time, keeps the counts and computes the same dict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from distillset.curation.best_of_n import (
    PASS_RATES_SCHEMA,
    SUMMARY_SAMPLE_COLUMNS,
    SelectionPolicy,
    pass_rate_histogram,
)

_RATE_COLUMNS = ("verifier", "samples_correct", "pass_rate", "kept")


@dataclass
class _Totals:
    """The counts ``selection_summary`` is made of, summed over parts."""

    prompts: int = 0
    verifiable: int = 0
    correct_first: int = 0
    answered: int = 0
    kept: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    covered: int = 0
    any_correct: int = 0
    with_kept_answer: int = 0
    histogram: Counter = field(default_factory=Counter)
    verifier_samples: Counter = field(default_factory=Counter)
    verifier_correct: Counter = field(default_factory=Counter)
    selection: Counter = field(default_factory=Counter)
    drop_reasons: Counter = field(default_factory=Counter)

    def add_samples(self, samples: pl.DataFrame) -> None:
        verified = pl.col("verifier").is_not_null()
        answered = pl.col("status") == "ok"
        row = samples.select(
            ((pl.col("sample_index") == 0) & verified & (pl.col("verdict") == "correct")).sum().alias("first"),
            answered.sum().alias("answered"),
            pl.col("kept").cast(pl.Int64).sum().alias("kept"),
            pl.col("prompt_tokens").filter(answered).sum().alias("prompt_tokens"),
            pl.col("completion_tokens").filter(answered).sum().alias("completion_tokens"),
        ).row(0, named=True)
        self.correct_first += int(row["first"] or 0)
        self.answered += int(row["answered"] or 0)
        self.kept += int(row["kept"] or 0)
        self.prompt_tokens += int(row["prompt_tokens"] or 0)
        self.completion_tokens += int(row["completion_tokens"] or 0)
        by_verifier = (
            samples.filter(verified)
            .group_by("verifier", maintain_order=True)
            .agg(pl.len().alias("n"), (pl.col("verdict") == "correct").sum().alias("correct"))
        )
        for verifier, n, correct in by_verifier.iter_rows():
            self.verifier_samples[verifier] += n
            self.verifier_correct[verifier] += correct
        # Counted in first-seen order, like Counter over the whole column (the dict's key order).
        for column, counter in (("selection", self.selection), ("drop_reason", self.drop_reasons)):
            counts = samples.filter(pl.col(column).is_not_null() & (pl.col(column) != "")).group_by(
                column, maintain_order=True
            )
            for value, n in counts.len().iter_rows():
                counter[value] += n

    def add_rates(self, rates: pl.DataFrame) -> None:
        self.prompts += rates.height
        verifiable = rates.filter(pl.col("verifier").is_not_null())
        self.verifiable += verifiable.height
        self.covered += verifiable.filter(pl.col("kept") > 0).height
        self.any_correct += verifiable.filter(pl.col("samples_correct") > 0).height
        self.with_kept_answer += rates.filter(pl.col("kept") > 0).height
        self.histogram.update(pass_rate_histogram(verifiable))


def summary_of_parts(sample_parts: Sequence[Path], rate_parts: Sequence[Path], policy: SelectionPolicy) -> dict:
    """``best_of_n.selection_summary`` of the concatenated parts, reading one part at a time.

    ``sample_parts`` are ``teacher_samples`` Parquet files (only ``SUMMARY_SAMPLE_COLUMNS`` are
    read), ``rate_parts`` ``prompt_pass_rates`` files; memory holds one part's columns.
    """
    totals = _Totals()
    for path in sample_parts:
        totals.add_samples(pl.read_parquet(path, columns=list(SUMMARY_SAMPLE_COLUMNS)))
    for path in rate_parts:
        totals.add_rates(pl.read_parquet(path, columns=list(_RATE_COLUMNS)))
    if not rate_parts:
        totals.add_rates(pl.DataFrame(schema={c: PASS_RATES_SCHEMA[c] for c in _RATE_COLUMNS}))
    kept, verifiable, prompts = totals.kept, totals.verifiable, totals.prompts
    cost = (
        totals.prompt_tokens * policy.price_input_per_mtok + totals.completion_tokens * policy.price_output_per_mtok
    ) / 1e6
    bins = pass_rate_histogram(pl.DataFrame(schema={"pass_rate": pl.Float64}))  # every bin, in order
    return {
        "policy": policy.as_dict(),
        "prompts": prompts,
        "prompts_verifiable": verifiable,
        "samples_paid": totals.answered,
        "samples_paid_per_prompt": round(totals.answered / prompts, 4) if prompts else 0.0,
        "examples_kept": kept,
        "pass_at_1": _share(totals.correct_first, verifiable),
        "pass_at_n": _share(totals.any_correct, verifiable),
        "coverage": _share(totals.covered, verifiable),
        "prompts_with_kept_answer": totals.with_kept_answer,
        "tokens_per_kept_example": round((totals.prompt_tokens + totals.completion_tokens) / kept, 2) if kept else None,
        "cost_usd": round(cost, 6),
        "cost_per_kept_example_usd": round(cost / kept, 8) if kept else None,
        "pass_rate_histogram": {label: totals.histogram[label] for label in bins},
        "verifiers": {
            verifier: {
                "samples": totals.verifier_samples[verifier],
                "correct": totals.verifier_correct[verifier],
                "pass_rate": _share(totals.verifier_correct[verifier], totals.verifier_samples[verifier]),
            }
            for verifier in sorted(totals.verifier_samples)
        },
        "selection": dict(totals.selection),
        "drop_reasons": dict(totals.drop_reasons),
    }


def _share(part: int, whole: int) -> float | None:
    # As best_of_n's: a share rounded to 4 places, None of nothing.
    return round(part / whole, 4) if whole else None
