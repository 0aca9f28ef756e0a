"""The optional LLM-as-judge stage through Dagster, on a temporary DISTILLSET_HOME and the simulator.

Protects: materializing the graph with `judge_scores` fills the judge table (one judgment per
deduplicated answer, parsed, from the simulated judge), `training_examples.quality_score` becomes
the documented blend of the heuristic score and the judgment, a second materialization pays the
judge for nothing (every judgment comes from the ledger); the graph is the same whatever
DISTILLSET_JUDGE_ENABLED says: `distill_job` leaves the judge out, `distill_with_judge_job` and
`judge_job` run it before the training examples, and the setting only picks the job a launcher runs.
"""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from distillset.quality.judge import combine_scores
from helpers.flow import MODEL, last_metadata, materialize_flow, step_failures


@pytest.fixture
def prompts_dir(sample_prompts_dir):
    """A small slice of the shipped sample prompts (single- and two-turn), for a fast flow."""
    return sample_prompts_dir(15)


def _materialize(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """The whole graph with the judge (what distill_with_judge_job runs): training_examples after it."""
    from assets.judge import judge_assets, judge_checks
    from orchestration.definitions import all_asset_checks, all_assets

    return materialize_flow(instance, [*all_assets, *judge_assets, *all_asset_checks, *judge_checks])


def test_judge_scores_fill_the_table_blend_into_quality_score_and_rerun_for_free(
    distillset_home, prompts_dir, monkeypatch
):
    monkeypatch.setenv("DISTILLSET_JUDGE_ENABLED", "true")
    instance = dg.DagsterInstance.ephemeral()
    first = _materialize(instance)
    assert first.success, step_failures(first)

    with duckdb.connect(str(distillset_home / "catalog.duckdb"), read_only=True) as con:
        answers = con.execute(
            "SELECT count(*) FROM deduplicated_generations WHERE teacher_model = ?", [MODEL]
        ).fetchone()[0]
        judged = con.execute(
            "SELECT prompt_id, judge_score, rationale, error, judge_model, simulated, answer_request_hash FROM "
            "judge_scores WHERE teacher_model = ?",
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
            con.execute(
                "SELECT prompt_id, request_hash FROM deduplicated_generations WHERE teacher_model = ?", [MODEL]
            ).fetchall()
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


def test_the_judge_pays_only_when_enabled_and_the_environment_never_changes_the_jobs(
    distillset_home, prompts_dir, monkeypatch
):
    from assets.training_set import training_examples
    from distillset.settings import load_settings
    from orchestration.definitions import build_definitions

    def jobs_of(defs) -> dict[str, set[str]]:
        return {
            name: {key.to_user_string() for key in defs.resolve_job_def(name).asset_layer.selected_asset_keys}
            for name in ("distill_job", "judge_job")
        }

    off = jobs_of(build_definitions(load_settings()))
    assert {"judge_scores", "training_examples", "training_set"} <= off["distill_job"]
    assert off["judge_job"] == {"judge_scores", "training_examples", "training_set", "student_scorecards"}
    # The judge always runs before the examples it is blended into.
    assert dg.AssetKey("judge_scores") in training_examples.dependency_keys
    monkeypatch.setenv("DISTILLSET_JUDGE_ENABLED", "true")
    assert jobs_of(build_definitions(load_settings())) == off, "the environment must not change the jobs"
    monkeypatch.delenv("DISTILLSET_JUDGE_ENABLED")

    # Off (the default), the judge step pays nothing and writes no judgment.
    with dg.instance_for_test() as instance:
        result = _materialize(instance)
        assert result.success, step_failures(result)
        metadata = last_metadata(result, "judge_scores")
        assert metadata["judge_enabled"] is False and metadata["judge/requests_paid"] == 0
        assert last_metadata(result, "training_examples")["judge_scores_used"] is False

        # judge_job judges whatever the setting says, then rebuilds what depends on the judgments.
        judged = (
            build_definitions(load_settings())
            .resolve_job_def("judge_job")
            .execute_in_process(instance=instance, partition_key=MODEL, raise_on_error=False)
        )
        assert judged.success, step_failures(judged)
        assert last_metadata(judged, "judge_scores")["judge/requests_paid"] > 0
        assert last_metadata(judged, "training_examples")["judge_scores_used"] is True
