"""Assembling training examples: the kept, passing generations with their lineage and split."""

from __future__ import annotations

import polars as pl

from distillset.ids import example_id
from distillset.quality.judge import combine_scores
from distillset.training.split import assign_split

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
]


def build_training_examples(
    generations: pl.DataFrame,
    scores: pl.DataFrame,
    prompts: pl.DataFrame,
    *,
    validation_fraction: float,
    judgments: pl.DataFrame | None = None,
    judge_weight: float = 0.5,
    judge_min_score: float | None = None,
) -> pl.DataFrame:
    """Join deduplicated generations with passing quality scores and prompt provenance.

    Args:
        generations: rows of ``deduplicated_generations`` for one teacher.
        scores: rows of ``quality_scores`` for the same teacher (``prompt_id``, ``score``, ``passed``).
        prompts: ``prompt_pool`` rows (provenance columns).
        validation_fraction: share of examples that go to ``validation``, chosen by a hash of the id.
        judgments: rows of ``judge_scores`` for the same teacher, or None / empty when the judge
            stage has not run. When given, ``quality_score`` is ``judge.combine_scores`` of the
            heuristic score and the judgment of the same answer (same ``prompt_id`` and answer
            request hash: a judgment of an older answer is ignored); a row without a judgment
            keeps its heuristic score.
        judge_weight: the judgment's share in ``quality_score`` (``DISTILLSET_JUDGE_WEIGHT``).
        judge_min_score: rows judged below this (1-10 scale) are left out; rows without a
            judgment are kept.
    """
    passing = scores.filter(pl.col("passed")).select("prompt_id", pl.col("score").alias("quality_score"))
    if judgments is not None and judgments.height:
        passing = _apply_judgments(passing, generations, judgments, judge_weight, judge_min_score)
    rows = (
        generations.join(passing, on="prompt_id", how="inner")
        .join(
            prompts.select("prompt_id", "source_file", "source_line", "source_sha256", "license"),
            on="prompt_id",
            how="left",
        )
        .sort("prompt_id")
    )
    rows = rows.with_columns(
        pl.struct("teacher_model", "prompt_id", "request_hash", "simulated")
        .map_elements(
            lambda r: example_id(r["teacher_model"], r["prompt_id"], r["request_hash"], simulated=bool(r["simulated"])),
            return_dtype=pl.String,
        )
        .alias("example_id")
    )
    rows = rows.with_columns(assign_split(rows["example_id"], validation_fraction).alias("split"))
    return rows.select(TRAINING_EXAMPLES_COLUMNS)


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
