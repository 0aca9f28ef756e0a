"""Assembling training examples: the kept, passing generations with their lineage and split."""

from __future__ import annotations

import polars as pl

from distillset.ids import example_id
from distillset.quality.judge import combine_scores
from distillset.training.split import fallback_validation_key, split_of_keys

TRAINING_EXAMPLES_COLUMNS = [
    "example_id",
    "prompt_id",
    "teacher_model",
    "messages_json",
    "split",
    "source_file",
    "source_line",
    "source_sha256",
    "license",
    "request_hash",
    "generated_at",
    "quality_score",
    "cluster_id",
    "simulated",
    "teacher_origin",
    "served_model",
    "text_hash",
    "run_id",
]
"""The ``training_examples`` columns of ``docs/engine.md``, in order."""

SIMULATED_ORIGIN = "simulated"
REMOTE_ORIGIN = "remote"


def build_training_examples(
    generations: pl.DataFrame,
    scores: pl.DataFrame,
    prompts: pl.DataFrame,
    *,
    validation_fraction: float,
    judgments: pl.DataFrame | None = None,
    judge_weight: float = 0.5,
    judge_min_score: float | None = None,
    run_id: str | None = None,
) -> pl.DataFrame:
    """Join deduplicated generations with passing quality scores and prompt provenance.

    Args:
        generations: rows of ``deduplicated_generations`` for one teacher.
        scores: rows of ``quality_scores`` for the same teacher (``prompt_id``, ``score``, ``passed``).
        prompts: ``prompt_pool`` rows (provenance columns).
        validation_fraction: share of examples that go to ``validation``, chosen by a hash of the
            prompt's ``text_hash`` (``prompt_id`` when the pool has none): never of the answer, so a
            prompt keeps its side across versions, teachers and sampling settings.
        judgments: rows of ``judge_scores`` for the same teacher, or None / empty when the judge
            stage has not run. When given, ``quality_score`` is ``judge.combine_scores`` of the
            heuristic score and the judgment of the same answer (same ``prompt_id`` and answer
            request hash: a judgment of an older answer is ignored); a row without a judgment
            keeps its heuristic score.
        judge_weight: the judgment's share in ``quality_score`` (``DISTILLSET_JUDGE_WEIGHT``).
        judge_min_score: rows judged below this (1-10 scale) are left out; rows without a
            judgment are kept.
        run_id: the Dagster run building the examples (recorded per row for ``explain``).
    """
    passing = scores.filter(pl.col("passed")).select("prompt_id", pl.col("score").alias("quality_score"))
    if judgments is not None and judgments.height:
        passing = _apply_judgments(passing, generations, judgments, judge_weight, judge_min_score)
    rows = (
        generations.join(passing, on="prompt_id", how="inner")
        .join(
            _with_text_hash(prompts).select("prompt_id", *PROVENANCE_COLUMNS),
            on="prompt_id",
            how="left",
        )
        .sort("prompt_id")
    )
    keys = _split_keys(rows).to_list()
    forced = fallback_validation_key(keys, validation_fraction, rows=rows.height)
    return finish_examples(rows, validation_fraction=validation_fraction, forced_validation_key=forced, run_id=run_id)


PROVENANCE_COLUMNS = ("source_file", "source_line", "source_sha256", "license", "text_hash")
"""The ``prompt_pool`` columns an example carries."""


def finish_examples(
    rows: pl.DataFrame, *, validation_fraction: float, forced_validation_key: str | None, run_id: str | None
) -> pl.DataFrame:
    """The ``TRAINING_EXAMPLES_COLUMNS`` of joined rows (a generation, its ``quality_score`` and its
    prompt's ``PROVENANCE_COLUMNS``): origin, run, ``example_id`` and split, row by row, so a chunk
    of rows finishes like the whole set (``forced_validation_key`` is the set's
    ``split.fallback_validation_key``)."""
    rows = _with_origin(rows).with_columns(pl.lit(run_id, dtype=pl.String).alias("run_id"))
    # A comprehension over the columns, not map_elements over a struct (a dict built per row).
    ids_ = [
        example_id(model, prompt, request, simulated=bool(simulated))
        for model, prompt, request, simulated in zip(
            *(rows.get_column(name).to_list() for name in ("teacher_model", "prompt_id", "request_hash", "simulated")),
            strict=True,
        )
    ]
    rows = rows.with_columns(pl.Series("example_id", ids_, dtype=pl.String))
    splits = split_of_keys(
        _split_keys(rows).to_list(), validation_fraction, forced_validation_key=forced_validation_key
    )
    return rows.with_columns(splits.alias("split")).select(TRAINING_EXAMPLES_COLUMNS)


def _split_keys(rows: pl.DataFrame) -> pl.Series:
    # The prompt's normalized text, never the answer (split.assign_split).
    return rows.select(pl.coalesce("text_hash", "prompt_id").cast(pl.Utf8)).to_series()


def _with_text_hash(prompts: pl.DataFrame) -> pl.DataFrame:
    if "text_hash" in prompts.columns:
        return prompts
    return prompts.with_columns(pl.lit(None, dtype=pl.String).alias("text_hash"))


def _with_origin(rows: pl.DataFrame) -> pl.DataFrame:
    """Each row's ``teacher_origin`` (where its answer came from) and ``served_model``, from the row itself.

    ``teacher_generations`` carries the answer's ``simulated`` flag and ``served_model``; an
    ``origin`` column, when a generation frame has one, is kept as it is.
    """
    if "served_model" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, dtype=pl.String).alias("served_model"))
    simulated = pl.col("simulated").fill_null(False)
    derived = pl.when(simulated).then(pl.lit(SIMULATED_ORIGIN)).otherwise(pl.lit(REMOTE_ORIGIN))
    if "origin" in rows.columns:
        derived = pl.coalesce(pl.col("origin"), derived)
    return rows.with_columns(derived.alias("teacher_origin"))


def _apply_judgments(
    passing: pl.DataFrame, generations: pl.DataFrame, judgments: pl.DataFrame, weight: float, min_score: float | None
) -> pl.DataFrame:
    current = generations.select("prompt_id", pl.col("request_hash").alias("answer_request_hash")).join(
        judgments.select("prompt_id", "answer_request_hash", "judge_score"),
        on=["prompt_id", "answer_request_hash"],
        how="inner",
    )
    judged = passing.join(current.select("prompt_id", "judge_score"), on="prompt_id", how="left")
    if min_score is not None:
        judged = judged.filter(pl.col("judge_score").is_null() | (pl.col("judge_score") >= min_score))
    return judged.select(
        "prompt_id", combine_scores(pl.col("quality_score"), pl.col("judge_score"), weight).alias("quality_score")
    )
