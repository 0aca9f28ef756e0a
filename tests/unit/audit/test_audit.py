"""Audit: ``versions``, ``diff`` and ``explain`` over a real DuckDB catalog and published versions.

Protects: a user can list versions with their counts and simulated flag, see which examples a
new version added and removed and why (near-duplicate of X, failed quality rules), trace a kept
example back to its source line, license, teacher call, quality score, dedup cluster and
versions, and learn why a prompt was dropped (duplicate, rejected source row); the commands
print that chain.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json

import polars as pl
import pytest

from distillset import catalog, ids
from distillset.audit.diff import diff
from distillset.audit.explain import explain
from distillset.audit.versions import versions
from distillset.cli import diff as diff_command
from distillset.cli import explain as explain_command
from distillset.cli import versions as versions_command
from distillset.publish.protocol import publish_training_set
from distillset.publish.reader import training_set_names
from helpers.publish import FIELDS, make_examples

SOURCE = "prompts/tutor.jsonl"
SOURCE_SHA = hashlib.sha256(SOURCE.encode()).hexdigest()
NOW = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


@pytest.fixture
def world(tmp_path):
    """A catalog and two published versions: v0001 = p1, p2, p3; v0002 = p1, p4."""
    examples = make_examples(4, source_file=SOURCE)
    rows = examples.sort("source_line").to_dicts()
    p = {i + 1: row["prompt_id"] for i, row in enumerate(rows)}
    p[5] = ids.prompt_id(SOURCE_SHA, 5)
    p[6] = ids.prompt_id(SOURCE_SHA, 6)
    storage_url = str(tmp_path / "sets")
    catalog_path = tmp_path / "catalog.duckdb"

    first = pl.DataFrame(rows[:3]).with_columns(split=pl.Series(["train", "train", "validation"]))
    second = pl.DataFrame([rows[0], rows[3]]).with_columns(split=pl.Series(["train", "validation"]))
    publish_training_set(storage_url, "tutor", first, manifest_fields=FIELDS)
    publish_training_set(storage_url, "tutor", second, manifest_fields=FIELDS)

    teacher = rows[0]["teacher_model"]
    raw = pl.DataFrame(
        [
            {
                "prompt_id": p[i],
                "text_hash": f"t{i}",
                "system": None,
                "turns": [f"Question {i - 1}"],
                "prompt_text": f"Question {i - 1}",
                "reference": None,
                "category": "math",
                "source_format": "plain",
                "source_file": SOURCE,
                "source_line": i,
                "source_sha256": SOURCE_SHA,
                "license": "MIT",
                "ingested_at": NOW,
            }
            for i in range(1, 6)
        ]
    )
    catalog.replace_table(catalog_path, "raw_prompts", raw)
    catalog.replace_table(
        catalog_path,
        "rejects",
        pl.DataFrame(
            [
                {
                    "stage": "raw_prompts",
                    "source_file": SOURCE,
                    "source_line": 6,
                    "source_sha256": SOURCE_SHA,
                    "reason": "invalid_json",
                    "detail": "line 6 is not valid JSON",
                    "raw_excerpt": "{oops",
                }
            ]
        ),
    )
    catalog.replace_table(catalog_path, "prompt_pool", raw.filter(pl.col("prompt_id") != p[5]))
    catalog.replace_table(
        catalog_path,
        "prompt_drops",
        pl.DataFrame(
            [{"prompt_id": p[5], "reason": "exact_duplicate", "duplicate_of": p[1], "similarity": 1.0, "detail": None}]
        ),
    )
    generations = pl.DataFrame(
        [
            {
                "teacher_model": teacher,
                "prompt_id": row["prompt_id"],
                "status": "ok",
                "messages_json": row["messages_json"],
                "response": "x",
                "finish_reason": "stop",
                "request_hash": row["request_hash"],
                "request_hashes": [row["request_hash"]],
                "prompt_tokens": 11,
                "completion_tokens": 22,
                "latency_ms": 33.0,
                "attempts": 1,
                "response_id": "r",
                "simulated": True,
                "sampling_json": "{}",
                "generated_at": NOW,
                "error": None,
            }
            for row in rows
        ]
    )
    catalog.replace_table(catalog_path, "teacher_generations", generations)
    kept = generations.filter(pl.col("prompt_id") != p[2]).with_columns(
        cluster_id=pl.concat_str(pl.lit("cluster-"), pl.col("prompt_id"))
    )
    catalog.replace_table(catalog_path, "deduplicated_generations", kept)
    catalog.replace_table(
        catalog_path,
        "generation_drops",
        pl.DataFrame(
            [
                {
                    "teacher_model": teacher,
                    "prompt_id": p[2],
                    "reason": "near_duplicate",
                    "duplicate_of": p[1],
                    "similarity": 0.91,
                    "detail": None,
                }
            ]
        ),
    )
    catalog.replace_table(
        catalog_path,
        "quality_scores",
        pl.DataFrame(
            [
                {
                    "teacher_model": teacher,
                    "prompt_id": p[i],
                    "is_refusal": i == 3,
                    "score": 0.2 if i == 3 else 0.9,
                    "passed": i != 3,
                    "failed_rules": ["is_refusal"] if i == 3 else [],
                }
                for i in (1, 3, 4)
            ]
        ),
    )
    catalog.replace_table(catalog_path, "training_examples", second)
    return {"storage_url": storage_url, "catalog": catalog_path, "p": p, "rows": rows, "tmp": tmp_path}


def test_versions_lists_counts_and_simulated(world):
    rows = versions(world["storage_url"], "tutor")
    assert [(r.version, r.train, r.validation, r.simulated, r.parent_version) for r in rows] == [
        ("v0001", 2, 1, True, None),
        ("v0002", 1, 1, True, "v0001"),
    ]
    assert rows[0].content_hash != rows[1].content_hash
    assert training_set_names(world["storage_url"]) == ["tutor"]


def test_diff_shows_added_and_removed_with_reasons(world):
    p, rows = world["p"], world["rows"]
    result = diff(world["storage_url"], "tutor", "v0001", "v0002", world["catalog"])
    assert [a["example_id"] for a in result.added] == [rows[3]["example_id"]]
    assert result.added[0]["excerpt"] == "Question 3: what is 3 + 3?"
    removed = {r["prompt_id"]: r for r in result.removed}
    assert set(removed) == {p[2], p[3]} and result.unchanged == 1
    assert "near_duplicate" in removed[p[2]]["reason"] and p[1] in removed[p[2]]["reason"]
    assert "is_refusal" in removed[p[3]]["reason"]
    without_catalog = diff(world["storage_url"], "tutor", "v0001", "latest", world["tmp"] / "missing.duckdb")
    assert all("unknown" in r["reason"] for r in without_catalog.removed)


def test_explain_a_kept_example_gives_the_whole_chain(world):
    row = world["rows"][0]
    result = explain(world["catalog"], world["storage_url"], row["example_id"])
    assert (result.kind, result.status, result.prompt_id) == ("example", "kept", row["prompt_id"])
    assert result.source == {
        "source_file": SOURCE,
        "source_line": 1,
        "source_sha256": SOURCE_SHA,
        "license": "MIT",
        "source_format": "plain",
    }
    assert result.prompt["turns"] == ["Question 0"]
    assert [
        (g["request_hash"], g["prompt_tokens"], g["completion_tokens"], g["simulated"]) for g in result.generations
    ] == [(row["request_hash"], 11, 22, True)]
    assert result.quality[0]["passed"] is True and result.clusters == [
        {"teacher_model": row["teacher_model"], "cluster_id": f"cluster-{row['prompt_id']}"}
    ]
    assert [(v["version"], v["split"]) for v in result.versions] == [("v0001", "train"), ("v0002", "train")]
    assert result.reasons == []


def test_explain_says_why_examples_and_prompts_were_dropped(world):
    p, rows = world["p"], world["rows"]
    near = explain(world["catalog"], world["storage_url"], rows[1]["example_id"])
    assert near.status == "dropped" and [v["version"] for v in near.versions] == ["v0001"]
    assert any("near_duplicate" in r and p[1] in r for r in near.reasons)

    refused = explain(world["catalog"], world["storage_url"], p[3])
    assert (refused.kind, refused.status) == ("prompt", "dropped")
    assert any("is_refusal" in r for r in refused.reasons)

    duplicate = explain(world["catalog"], world["storage_url"], p[5])
    assert duplicate.status == "dropped" and duplicate.prompt_drops[0]["duplicate_of"] == p[1]
    assert duplicate.generations == [] and duplicate.versions == []

    rejected = explain(world["catalog"], world["storage_url"], p[6])
    assert rejected.status == "dropped" and any("invalid_json" in r for r in rejected.reasons)

    unknown = explain(world["catalog"], world["storage_url"], "does-not-exist")
    assert (unknown.kind, unknown.status) == ("unknown", "unknown")


def _run(module, argv, monkeypatch, world, capsys):
    monkeypatch.setenv("DISTILLSET_HOME", str(world["tmp"]))
    monkeypatch.setenv("DISTILLSET_STORAGE_URL", world["storage_url"])
    parser = argparse.ArgumentParser()
    module.configure(parser)
    code = module.run(parser.parse_args(argv))
    return code, capsys.readouterr().out


def test_commands_print_the_audit(world, monkeypatch, capsys):
    code, out = _run(versions_command, ["tutor"], monkeypatch, world, capsys)
    assert code == 0 and "v0001" in out and "v0002" in out and "SIMULATED" in out

    code, out = _run(diff_command, ["tutor", "v0001", "v0002"], monkeypatch, world, capsys)
    assert code == 0 and "1 added, 2 removed" in out and "why: generation dropped as near_duplicate" in out

    row = world["rows"][0]
    code, out = _run(explain_command, [row["example_id"]], monkeypatch, world, capsys)
    assert code == 0 and f"source: {SOURCE} line 1" in out and "published in: tutor v0002" in out
    assert "SIMULATED" in out and "dedup cluster" in out

    code, out = _run(explain_command, [world["p"][5], "--json"], monkeypatch, world, capsys)
    assert code == 0 and json.loads(out)["prompt_drops"][0]["reason"] == "exact_duplicate"

    code, out = _run(explain_command, ["nope"], monkeypatch, world, capsys)
    assert code == 1 and "no table" in out

    code, out = _run(versions_command, ["absent"], monkeypatch, world, capsys)
    assert code == 1 and "no published version" in out
