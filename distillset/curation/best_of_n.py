"""Best-of-N selection: which of a prompt's samples are published, and why every other one is not.

``select_samples`` takes every sample the teacher stage drew (``distillset.teacher.generate``, one
row per sample with its verdict) and keeps at most k per prompt:

* a prompt with a verifier keeps only samples verified ``correct`` and not cut by ``length``,
  best quality score first; if none passed, nothing is kept (status ``unverified``) and curation
  records the prompt as ``no_verified_answer``; a prompt whose pass rate is outside the window
  (``DISTILLSET_PASS_RATE_MIN`` / ``_MAX``) keeps nothing either (status ``out_of_window``);
* a prompt without one ranks its samples by the heuristic quality score
  (``distillset.quality.score``) and keeps the best k; an answer cut by ``length`` is kept only
  when nothing else is (so the quality stage still sees, and fails, the truncation);
* a prompt none of whose samples got an answer passes its first sample on as it is (``failed`` or
  ``skipped``), as a single-answer run always did.

Every sample gets ``kept``, ``drop_reason`` and ``selection`` in ``teacher_samples``; per prompt,
samples paid, samples correct and the pass rate go to ``prompt_pass_rates``; ``summary`` holds
pass@1, pass@N, coverage, samples per prompt, the pass-rate histogram and tokens / cost per kept
example (asset metadata, the card and the manifest read it). The summary is SQL aggregates run by
DuckDB (``selection_summary_sql``), over frames, the teacher stage's Parquet parts or the catalog's
tables alike, so a run of millions of samples never holds their columns in Python.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import duckdb
import polars as pl

from distillset import ids
from distillset.quality.score import score_frame
from distillset.settings import QualityThresholds, TeacherSettings
from distillset.teacher.reasoning import with_reasoning
from distillset.teacher.rows import GENERATIONS_SCHEMA

SAMPLES_SCHEMA: dict[str, pl.DataType] = {
    **GENERATIONS_SCHEMA,
    "kept": pl.Boolean,
    "drop_reason": pl.String,
    "selection": pl.String,
    "quality_score": pl.Float64,
}
"""The ``teacher_samples`` columns of ``docs/engine.md``."""

PASS_RATES_SCHEMA: dict[str, pl.DataType] = {
    "teacher_model": pl.String,
    "prompt_id": pl.String,
    "verifier": pl.String,
    "samples_paid": pl.Int64,
    "samples_correct": pl.Int64,
    "pass_rate": pl.Float64,
    "kept": pl.Int64,
}
"""The ``prompt_pass_rates`` columns of ``docs/engine.md``."""

UNVERIFIED_STATUS = "unverified"
OUT_OF_WINDOW_STATUS = "out_of_window"
HISTOGRAM_BINS = 10


@dataclass(frozen=True)
class SelectionPolicy:
    """What a best-of-N run keeps (from ``TeacherSettings``; see ``policy_of``)."""

    samples_per_prompt: int = 1
    max_answers_per_prompt: int = 1
    pass_rate_min: float | None = None
    pass_rate_max: float | None = None
    export_reasoning: bool = False
    price_input_per_mtok: float = 0.0
    price_output_per_mtok: float = 0.0

    @property
    def early_stop(self) -> bool:
        """Sampling stops at k correct samples unless a pass-rate window needs all N."""
        return self.pass_rate_min is None and self.pass_rate_max is None

    def as_dict(self) -> dict:
        """The sampling policy as the card and the manifest state it."""
        return {
            "samples_per_prompt": self.samples_per_prompt,
            "max_answers_per_prompt": self.max_answers_per_prompt,
            "early_stop": self.early_stop,
            "pass_rate_min": self.pass_rate_min,
            "pass_rate_max": self.pass_rate_max,
            "export_reasoning": self.export_reasoning,
        }


def policy_of(settings: TeacherSettings) -> SelectionPolicy:
    """The selection policy of a teacher's settings."""
    return SelectionPolicy(
        samples_per_prompt=settings.samples_per_prompt,
        max_answers_per_prompt=settings.max_answers_per_prompt,
        pass_rate_min=settings.pass_rate_min,
        pass_rate_max=settings.pass_rate_max,
        export_reasoning=settings.export_reasoning,
        price_input_per_mtok=settings.price_input_per_mtok,
        price_output_per_mtok=settings.price_output_per_mtok,
    )


