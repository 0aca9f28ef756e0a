"""The optional LLM-as-judge stage through Dagster, on a temporary DISTILLSET_HOME and the simulator.

Protects: materializing the graph with `judge_scores` fills the judge table (one judgment per
deduplicated answer, parsed, from the simulated judge), `training_examples.quality_score` becomes
the documented blend of the heuristic score and the judgment, a second materialization pays the
judge for nothing (every judgment comes from the ledger), and `distill_job` leaves the judge out
unless DISTILLSET_JUDGE_ENABLED (with no edge that would make the UI wait on it) while `judge_job`
runs it.
"""

from __future__ import annotations


import dagster as dg
import duckdb
import pytest
from flow_helpers import MODEL, last_metadata, materialize_flow, step_failures

from distillset.quality.judge import combine_scores



@pytest.fixture
def prompts_dir(sample_prompts_dir):
    """A small slice of the shipped sample prompts (single- and two-turn), for a fast flow."""
    return sample_prompts_dir(15)


def _materialize(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """The whole graph as DISTILLSET_JUDGE_ENABLED=true builds it: training_examples after the judge."""
    from assets.judge import judge_assets, judge_checks
    from assets.training_set import training_examples_asset
    from orchestration.definitions import all_asset_checks, all_assets

    assets = [a for a in all_assets if a.key != dg.AssetKey("training_examples")]
    return materialize_flow(
        instance, [*assets, training_examples_asset(after_judge=True), *judge_assets, *all_asset_checks, *judge_checks]
    )


def test_judge_scores_fill_the_table_blend_into_quality_score_and_rerun_for_free(distillset_home, prompts_dir):
    instance = dg.DagsterInstance.ephemeral()
    first = _materialize(instance)
    assert first.success, step_failures(first)

    with duckdb.connect(str(distillset_home / "catalog.duckdb"), read_only=True) as con:
        answers = con.execute("SELECT count(*) FROM deduplicated_generations WHERE teacher_model = ?", [MODEL]).fetchone()[0]
        judged = con.execute(
            "SELECT prompt_id, judge_score, rationale, error, judge_model, simulated, answer_request_hash FROM judge_scores WHERE teacher_model = ?",
            [MODEL],
        ).fetchall()
        blended = con.execute(
            """
            SELECT e.prompt_id, e.quality_score, q.score, j.judge_score
            FROM training_examples e
            JOIN quality_scores q USING (teacher_model, prompt_id)
            JOIN judge_scores j USING (teacher_model, prompt_id)
            WHERE e.teacher_model = ? AND j.judge_score IS NOT NULL
            ORDER BY e.prompt_id
            """,
            [MODEL],
        ).fetchall()
        generation_hashes = dict(
            con.execute("SELECT prompt_id, request_hash FROM deduplicated_generations WHERE teacher_model = ?", [MODEL]).fetchall()
        )

    assert answers > 0 and len(judged) == answers
    parsed = [row for row in judged if row[1] is not None]
    assert len(parsed) == answers, [row for row in judged if row[3]]
    assert all(1 <= row[1] <= 10 and row[2] and row[3] is None for row in parsed)
    assert {row[4] for row in judged} == {MODEL} and all(row[5] for row in judged)
    assert all(generation_hashes[row[0]] == row[6] for row in judged)

    assert blended, "no judged example reached training_examples"
    sample = blended[len(blended) // 2]
    assert sample[1] == pytest.approx(combine_scores(sample[2], sample[3], 0.5))
    assert any(abs(quality - heuristic) > 1e-9 for _, quality, heuristic, _ in blended), "the judgment changed no score"

    metadata = last_metadata(first, "judge_scores")
    assert metadata["dagster/row_count"] == answers
    assert metadata["judge/requests_paid"] == answers and metadata["judge/cache_hits"] == 0
    assert metadata["parse_failures"] == 0 and metadata["simulated"] is True
    assert sum(int(line.split("|")[2]) for line in metadata["score_histogram"].splitlines()[2:]) == answers
    assert last_metadata(first, "training_examples")["judge_scores_used"] is True

    second = _materialize(instance)
    assert second.success, step_failures(second)
    again = last_metadata(second, "judge_scores")
    assert again["judge/requests_paid"] == 0 and again["judge/cache_hits"] == answers
    assert last_metadata(second, "training_set")["published_new_version"] is False


def test_distill_job_leaves_the_judge_out_unless_enabled_and_judge_job_runs_it(monkeypatch):
    import importlib

    import orchestration.jobs as jobs
    from assets.training_set import training_examples, training_examples_asset
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()

    def assets_of(job) -> set[str]:
        return {key.to_user_string() for key in job.selection.resolve(graph)}

    # Off (the default): the judge is in the graph, out of distill_job, and nothing waits on it.
    assert "judge_scores" in {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert "judge_scores" not in assets_of(jobs.distill_job) and "training_set" in assets_of(jobs.distill_job)
    assert assets_of(jobs.judge_job) == {"judge_scores"}
    assert dg.AssetKey("judge_scores") not in training_examples.dependency_keys
    assert dg.AssetKey("judge_scores") in training_examples_asset(after_judge=True).dependency_keys
    try:
        monkeypatch.setenv("DISTILLSET_JUDGE_ENABLED", "true")
        assert "judge_scores" in assets_of(importlib.reload(jobs).distill_job)
    finally:
        monkeypatch.delenv("DISTILLSET_JUDGE_ENABLED", raising=False)
        importlib.reload(jobs)
