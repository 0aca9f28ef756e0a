"""quality_scores, judge_scores and training_examples through Dagster with chunks of a few rows.

Protects (issue 19): with DISTILLSET_CHUNK_ROWS far below the rows of a stage, the catalog holds
exactly what scoring and building the whole partition at once gives (``score_frame``,
``build_training_examples`` over the tables read as frames), and the assets' metadata (row counts,
passed/failed rows, the summary, rows per split, judge counts) are the figures of those tables.
"""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest

from assets.metadata import counts_markdown
from distillset import catalog
from distillset.quality.score import score_frame
from distillset.quality.summary import quality_summary
from distillset.settings import QualityThresholds
from distillset.training.examples import build_training_examples
from helpers.flow import MODEL, last_metadata, materialize_flow, step_failures

CHUNK_ROWS = 7


@pytest.fixture
def prompts_dir(sample_prompts_dir):
    return sample_prompts_dir(15)


def test_small_chunks_give_the_whole_partition_and_its_metadata(distillset_home, prompts_dir, monkeypatch):
    from assets.judge import judge_assets, judge_checks
    from orchestration.definitions import all_asset_checks, all_assets

    monkeypatch.setenv("DISTILLSET_CHUNK_ROWS", str(CHUNK_ROWS))
    monkeypatch.setenv("DISTILLSET_JUDGE_ENABLED", "true")
    instance = dg.DagsterInstance.ephemeral()
    result = materialize_flow(instance, [*all_assets, *judge_assets, *all_asset_checks, *judge_checks])
    assert result.success, step_failures(result)
    assert all(e.passed for e in result.get_asset_check_evaluations())

    path = distillset_home / "catalog.duckdb"

    def partition(table: str) -> pl.DataFrame:
        return catalog.read_table(path, table, "WHERE teacher_model = ?", [MODEL])

    generations, prompts = partition("deduplicated_generations"), catalog.read_table(path, "prompt_pool")
    assert generations.height > 2 * CHUNK_ROWS

    # quality_scores: the whole partition scored at once, in the generations' order.
    rows = generations.select("prompt_id", "response", "finish_reason").join(
        prompts.select("prompt_id", "prompt_text", "reference"), on="prompt_id", how="left", maintain_order="left"
    )
    expected = score_frame(rows, thresholds=QualityThresholds(), key_column="prompt_id")
    expected = expected.select(pl.lit(MODEL).alias("teacher_model"), pl.all())
    scores = partition("quality_scores")
    assert scores.equals(expected)
    quality = last_metadata(result, "quality_scores")
    assert quality["dagster/row_count"] == scores.height
    assert quality["passed_rows"] == int(scores["passed"].sum())
    assert quality["failed_rows"] == scores.height - int(scores["passed"].sum())
    assert quality["summary"] == quality_summary(scores)
    assert quality["pass_rate"] == pytest.approx(scores["passed"].mean())
    assert len(quality["preview"].records) == 10

    # judge_scores: one row per answer, in the answers' order, each with its answer's hash.
    judgments = partition("judge_scores")
    assert judgments["prompt_id"].to_list() == generations["prompt_id"].to_list()
    assert judgments["answer_request_hash"].to_list() == generations["request_hash"].to_list()
    judge = last_metadata(result, "judge_scores")
    assert judge["dagster/row_count"] == judgments.height
    assert judge["unjudged_rows"] == judgments["judge_score"].null_count()
    assert judge["mean_judge_score"] == pytest.approx(judgments["judge_score"].mean())

    # training_examples: build_training_examples of the same tables.
    examples = partition("training_examples")
    built = build_training_examples(
        generations, scores, prompts, validation_fraction=0.05, judgments=judgments, run_id=result.run_id
    )
    assert examples.equals(built)
    metadata = last_metadata(result, "training_examples")
    assert metadata["dagster/row_count"] == examples.height
    splits = {k: int(v) for k, v in examples["split"].value_counts().iter_rows()}
    assert metadata["rows_by_split"] == counts_markdown(splits, "split")
    assert metadata["judge_scores_used"] is True