@dataclass
class Selection:
    """What ``select_samples`` returns."""

    generations: pl.DataFrame
    """The ``teacher_generations`` rows: kept samples, and one row per prompt with nothing kept."""
    samples: pl.DataFrame
    """The ``teacher_samples`` rows: every sample, with ``kept`` / ``drop_reason`` / ``selection``."""
    pass_rates: pl.DataFrame
    """The ``prompt_pass_rates`` rows."""
    policy: SelectionPolicy

    @cached_property
    def summary(self) -> dict:
        """pass@1, pass@N, coverage, samples per prompt, histogram, per-verifier pass rates, cost.

        Computed when first read: the teacher stage selects chunk by chunk and summarizes its parts
        once at the end, so it never pays for a summary per chunk."""
        return selection_summary(self.samples, self.pass_rates, self.policy)


def select_samples(
    samples: pl.DataFrame,
    prompts: pl.DataFrame,
    policy: SelectionPolicy,
    *,
    thresholds: QualityThresholds | None = None,
    extra_patterns: Path | None = None,
) -> Selection:
    """Keep at most ``policy.max_answers_per_prompt`` samples per prompt (module docstring).

    Args:
        samples: the teacher stage's rows (``GENERATIONS_SCHEMA``), any number per prompt.
        prompts: ``prompt_pool`` rows (``prompt_id``, ``prompt_text``, ``reference``), for ranking.
        policy: k, the pass-rate window, whether the reasoning is exported, prices.
        thresholds, extra_patterns: the quality rules' settings used for ranking.
    """
    scored = _with_quality_scores(samples, prompts, thresholds, extra_patterns)
    kept_rows: list[dict] = []
    sample_rows: list[dict] = []
    rate_rows: list[dict] = []
    for group in _groups(scored):
        kept, annotated, rate = _select_prompt(group, policy)
        kept_rows.extend(kept)
        sample_rows.extend(annotated)
        rate_rows.append(rate)
    generations = pl.DataFrame(
        [{k: row[k] for k in GENERATIONS_SCHEMA} for row in kept_rows], schema=GENERATIONS_SCHEMA, orient="row"
    )
    if policy.export_reasoning:
        generations = _export_reasoning(generations)
    sample_frame = pl.DataFrame(sample_rows, schema=SAMPLES_SCHEMA, orient="row")
    rates = pl.DataFrame(rate_rows, schema=PASS_RATES_SCHEMA, orient="row")
    return Selection(generations=generations, samples=sample_frame, pass_rates=rates, policy=policy)


def _with_quality_scores(
    samples: pl.DataFrame, prompts: pl.DataFrame, thresholds: QualityThresholds | None, extra: Path | None
) -> list[dict]:
    rows = samples.with_columns(pl.int_range(pl.len()).alias("_key")).to_dicts()
    answered = [r for r in rows if r["status"] == "ok" and r["response"] is not None]
    scores: dict[int, float] = {}
    if answered:
        frame = pl.DataFrame(
            {
                "_key": [r["_key"] for r in answered],
                "prompt_id": [r["prompt_id"] for r in answered],
                "response": [r["response"] for r in answered],
                "finish_reason": [r["finish_reason"] for r in answered],
            }
        )
        if prompts.height and "prompt_text" in prompts.columns:
            columns = [c for c in ("prompt_id", "prompt_text", "reference") if c in prompts.columns]
            frame = frame.join(prompts.select(columns), on="prompt_id", how="left")
        if "prompt_text" not in frame.columns:
            frame = frame.with_columns(pl.lit("").alias("prompt_text"))
        frame = frame.with_columns(pl.col("prompt_text").fill_null(""))
        result = score_frame(frame, thresholds=thresholds, key_column="_key", extra_patterns=extra)
        scores = dict(zip(result["_key"].to_list(), result["score"].to_list(), strict=True))
    for row in rows:
        row["quality_score"] = scores.get(row.pop("_key"))
    return rows


