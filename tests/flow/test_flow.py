"""The whole flow through Dagster, on a temporary DISTILLSET_HOME and the embedded simulator.

Protects: every stage materializes and publishes a real chat training set built from the prompt
files; rerunning with unchanged inputs pays the teacher for nothing and publishes no new version;
a changed input publishes the next version and pays only for the new prompts; bad rows end up in
the rejects table with a reason instead of failing the run; every asset carries the metadata the
UI shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from helpers.flow import ASSETS, last_metadata, step_failures
from helpers.flow import materialize_flow as _materialize


@pytest.fixture
def prompts_dir(sample_prompts_dir):
    """25 rows of each shipped sample file (fast); tests may add files to the folder."""
    return sample_prompts_dir(25)


def test_flow_publishes_a_chat_training_set_and_reruns_for_free(distillset_home, prompts_dir):
    instance = dg.DagsterInstance.ephemeral()
    first = _materialize(instance)
    assert first.success, step_failures(first)

    published = last_metadata(first, "training_set")
    assert published["published_new_version"] is True
    assert published["version"] == "v0001"
    version_dir = Path(published["path"])
    assert version_dir.parent.parent == distillset_home / "training_sets"
    assert {p.name for p in version_dir.iterdir()} >= {
        "train.jsonl",
        "validation.jsonl",
        "data.parquet",
        "manifest.json",
        "README.md",
    }

    # Every line is an OpenAI chat example whose user turns come from the prompt files.
    source_questions = {
        json.loads(line)["question"] for line in (prompts_dir / "gsm8k_train_sample.jsonl").read_text().splitlines()
    }
    source_turns = {
        json.loads(line)["turns"][0] for line in (prompts_dir / "mt_bench_questions.jsonl").read_text().splitlines()
    }
    examples = []
    for split in ("train.jsonl", "validation.jsonl"):
        examples += [json.loads(line) for line in (version_dir / split).read_text().splitlines()]
    assert len(examples) == published["dagster/row_count"] > 0
    multi_turn = 0
    for example in examples:
        roles = [m["role"] for m in example["messages"] if m["role"] != "system"]
        assert roles[0::2] == ["user"] * len(roles[0::2]) and roles[1::2] == ["assistant"] * len(roles[1::2])
        assert roles[-1] == "assistant" and all(m["content"].strip() for m in example["messages"])
        assert example["messages"][0]["content"] in source_questions | source_turns
        multi_turn += len(roles) == 4
    assert multi_turn > 0, "MT-Bench conversations stay two-turn"

    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert manifest["teacher"]["simulated"] is True and manifest["teacher"]["endpoint_kind"] == "simulated"
    assert "simulated" in (version_dir / "README.md").read_text().lower()

    teacher = last_metadata(first, "teacher_generations")
    assert teacher["simulated"] is True
    with duckdb.connect(str(distillset_home / "catalog.duckdb"), read_only=True) as con:
        turns_in_pool = con.execute("SELECT sum(len(turns)) FROM prompt_pool").fetchone()[0]
        # Issue 11: a GSM8K answer without a final answer fails; published scores discriminate.
        verdicts = dict(
            con.execute(
                "SELECT verifiable_result, count(*) FROM quality_scores JOIN prompt_pool USING (prompt_id) "
                "WHERE source_format = 'gsm8k' GROUP BY ALL"
            ).fetchall()
        )
        passing_without_verdict = con.execute(
            "SELECT count(*) FROM quality_scores WHERE passed AND verifiable_result IN ('no_final_answer', 'wrong')"
        ).fetchone()[0]
        published_scores = con.execute("SELECT count(DISTINCT quality_score) FROM training_examples").fetchone()[0]
    assert None not in verdicts and set(verdicts) <= {"correct", "wrong", "no_final_answer"}, verdicts
    assert passing_without_verdict == 0
    assert published_scores > 5
    assert 70 <= turns_in_pool <= 75  # 25 GSM8K (one turn, minus contaminated ones) + 25 MT-Bench (two turns)
    assert teacher["teacher/requests_paid"] == turns_in_pool

    # Every asset shows row counts, column schema and a preview in the UI.
    for asset in (
        "raw_prompts",
        "prompt_pool",
        "teacher_generations",
        "deduplicated_generations",
        "quality_scores",
        "training_examples",
    ):
        metadata = last_metadata(first, asset)
        assert metadata["dagster/row_count"] > 0, asset
        columns = metadata["dagster/column_schema"].columns
        # Every column is described, from docs/engine.md's tables (the one source).
        assert columns and all(column.description for column in columns), (asset, columns)
        preview = metadata["preview"]
        assert isinstance(preview, dg.TableMetadataValue) and preview.records, asset
        assert [c.name for c in preview.schema.columns] == list(preview.records[0].data), asset
        assert metadata["dagster/table_name"] == f"catalog.main.{asset}", asset
    # The product tables say where each column comes from, on every materialization.
    for asset in ("training_examples", "training_set"):
        lineage = last_metadata(first, asset)["dagster/column_lineage"]
        assert {d.asset_key.to_user_string() for d in lineage.deps_by_column["source_line"]} == {"raw_prompts"}
    # quality_scores' figures are numbers the UI plots over materializations, not only a JSON blob.
    quality = last_metadata(first, "quality_scores")
    assert 0 < quality["pass_rate"] <= 1 and 0 < quality["mean_score"] <= 1
    assert quality["pass_rate"] == quality["summary"]["pass_rate"]
    for gate in ("refusal_rate", "truncation_rate", "pass_rate"):
        assert isinstance(quality[f"gate/{gate}"], float) and isinstance(quality[f"gate/{gate}/limit"], float), gate
        assert quality[f"gate/{gate}/passed"] is True, gate
    raw_quality = first.asset_materializations_for_node("quality_scores")[-1].metadata
    assert isinstance(raw_quality["pass_rate"], dg.FloatMetadataValue)
    assert isinstance(raw_quality["verifiable_checked"], dg.IntMetadataValue)
    # Checks of the teacher's stages keep their result per teacher partition (the UI shows each teacher's).
    evaluations = first.get_asset_check_evaluations()
    per_teacher = [e for e in evaluations if e.asset_key.to_user_string() not in ("raw_prompts", "prompt_pool")]
    assert {e.check_name for e in per_teacher} >= {"quality_gates", "training_set_matches_manifest"}
    assert all(e.partition == "meta-llama/Llama-3.1-405B-Instruct" for e in per_teacher), per_teacher
    assert all(e.passed for e in evaluations), [e.check_name for e in evaluations if not e.passed]

    # The run says what it did: its teacher, what it paid, the version it published.
    tags = instance.get_run_by_id(first.run_id).tags
    assert tags["distillset/teacher"] == "meta-llama/Llama-3.1-405B-Instruct"
    assert tags["distillset/calls_paid"] == str(teacher["teacher/requests_paid"])
    assert float(tags["distillset/cost_usd"]) == 0.0
    assert tags["distillset/version"] == f"{published['training_set_name']} v0001"
    generations_schema = last_metadata(first, "teacher_generations")["dagster/column_schema"]
    status = next(c for c in generations_schema.columns if c.name == "status")
    assert "skipped" in status.description

    second = _materialize(instance)
    assert second.success, step_failures(second)
    assert last_metadata(second, "teacher_generations")["teacher/requests_paid"] == 0
    again = last_metadata(second, "training_set")
    assert again["published_new_version"] is False and again["version"] == "v0001"
    assert instance.get_run_by_id(second.run_id).tags["distillset/version"].endswith("v0001 (unchanged)")
    assert instance.get_run_by_id(second.run_id).tags["distillset/calls_paid"] == "0"
    # Entries with nothing to say are left out rather than shown empty.
    assert {"parent_version", "same_content_as", "partial"}.isdisjoint(published)
    assert "teacher/budget_message" not in last_metadata(first, "teacher_generations")
    assert sorted(p.name for p in version_dir.parent.iterdir() if p.name.startswith("v")) == ["v0001"]

    # A new prompt file: only its prompt is paid for, and the next version appears.
    (prompts_dir / "extra.jsonl").write_text(
        json.dumps({"prompt": "Explain why the sky looks blue at noon but red at sunset."}) + "\n"
    )
    third = _materialize(instance)
    assert third.success, step_failures(third)
    assert last_metadata(third, "teacher_generations")["teacher/requests_paid"] == 1
    newer = last_metadata(third, "training_set")
    assert newer["version"] == "v0002" and newer["published_new_version"] is True
    assert json.loads((Path(newer["path"]) / "manifest.json").read_text())["parent_version"] == "v0001"


def test_bad_rows_are_rejected_with_a_reason_and_the_run_goes_on(distillset_home, prompts_dir):
    (prompts_dir / "broken.jsonl").write_bytes(
        b'{"prompt": "What is the capital of France?"}\n'
        b'{"prompt": \n'
        b'{"prompt": "   "}\n'
        b'{"colour": "blue"}\n'
        b'{"prompt": "caf\xe9 \xff"}\n'
    )
    result = _materialize(dg.DagsterInstance.ephemeral())
    assert result.success, step_failures(result)
    with duckdb.connect(str(distillset_home / "catalog.duckdb"), read_only=True) as con:
        rejects = con.execute(
            "SELECT source_line, reason FROM rejects WHERE source_file LIKE '%broken.jsonl' ORDER BY source_line"
        ).fetchall()
        kept = con.execute("SELECT count(*) FROM raw_prompts WHERE source_file LIKE '%broken.jsonl'").fetchone()[0]
    assert rejects == [(2, "invalid_json"), (3, "empty_text"), (4, "unknown_shape"), (5, "invalid_utf8")]
    assert kept == 1
    metadata = last_metadata(result, "raw_prompts")
    assert metadata["rejected_rows"] == 4
    assert "invalid_json" in metadata["rejects_by_reason"]


def test_every_asset_is_documented_for_the_ui():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == set(ASSETS)
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name and node.group_name != "default", key
        assert node.kinds, key
        assert node.owners == ["team:distillset"], key
        assert node.description and len(node.description) > 40, key


def test_a_broken_quality_gate_blocks_publication_and_says_why(distillset_home, prompts_dir, monkeypatch):
    monkeypatch.setenv("DISTILLSET_GATE_MIN_PASS_RATE", "0.99")
    # Best-of-N keeps only verified word-problem answers, so wrong ones no longer reach the quality
    # rules; a length threshold the short worked answers miss breaks the pass-rate gate instead.
    monkeypatch.setenv("DISTILLSET_QUALITY_MIN_CHARS", "400")
    result = _materialize(dg.DagsterInstance.ephemeral())
    assert not result.success
    gates = [e for e in result.get_asset_check_evaluations() if e.check_name == "quality_gates"]
    assert len(gates) == 1 and gates[0].passed is False
    assert "pass_rate" in gates[0].metadata["why"].value
    assert not result.asset_materializations_for_node("training_set")
    assert not (distillset_home / "training_sets").exists() or not any(
        (distillset_home / "training_sets").rglob("manifest.json")
    )


def test_license_policy_blocks_unknown_sources_and_extra_formats_are_written(distillset_home, prompts_dir, monkeypatch):
    (prompts_dir / "unlabelled.jsonl").write_text(
        json.dumps({"prompt": "Write a haiku about autumn rain in the city."}) + "\n"
    )
    monkeypatch.setenv("DISTILLSET_LICENSE_POLICY_BLOCK_UNKNOWN", "true")
    instance = dg.DagsterInstance.ephemeral()
    blocked = _materialize(instance)
    assert not blocked.success
    assert any("license policy blocks publication" in f and "unlabelled.jsonl" in f for f in step_failures(blocked)), (
        step_failures(blocked)
    )
    assert not any((distillset_home / "training_sets").rglob("manifest.json"))

    (prompts_dir / "unlabelled.jsonl.license").write_text("CC-BY-4.0\n")
    monkeypatch.setenv("DISTILLSET_EXPORT_FORMATS", "openai,sharegpt,alpaca")
    published = _materialize(instance)
    assert published.success, step_failures(published)
    version_dir = Path(last_metadata(published, "training_set")["path"])

    def rows(file_name: str) -> list[dict]:
        return [json.loads(line) for line in (version_dir / file_name).read_text().splitlines()]

    # Every export has the same train/validation split, one file per split.
    for split in ("train", "validation"):
        assert len(rows(f"sharegpt_{split}.jsonl")) == len(rows(f"alpaca_{split}.jsonl")) == len(rows(f"{split}.jsonl"))
    sharegpt = rows("sharegpt_train.jsonl") + rows("sharegpt_validation.jsonl")
    assert len(sharegpt) == last_metadata(published, "training_set")["dagster/row_count"]
    assert all(row["simulated"] is True and row["teacher_origin"] == "simulated" for row in sharegpt)
    assert {turn["from"] for row in sharegpt for turn in row["conversations"]} <= {"system", "human", "gpt"}
