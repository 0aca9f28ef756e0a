"""Best-of-N through the whole Dagster flow: N samples per prompt, only verified word-problem answers
published, the asset metadata, the catalog's sample lineage, the manifest and the card say so; a
k > 1 the later stages cannot keep yet fails before anything is paid."""

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
    return sample_prompts_dir(20)


def test_flow_samples_n_publishes_verified_answers_and_reports_it(distillset_home, prompts_dir, monkeypatch):
    monkeypatch.setenv("TEACHER_SAMPLES_PER_PROMPT", "4")
    monkeypatch.setenv("DISTILLSET_SIMULATOR_ACCURACY", "0.5")
    result = _materialize(dg.DagsterInstance.ephemeral())
    assert result.success, step_failures(result)

    teacher = last_metadata(result, "teacher_generations")
    assert teacher["best_of_n/policy"]["samples_per_prompt"] == 4
    assert teacher["best_of_n/coverage"] >= 0.8
    assert 1.0 < teacher["best_of_n/samples_paid_per_prompt"] < 4.0
    assert "pass rate" in teacher["best_of_n/pass_rate_histogram"]

    with duckdb.connect(str(distillset_home / "catalog.duckdb"), read_only=True) as con:
        wrong_published = con.execute(
            "SELECT count(*) FROM training_examples e JOIN teacher_samples s "
            "ON e.prompt_id = s.prompt_id AND e.request_hash = s.request_hash WHERE s.verdict <> 'correct'"
        ).fetchone()[0]
        verified_kept = con.execute(
            "SELECT count(*) FROM teacher_samples WHERE kept AND verdict = 'correct'"
        ).fetchone()
        unverified = con.execute(
            "SELECT count(*) FROM generation_drops WHERE reason = 'no_verified_answer'"
        ).fetchone()[0]
        gsm8k_prompts = con.execute("SELECT count(*) FROM prompt_pool WHERE source_format = 'gsm8k'").fetchone()[0]
    assert wrong_published == 0
    assert verified_kept[0] + unverified == gsm8k_prompts

    version_dir = Path(last_metadata(result, "training_set")["path"])
    manifest = json.loads((version_dir / "manifest.json").read_text())
    report = manifest["extra"]["best_of_n"]
    assert report["policy"] == {
        "samples_per_prompt": 4,
        "max_answers_per_prompt": 1,
        "early_stop": True,
        "pass_rate_min": None,
        "pass_rate_max": None,
        "export_reasoning": False,
    }
    assert report["verifiers"]["math"]["samples"] >= gsm8k_prompts
    card = (version_dir / "README.md").read_text()
    assert "Best-of-N: up to N=4 samples per prompt, at most k=1 published, early stop" in card
    assert "Verifier `math`" in card


def test_k_above_one_fails_before_paying(distillset_home, prompts_dir, monkeypatch):
    monkeypatch.setenv("DISTILLSET_MAX_ANSWERS_PER_PROMPT", "2")
    result = _materialize(dg.DagsterInstance.ephemeral())
    assert not result.success
    assert any("DISTILLSET_MAX_ANSWERS_PER_PROMPT=2" in failure for failure in step_failures(result))
    assert not (distillset_home / "ledger.sqlite").exists() or _answers(distillset_home) == 0


def _answers(home: Path) -> int:
    import sqlite3

    with sqlite3.connect(home / "ledger.sqlite") as con:
        return con.execute("SELECT count(*) FROM answers").fetchone()[0]