def _groups(rows: list[dict]) -> list[list[dict]]:
    by_prompt: dict[str, list[dict]] = {}
    for row in rows:
        by_prompt.setdefault(row["prompt_id"], []).append(row)
    return [sorted(group, key=lambda r: r["sample_index"]) for group in by_prompt.values()]


def _rank_key(row: dict) -> tuple:
    score = row["quality_score"]
    return (-(score if score is not None else -1.0), row["sample_index"])


def _select_prompt(group: list[dict], policy: SelectionPolicy) -> tuple[list[dict], list[dict], dict]:
    k = policy.max_answers_per_prompt
    answered = [r for r in group if r["status"] == "ok"]
    verifier = next((r["verifier"] for r in answered if r["verdict"] is not None), None)
    correct = [r for r in answered if r["verdict"] == "correct" and not _truncated(r)]
    pass_rate = len(correct) / len(answered) if verifier is not None and answered else None
    for row in group:
        row["kept"], row["selection"], row["drop_reason"] = False, None, _base_drop_reason(row, verifier)
    kept: list[dict] = []
    prompt_row: dict | None = None
    if not answered:
        prompt_row = dict(group[0])
    elif verifier is not None:
        outside = pass_rate is not None and _outside_window(pass_rate, policy)
        if outside:
            for row in group:
                row["drop_reason"] = "pass_rate_window"
            prompt_row = _prompt_level(
                group[0], OUT_OF_WINDOW_STATUS, f"pass rate {pass_rate:.2f} is outside {_window(policy)}"
            )
        else:
            kept = sorted(correct, key=_rank_key)[:k]
            for row in kept:
                row["kept"], row["selection"], row["drop_reason"] = True, "verified", None
            for row in correct:
                if not row["kept"]:
                    row["drop_reason"] = "ranked_below"
            if not kept:
                prompt_row = _prompt_level(group[0], UNVERIFIED_STATUS, _none_correct(answered))
    else:
        complete = [r for r in answered if not _truncated(r)]
        candidates = sorted(complete or answered, key=_rank_key)
        kept = candidates[:k]
        for row in kept:
            row["kept"], row["selection"], row["drop_reason"] = True, "quality_rank", None
        for row in answered:
            if not row["kept"] and row["drop_reason"] is None:
                row["drop_reason"] = "ranked_below"
    rate = {
        "teacher_model": group[0]["teacher_model"],
        "prompt_id": group[0]["prompt_id"],
        "verifier": verifier,
        "samples_paid": len(answered),
        "samples_correct": len(correct),
        "pass_rate": pass_rate,
        "kept": len(kept),
    }
    return (kept if prompt_row is None else [prompt_row]), group, rate


def _truncated(row: dict) -> bool:
    return row["finish_reason"] == "length" or not (row["response"] or "").strip()


def _base_drop_reason(row: dict, verifier: str | None) -> str | None:
    if row["status"] == "skipped":
        return "skipped_budget"
    if row["status"] != "ok":
        return "failed_generation"
    if _truncated(row):
        return "truncated"
    if verifier is not None and row["verdict"] in ("wrong", "unverifiable"):
        return row["verdict"]
    return None


def _outside_window(pass_rate: float, policy: SelectionPolicy) -> bool:
    low, high = policy.pass_rate_min, policy.pass_rate_max
    return (low is not None and pass_rate < low) or (high is not None and pass_rate > high)


def _window(policy: SelectionPolicy) -> str:
    low = "0" if policy.pass_rate_min is None else f"{policy.pass_rate_min:g}"
    high = "1" if policy.pass_rate_max is None else f"{policy.pass_rate_max:g}"
    return f"[{low}, {high}] (DISTILLSET_PASS_RATE_MIN/_MAX)"


def _none_correct(answered: list[dict]) -> str:
    reasons = Counter(r["verdict_reason"] or ("truncated" if _truncated(r) else "unknown") for r in answered)
    listed = ", ".join(f"{reason} x{n}" for reason, n in reasons.most_common())
    return f"none of {len(answered)} sample(s) verified correct: {listed}"


