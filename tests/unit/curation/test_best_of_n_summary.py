"""The best-of-N summary (distillset/curation/best_of_n.py) is SQL aggregates run by DuckDB: the same
figures from frames (``selection_summary``), from the teacher stage's Parquet parts
(``parquet_selection_summary``) and from the catalog's tables (``best_of_n_report``), checked
against counts worked out by hand."""

from __future__ import annotations

import polars as pl
import pytest

from distillset import catalog
from distillset.curation.best_of_n import (
    PASS_RATES_SCHEMA,
    SAMPLES_SCHEMA,
    SelectionPolicy,
    parquet_selection_summary,
    selection_summary,
)
from distillset.settings import TeacherSettings
from distillset.training.best_of_n import best_of_n_report

MODEL = "teacher-a"

# (prompt, sample_index, verifier, verdict, status, kept, selection, drop_reason)
SAMPLES = [
    ("p1", 0, "math", "wrong", "ok", False, None, "wrong"),
    ("p1", 1, "math", "correct", "ok", True, "verified", None),
    ("p1", 2, "math", "correct", "ok", False, None, "ranked_below"),
    ("p2", 0, "math", "correct", "ok", True, "verified", None),
    ("p3", 0, None, None, "ok", True, "quality_rank", None),
    ("p3", 1, None, None, "ok", False, None, "ranked_below"),
    ("p3", 2, None, None, "failed", False, None, "failed_generation"),
    ("p4", 0, "math", "wrong", "ok", False, None, "wrong"),
    ("p4", 1, "math", "wrong", "ok", False, None, "wrong"),
]
# (prompt, verifier, samples_paid, samples_correct, pass_rate, kept)
RATES = [
    ("p1", "math", 3, 2, 2 / 3, 1),
    ("p2", "math", 1, 1, 1.0, 1),
    ("p3", None, 2, 0, None, 1),
    ("p4", "math", 2, 0, 0.0, 0),
]
POLICY = SelectionPolicy(samples_per_prompt=3, price_input_per_mtok=3.0, price_output_per_mtok=15.0)


def _frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    samples = pl.DataFrame(
        [
            {
                "teacher_model": MODEL,
                "prompt_id": p,
                "sample_index": i,
                "verifier": verifier,
                "verdict": verdict,
                "status": status,
                "kept": kept,
                "selection": selection,
                "drop_reason": drop,
                # A failed sample's tokens must not count: it has no answer.
                "prompt_tokens": 10 if status == "ok" else 5,
                "completion_tokens": 20 if status == "ok" else 7,
            }
            for p, i, verifier, verdict, status, kept, selection, drop in SAMPLES
        ],
    )
    samples = samples.select(pl.col(c).cast(SAMPLES_SCHEMA[c]) for c in samples.columns)
    rates = pl.DataFrame(
        [
            {
                "teacher_model": MODEL,
                "prompt_id": p,
                "verifier": v,
                "samples_paid": paid,
                "samples_correct": c,
                "pass_rate": r,
                "kept": k,
            }
            for p, v, paid, c, r, k in RATES
        ],
        schema=PASS_RATES_SCHEMA,
    )
    return samples, rates


EXPECTED = {
    "prompts": 4,
    "prompts_verifiable": 3,
    "samples_paid": 8,
    "samples_paid_per_prompt": 2.0,
    "examples_kept": 3,
    "pass_at_1": round(1 / 3, 4),  # p2 only: p1's first sample was wrong
    "pass_at_n": round(2 / 3, 4),
    "coverage": round(2 / 3, 4),
    "prompts_with_kept_answer": 3,
    "tokens_per_kept_example": 80.0,  # 8 answers x 30 tokens over 3 kept
    "cost_usd": round((80 * 3.0 + 160 * 15.0) / 1e6, 6),
    "cost_per_kept_example_usd": round((80 * 3.0 + 160 * 15.0) / 1e6 / 3, 8),
    "verifiers": {"math": {"samples": 6, "correct": 3, "pass_rate": 0.5}},
    "selection": {"verified": 2, "quality_rank": 1},
    "drop_reasons": {"wrong": 3, "ranked_below": 2, "failed_generation": 1},
}


def _check(summary: dict) -> None:
    for key, value in EXPECTED.items():
        if key != "drop_reasons" or key in summary:  # the report leaves the drop reasons out
            assert summary[key] == value, key
    histogram = summary["pass_rate_histogram"]
    assert len(histogram) == 10 and sum(histogram.values()) == 3
    assert (histogram["0.0-0.1"], histogram["0.6-0.7"], histogram["0.9-1.0"]) == (1, 1, 1)  # 1.0 in the last bin
    assert summary["policy"] == POLICY.as_dict()


def test_summary_of_frames_counts_what_the_selection_did():
    _check(selection_summary(*_frames(), POLICY))


def test_summary_of_parquet_parts_and_of_the_catalog_match_the_frames(tmp_path):
    samples, rates = _frames()
    # Two parts per table, as the teacher stage writes them chunk by chunk.
    parts = {"samples": [], "rates": []}
    for name, frame in (("samples", samples), ("rates", rates)):
        for number, half in enumerate((frame.head(frame.height // 2), frame.tail(frame.height - frame.height // 2))):
            path = tmp_path / f"{name}-{number}.parquet"
            half.write_parquet(path)
            parts[name].append(path)
    _check(parquet_selection_summary(parts["samples"], parts["rates"], POLICY))

    path = tmp_path / "catalog.duckdb"
    catalog.replace_partition(path, "teacher_samples", samples, column="teacher_model", value=MODEL)
    catalog.replace_partition(path, "prompt_pass_rates", rates, column="teacher_model", value=MODEL)
    # Another teacher's rows in the same tables are not counted.
    catalog.replace_partition(
        path,
        "teacher_samples",
        samples.with_columns(pl.lit("other").alias("teacher_model")),
        column="teacher_model",
        value="other",
    )
    teacher = TeacherSettings(model=MODEL, samples_per_prompt=3, price_input_per_mtok=3.0, price_output_per_mtok=15.0)
    report = best_of_n_report(path, teacher)
    assert "drop_reasons" not in report
    _check(report)


def test_no_samples_is_a_zero_summary_and_a_policy_only_report(tmp_path):
    summary = parquet_selection_summary([], [], POLICY)
    assert (summary["prompts"], summary["samples_paid"], summary["examples_kept"]) == (0, 0, 0)
    assert summary["pass_at_1"] is None and summary["tokens_per_kept_example"] is None
    assert sum(summary["pass_rate_histogram"].values()) == 0 and summary["selection"] == {}
    assert best_of_n_report(tmp_path / "none.duckdb", TeacherSettings(model=MODEL)) == {
        "policy": SelectionPolicy().as_dict()
    }


@pytest.mark.parametrize("rate, band", [(0.0, "0.0-0.1"), (0.1, "0.1-0.2"), (0.95, "0.9-1.0"), (1.0, "0.9-1.0")])
def test_histogram_bands_match_the_documented_edges(rate, band):
    samples, rates = _frames()
    rates = rates.filter(pl.col("prompt_id") == "p1").with_columns(pl.lit(rate).alias("pass_rate"))
    histogram = selection_summary(samples, rates, POLICY)["pass_rate_histogram"]
    assert histogram[band] == 1 and sum(histogram.values()) == 1
