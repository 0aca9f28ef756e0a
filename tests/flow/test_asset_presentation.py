"""What the UI shows of the assets beyond the graph: column lineage, code references, code versions, kinds, freshness.

Protects: ``training_examples`` and ``training_set`` say which upstream column each of their columns
comes from; every asset links to its code (``quality_scores`` also to its SQL files); a changed
quality rule (SQL, phrase table, threshold) or sampling setting changes the code version, so the UI
marks the training sets built under the old rules stale; ``training_set``'s kinds follow
``DISTILLSET_STORAGE_URL``; ``DISTILLSET_TRAINING_SET_MAX_AGE`` sets its freshness policy.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest

from distillset.code_versions import quality_code_version
from distillset.settings import QualityThresholds, load_settings
from orchestration.definitions import build_definitions


def _node(env: dict, asset: str):
    return build_definitions(load_settings(env)).resolve_asset_graph().get(dg.AssetKey(asset))


@pytest.mark.parametrize("asset", ["training_examples", "training_set"])
def test_the_product_tables_carry_column_lineage_and_name_explain(asset):
    node = _node({}, asset)
    lineage = node.metadata["dagster/column_lineage"]
    deps = {
        column: {(d.asset_key.to_user_string(), d.column_name) for d in column_deps}
        for column, column_deps in lineage.deps_by_column.items()
    }
    for column in ("prompt_id", "source_file", "source_line", "source_sha256", "license", "text_hash"):
        assert deps[column] == {("raw_prompts", column)}, column
    for column in ("request_hash", "generated_at", "served_model"):
        assert deps[column] == {("teacher_generations", column)}, column
    assert ("teacher_generations", "response") in deps["messages_json"]
    assert deps["quality_score"] == {("quality_scores", "score"), ("judge_scores", "judge_score")}
    assert deps["cluster_id"] == {("deduplicated_generations", "cluster_id")}
    assert "distillset explain <example_id>" in node.description


def test_every_asset_links_to_its_code_and_quality_scores_to_its_sql():
    graph = build_definitions(load_settings({})).resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        references = graph.get(key).metadata["dagster/code_references"].code_references
        assert any(r.file_path.endswith(".py") and r.line_number for r in references), key
    quality = graph.get(dg.AssetKey("quality_scores")).metadata["dagster/code_references"].code_references
    labels = {r.label for r in quality if r.file_path.endswith(".sql")}
    assert {"sql/quality/score.sql", "sql/quality/refusal.sql"} <= labels


def test_code_versions_change_with_the_rules_and_the_sampling():
    default = {name: _node({}, name).code_version for name in ("quality_scores", "teacher_generations")}
    assert all(default.values()), default
    assert _node({}, "quality_scores").code_version == default["quality_scores"]  # stable across builds
    stricter = _node({"DISTILLSET_QUALITY_MIN_CHARS": "20"}, "quality_scores")
    assert stricter.code_version != default["quality_scores"]
    hotter = {"TEACHER_TEMPERATURE": "0.2"}
    assert _node(hotter, "teacher_generations").code_version != default["teacher_generations"]
    assert _node(hotter, "teacher_scorecard").code_version == _node(hotter, "teacher_generations").code_version
    prompted = _node({"TEACHER_SYSTEM_PROMPT": "Answer briefly."}, "teacher_generations")
    assert prompted.code_version != default["teacher_generations"]
    # The teacher's settings do not touch the quality version, nor the other way round.
    assert _node(hotter, "quality_scores").code_version == default["quality_scores"]


def test_a_changed_rule_file_or_phrase_table_changes_the_quality_version(tmp_path):
    sql_dir = tmp_path / "quality"
    sql_dir.mkdir()
    (sql_dir / "length.sql").write_text("SELECT 1")
    patterns = tmp_path / "patterns.csv"
    patterns.write_text("kind,phrase\nrefusal,I cannot\n")
    before = quality_code_version(QualityThresholds(), sql_dir=sql_dir, patterns=patterns)
    (sql_dir / "length.sql").write_text("SELECT 2")
    after_sql = quality_code_version(QualityThresholds(), sql_dir=sql_dir, patterns=patterns)
    patterns.write_text("kind,phrase\nrefusal,I will not\n")
    after_patterns = quality_code_version(QualityThresholds(), sql_dir=sql_dir, patterns=patterns)
    extra = tmp_path / "extra.csv"
    extra.write_text("kind,phrase\nrefusal,No way\n")
    with_extra = quality_code_version(QualityThresholds(), extra, sql_dir=sql_dir, patterns=patterns)
    assert len({before, after_sql, after_patterns, with_extra}) == 4


def test_training_set_kinds_follow_the_storage_url(tmp_path):
    assert _node({"DISTILLSET_STORAGE_URL": str(tmp_path)}, "training_set").kinds == {"folder", "parquet", "json"}
    assert _node({"DISTILLSET_STORAGE_URL": "s3://bucket/sets"}, "training_set").kinds == {"s3", "parquet", "json"}


def test_training_set_has_a_freshness_policy_of_the_max_age():
    assert _node({}, "training_set").freshness_policy == dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26))
    two_hours = _node({"DISTILLSET_TRAINING_SET_MAX_AGE": "2h"}, "training_set").freshness_policy
    assert two_hours == dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=2))
    assert _node({"DISTILLSET_TRAINING_SET_MAX_AGE": "0"}, "training_set").freshness_policy is None