def _prompt_level(first: dict, status: str, error: str) -> dict:
    """The one row a prompt with nothing kept leaves in ``teacher_generations``: no answer, a reason."""
    row = dict(first)
    row.update(status=status, error=error, response=None)
    return row


def _export_reasoning(generations: pl.DataFrame) -> pl.DataFrame:
    """The last assistant message becomes ``<think>trace</think>`` + answer where there is a trace."""

    def rewrite(messages_json: str, reasoning: str | None) -> str:
        if not reasoning:
            return messages_json
        messages = json.loads(messages_json)
        if messages and messages[-1].get("role") == "assistant":
            messages[-1] = {**messages[-1], "content": with_reasoning(messages[-1]["content"], reasoning)}
        return ids.canonical_json(messages)

    if generations.is_empty():
        return generations
    return generations.with_columns(
        pl.struct("messages_json", "reasoning", "status")
        .map_elements(
            lambda r: rewrite(r["messages_json"], r["reasoning"]) if r["status"] == "ok" else r["messages_json"],
            return_dtype=pl.String,
        )
        .alias("messages_json")
    )


SUMMARY_SAMPLE_COLUMNS = (
    "sample_index",
    "verifier",
    "verdict",
    "status",
    "kept",
    "prompt_tokens",
    "completion_tokens",
    "selection",
    "drop_reason",
)
"""The ``teacher_samples`` columns ``selection_summary`` reads (never the samples' texts)."""

SUMMARY_RATE_COLUMNS = ("verifier", "kept", "samples_correct", "pass_rate")
"""The ``prompt_pass_rates`` columns ``selection_summary`` reads."""


def selection_summary(samples: pl.DataFrame, rates: pl.DataFrame, policy: SelectionPolicy) -> dict:
    """pass@1, pass@N, coverage, samples per prompt, the pass-rate histogram, verifiers, cost.

    ``samples`` holds ``teacher_samples`` rows (at least ``SUMMARY_SAMPLE_COLUMNS``), ``rates``
    ``prompt_pass_rates`` rows (at least ``SUMMARY_RATE_COLUMNS``); see ``selection_summary_sql``
    for what each figure counts.
    """
    con = duckdb.connect()
    try:
        con.register("_samples", samples.select(SUMMARY_SAMPLE_COLUMNS).to_arrow())
        con.register("_rates", rates.select(SUMMARY_RATE_COLUMNS).to_arrow())
        return selection_summary_sql(con, "_samples", "_rates", policy)
    finally:
        con.close()


def parquet_selection_summary(samples: Sequence[Path], rates: Sequence[Path], policy: SelectionPolicy) -> dict:
    """``selection_summary`` of ``teacher_samples`` / ``prompt_pass_rates`` Parquet files (the teacher
    stage's parts), read by DuckDB a row group at a time; no files is no samples."""
    if not samples or not rates:
        return selection_summary(pl.DataFrame(schema=SAMPLES_SCHEMA), pl.DataFrame(schema=PASS_RATES_SCHEMA), policy)
    con = duckdb.connect()
    try:
        return selection_summary_sql(con, _read_parquet(samples), _read_parquet(rates), policy)
    finally:
        con.close()


def _read_parquet(files: Sequence[Path]) -> str:
    listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    return f"read_parquet([{listed}])"


