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

from helpers.flow import last_metadata, step_failures
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
        assert metadata["dagster/column_schema"].columns, asset
        assert metadata["preview"].startswith("|"), asset

    second = _materialize(instance)
    assert second.success, step_failures(second)
    assert last_metadata(second, "teacher_generations")["teacher/requests_paid"] == 0
    again = last_metadata(second, "training_set")
    assert again["published_new_version"] is False and again["version"] == "v0001"
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
    assert keys == {
        "raw_prompts",
        "prompt_pool",
        "teacher_generations",
        "deduplicated_generations",
        "quality_scores",
        "judge_scores",
        "training_examples",
        "training_set",
    }
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
    sharegpt = [json.loads(line) for line in (version_dir / "sharegpt.jsonl").read_text().splitlines()]
    alpaca = [json.loads(line) for line in (version_dir / "alpaca.jsonl").read_text().splitlines()]
    assert len(sharegpt) == len(alpaca) == last_metadata(published, "training_set")["dagster/row_count"]
    assert {turn["from"] for row in sharegpt for turn in row["conversations"]} <= {"system", "human", "gpt"}