def selection_summary_sql(con: duckdb.DuckDBPyConnection, samples: str, rates: str, policy: SelectionPolicy) -> dict:
    """The best-of-N summary as SQL aggregates over two relations, run by DuckDB on ``con``.

    ``samples`` and ``rates`` are relations in SQL (a table, ``read_parquet(...)`` or a parenthesized
    query) with ``SUMMARY_SAMPLE_COLUMNS`` and ``SUMMARY_RATE_COLUMNS``. Only counts and sums come
    back to Python, so memory does not grow with the samples.

    ``pass_at_1`` is the share of verifiable prompts whose first sample is correct, ``pass_at_n``
    the share with any correct sample among those drawn (with early stop, sampling ends at the
    first k passes, so this is pass@N for k = 1), ``coverage`` the share of verifiable prompts with
    a kept verified answer. Tokens and cost count every sample with an answer (paid by this run or
    an earlier one) against the examples kept.
    """
    prompts, verifiable, covered, any_correct, with_kept = con.execute(
        "SELECT count(*), count(verifier), count(*) FILTER (WHERE verifier IS NOT NULL AND kept > 0), "
        "count(*) FILTER (WHERE verifier IS NOT NULL AND samples_correct > 0), count(*) FILTER (WHERE kept > 0) "
        f"FROM {rates}"
    ).fetchone()
    answered, kept, prompt_tokens, completion_tokens, first_correct = con.execute(
        "SELECT count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE kept), "
        "coalesce(sum(prompt_tokens) FILTER (WHERE status = 'ok'), 0), "
        "coalesce(sum(completion_tokens) FILTER (WHERE status = 'ok'), 0), "
        "count(*) FILTER (WHERE sample_index = 0 AND verifier IS NOT NULL AND verdict = 'correct') "
        f"FROM {samples}"
    ).fetchone()
    prompt_tokens, completion_tokens = int(prompt_tokens), int(completion_tokens)
    cost = (prompt_tokens * policy.price_input_per_mtok + completion_tokens * policy.price_output_per_mtok) / 1e6
    return {
        "policy": policy.as_dict(),
        "prompts": prompts,
        "prompts_verifiable": verifiable,
        "samples_paid": answered,
        "samples_paid_per_prompt": round(answered / prompts, 4) if prompts else 0.0,
        "examples_kept": kept,
        "pass_at_1": _share(first_correct, verifiable),
        "pass_at_n": _share(any_correct, verifiable),
        "coverage": _share(covered, verifiable),
        "prompts_with_kept_answer": with_kept,
        "tokens_per_kept_example": round((prompt_tokens + completion_tokens) / kept, 2) if kept else None,
        "cost_usd": round(cost, 6),
        "cost_per_kept_example_usd": round(cost / kept, 8) if kept else None,
        "pass_rate_histogram": _pass_rate_histogram(con, rates),
        "verifiers": _verifier_rates(con, samples),
        "selection": _counts(con, samples, "selection"),
        "drop_reasons": _counts(con, samples, "drop_reason"),
    }


def _pass_rate_histogram(con: duckdb.DuckDBPyConnection, rates: str) -> dict[str, int]:
    """Verifiable prompts per pass-rate bin (``0.0-0.1`` ... ``0.9-1.0``; 1.0 falls in the last)."""
    bins = {f"{i / HISTOGRAM_BINS:.1f}-{(i + 1) / HISTOGRAM_BINS:.1f}": 0 for i in range(HISTOGRAM_BINS)}
    labels = list(bins)
    rows = con.execute(
        f"SELECT least(CAST(floor(pass_rate * {HISTOGRAM_BINS}) AS BIGINT), {HISTOGRAM_BINS - 1}) AS bin, count(*) "
        f"FROM {rates} WHERE verifier IS NOT NULL AND pass_rate IS NOT NULL GROUP BY bin"
    ).fetchall()
    for index, count in rows:
        bins[labels[index]] += count
    return bins


def _verifier_rates(con: duckdb.DuckDBPyConnection, samples: str) -> dict[str, dict]:
    rows = con.execute(
        "SELECT verifier, count(*), count(*) FILTER (WHERE verdict = 'correct') "
        f"FROM {samples} WHERE verifier IS NOT NULL GROUP BY verifier ORDER BY verifier"
    ).fetchall()
    return {
        verifier: {"samples": total, "correct": correct, "pass_rate": _share(correct, total)}
        for verifier, total, correct in rows
    }


def _counts(con: duckdb.DuckDBPyConnection, samples: str, column: str) -> dict[str, int]:
    """How often each non-empty value of ``column`` occurs, most frequent first."""
    rows = con.execute(
        f"SELECT {column}, count(*) AS n FROM {samples} WHERE {column} IS NOT NULL AND {column} <> '' "
        f"GROUP BY {column} ORDER BY n DESC, {column}"
    ).fetchall()
    return dict(rows)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
