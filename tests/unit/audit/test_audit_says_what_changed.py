"""Audit commands tell the whole truth about a version (issue 11).

Protects: ``diff`` says what changed in the configuration and stops quietly when its reader goes
away (``| head``); publishing an earlier content again says ``same content as v0001``;
``explain`` shows the teacher's answer, expected vs extracted answer on a ``wrong_answer`` drop,
turns rather than "attempts" for a two-turn answer, the fate per teacher, and the Dagster runs;
``versions`` without a name lists every set; the manifest's sampling holds the system prompt and
seed, and ``config_hash`` follows the prompts URL and the decontamination benchmarks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys

import polars as pl

from distillset import catalog, ids
from distillset.audit.diff import diff
from distillset.audit.explain import explain
from distillset.audit.versions import versions
from distillset.cli import diff as diff_command
from distillset.cli import explain as explain_command
from distillset.cli import versions as versions_command
from distillset.cli.explain import format_explanation
from distillset.curation.decontam import default_benchmarks
from distillset.publish.protocol import publish_training_set
from distillset.publish.reader import read_manifest
from distillset.settings import QualityGates, QualityThresholds, TeacherSettings
from distillset.settings.tree import SamplingSettings
from distillset.training.manifest import version_manifest
from helpers.paths import PROJECT
from helpers.publish import FIELDS, LLAMA, make_examples
from orchestration.run_summary import RunSummary, format_summary

NOW = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
OTHER = "meta-llama/Llama-3.3-70B-Instruct"


def _fields(temperature: float, prompts_url: str) -> dict:
    sampling = {"temperature": temperature, "top_p": 0.95, "max_tokens": 1024, "seed": None, "system_prompt": None}
    config = {"sampling": sampling, "prompts_url": prompts_url, "validation_fraction": 0.05, "formats": ["openai"]}
    return {**FIELDS, "sampling": sampling, "config": config, "prompts_url": prompts_url}


def _run(module, argv, monkeypatch, tmp_path, storage_url, capsys):
    monkeypatch.setenv("DISTILLSET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DISTILLSET_STORAGE_URL", storage_url)
    parser = argparse.ArgumentParser()
    module.configure(parser)
    code = module.run(parser.parse_args(argv))
    return code, capsys.readouterr().out


def test_diff_says_what_changed_in_the_configuration(tmp_path, monkeypatch, capsys):
    storage = str(tmp_path / "sets")
    publish_training_set(storage, "tutor", make_examples(6), manifest_fields=_fields(0.7, "s3://bucket/prompts"))
    publish_training_set(
        storage, "tutor", make_examples(6, variant="b"), manifest_fields=_fields(0.2, "s3://bucket/prompts-v2")
    )
    changes = {c["key"]: (c["old"], c["new"]) for c in diff(storage, "tutor", "v0001", "v0002").config_changes}
    assert changes == {
        "sampling.temperature": (0.7, 0.2),
        "prompts_url": ("s3://bucket/prompts", "s3://bucket/prompts-v2"),
    }
    code, out = _run(diff_command, ["tutor", "v0001", "v0002"], monkeypatch, tmp_path, storage, capsys)
    assert code == 0 and "configuration changed:" in out and "sampling.temperature: 0.7 -> 0.2" in out


def test_diff_piped_into_head_ends_quietly(tmp_path):
    storage = str(tmp_path / "sets")
    publish_training_set(storage, "big", make_examples(2), manifest_fields=FIELDS)
    publish_training_set(storage, "big", make_examples(3000, variant="x"), manifest_fields=FIELDS)
    command = f"{sys.executable} -m orchestration.cli diff big v0001 v0002 --storage-url {storage} | head -n 1"
    done = subprocess.run(
        ["bash", "-c", command + "; exit ${PIPESTATUS[0]}"],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env={"PATH": "/usr/bin:/bin", "DISTILLSET_HOME": str(tmp_path / "home")},
        timeout=300,
    )
    assert done.stdout.startswith("big: v0001 -> v0002") and len(done.stdout.splitlines()) == 1
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode in (0, 141)


def test_publishing_an_earlier_content_again_says_so(tmp_path):
    storage = str(tmp_path / "sets")
    first = publish_training_set(storage, "back", make_examples(5), manifest_fields=FIELDS)
    publish_training_set(storage, "back", make_examples(5, variant="t=0.2"), manifest_fields=FIELDS)
    again = publish_training_set(storage, "back", make_examples(5), manifest_fields=FIELDS)
    assert again.published and again.version == "v0003" and again.content_hash == first.content_hash
    assert again.same_content_as == "v0001" and "same content as v0001" in again.reason
    assert read_manifest(storage, "back", "v0003")["same_content_as"] == "v0001"
    assert "same content as `v0001`" in (tmp_path / "sets" / "back" / "v0003" / "README.md").read_text()
    assert [r.same_content_as for r in versions(storage, "back")] == [None, None, "v0001"]
    summary = RunSummary(
        success=True,
        teacher_model=LLAMA,
        run_id="r1",
        stages=[],
        errors=[],
        training_set={
            "published_new_version": True,
            "training_set_name": "back",
            "version": "v0003",
            "path": "/x/back/v0003",
            "same_content_as": "v0001",
        },
    )
    assert "published new version back v0003 (same content as v0001): /x/back/v0003" in format_summary(summary)


def test_versions_without_a_name_lists_every_training_set(tmp_path, monkeypatch, capsys):
    storage = str(tmp_path / "sets")
    publish_training_set(storage, "alpha", make_examples(3), manifest_fields=FIELDS)
    publish_training_set(storage, "beta", make_examples(4, simulated=False), manifest_fields=FIELDS)
    assert [(r.name, r.version, r.simulated) for r in versions(storage)] == [
        ("alpha", "v0001", True),
        ("beta", "v0001", False),
    ]
    code, out = _run(versions_command, [], monkeypatch, tmp_path, storage, capsys)
    assert code == 0 and "alpha" in out and "beta" in out and "SIMULATED" in out


def _explain_world(tmp_path) -> dict:
    """One two-turn prompt answered by two teachers (kept for LLAMA, wrong answer for OTHER)."""
    catalog_path = tmp_path / "catalog.duckdb"
    prompt_id = ids.prompt_id("sha", 1)
    messages = (
        '[{"role":"user","content":"What is 9 + 9?"},{"role":"assistant","content":"18."},'
        '{"role":"user","content":"And 16 + 2?"},{"role":"assistant","content":"The answer is 18."}]'
    )
    raw = pl.DataFrame(
        [
            {
                "prompt_id": prompt_id,
                "text_hash": "t1",
                "system": None,
                "turns": ["What is 9 + 9?", "And 16 + 2?"],
                "reference": "18",
                "category": "math",
                "source_format": "gsm8k",
                "source_file": "gsm8k.jsonl",
                "source_line": 1,
                "source_sha256": "sha",
                "license": "MIT",
            }
        ]
    )
    catalog.replace_table(catalog_path, "raw_prompts", raw)
    generations = pl.DataFrame(
        [
            {
                "teacher_model": teacher,
                "prompt_id": prompt_id,
                "status": "ok",
                "messages_json": messages,
                "response": answer,
                "finish_reason": "stop",
                "request_hash": f"h2-{teacher}",
                "request_hashes": [f"h1-{teacher}", f"h2-{teacher}"],
                "prompt_tokens": 10,
                "completion_tokens": 20,
                "latency_ms": 5.0,
                "attempts": 2,
                "response_id": "r",
                "served_model": teacher,
                "simulated": False,
                "generated_at": NOW,
                "error": None,
            }
            for teacher, answer in ((LLAMA, "The answer is 18."), (OTHER, "The answer is 16."))
        ]
    )
    catalog.replace_table(catalog_path, "teacher_generations", generations)
    catalog.replace_table(
        catalog_path,
        "quality_scores",
        pl.DataFrame(
            [
                {
                    "teacher_model": LLAMA,
                    "prompt_id": prompt_id,
                    "verifiable_answer": 18.0,
                    "verifiable_result": "correct",
                    "score": 0.9,
                    "passed": True,
                    "failed_rules": [],
                },
                {
                    "teacher_model": OTHER,
                    "prompt_id": prompt_id,
                    "verifiable_answer": 16.0,
                    "verifiable_result": "incorrect",
                    "score": 0.1,
                    "passed": False,
                    "failed_rules": ["wrong_answer"],
                },
            ]
        ),
    )
    example = {
        "example_id": ids.example_id(LLAMA, prompt_id, f"h2-{LLAMA}"),
        "prompt_id": prompt_id,
        "teacher_model": LLAMA,
        "messages_json": messages,
        "split": "train",
        "request_hash": f"h2-{LLAMA}",
        "run_id": "dagster-run-7",
    }
    catalog.replace_table(catalog_path, "training_examples", pl.DataFrame([example]))
    return {"catalog": catalog_path, "prompt_id": prompt_id, "example_id": example["example_id"]}


def test_explain_shows_the_answer_the_check_the_turns_each_teacher_and_the_run(tmp_path):
    world = _explain_world(tmp_path)
    result = explain(world["catalog"], None, world["prompt_id"])
    assert result.by_teacher == {LLAMA: "kept", OTHER: "dropped"}
    assert [(g["turns"], g["retries"]) for g in result.generations] == [(2, 0), (2, 0)]
    assert {(c["teacher_model"], c["expected"], c["extracted"], c["result"]) for c in result.answer_checks} == {
        (LLAMA, "18", 18.0, "correct"),
        (OTHER, "18", 16.0, "incorrect"),
    }
    assert result.runs == [{"teacher_model": LLAMA, "run_id": "dagster-run-7"}]
    text = format_explanation(result)
    assert text.splitlines()[0] == f"prompt {world['prompt_id']}: KEPT for {LLAMA}; DROPPED for {OTHER}"
    assert "attempts=" not in text and "2 calls (one per turn), retries=0" in text
    assert "answer: The answer is 16." in text and "answer: The answer is 18." in text
    assert "expected 18, the answer's final number is 16 (incorrect)" in text
    assert "built by Dagster run dagster-run-7" in text


def test_explain_prints_the_run_that_published_a_version(tmp_path, monkeypatch, capsys):
    world = _explain_world(tmp_path)
    storage = str(tmp_path / "sets")
    rows = make_examples(2)
    publish_training_set(storage, "tutor", rows, manifest_fields={**FIELDS, "dagster_run_id": "run-publish-9"})
    code, out = _run(
        explain_command,
        [rows["example_id"][0], "--catalog", str(world["catalog"])],
        monkeypatch,
        tmp_path,
        storage,
        capsys,
    )
    assert code == 0 and "published by Dagster run run-publish-9" in out


def test_manifest_sampling_and_config_hash_cover_system_prompt_seed_prompts_and_benchmarks(tmp_path, monkeypatch):
    catalog_path = tmp_path / "catalog.duckdb"
    catalog.replace_table(catalog_path, "raw_prompts", pl.DataFrame({"prompt_id": ["p"]}))
    examples = make_examples(4)
    scores = pl.DataFrame(
        {
            "teacher_model": [LLAMA],
            "prompt_id": ["p"],
            "is_refusal": [False],
            "is_truncated": [False],
            "verifiable_result": [None],
            "score": [0.9],
            "passed": [True],
            "failed_rules": [[]],
        },
        schema_overrides={"verifiable_result": pl.String},
    )
    teacher = TeacherSettings(sampling=SamplingSettings(seed=7, system_prompt="Answer briefly."))

    def fields(prompts_url: str, extra: str | None = None) -> dict:
        manifest_fields, _ = version_manifest(
            catalog_path,
            examples=examples,
            scores=scores,
            teacher=teacher,
            thresholds=QualityThresholds(),
            gates=QualityGates(),
            validation_fraction=0.05,
            formats=["openai"],
            judge=None,
            run_id="r",
            prompts_url=prompts_url,
            benchmarks=default_benchmarks(extra),
        )
        return manifest_fields

    first = fields("s3://bucket/a")
    assert first["sampling"]["seed"] == 7 and first["sampling"]["system_prompt"] == "Answer briefly."
    extra_benchmark = tmp_path / "held_out.jsonl"
    extra_benchmark.write_text('{"question": "a held out question about trains and apples"}\n')
    hashes = {
        publish_training_set(str(tmp_path / f"s{i}"), "set", examples, manifest_fields=f).content_hash
        and read_manifest(str(tmp_path / f"s{i}"), "set")["config_hash"]
        for i, f in enumerate([first, fields("s3://bucket/b"), fields("s3://bucket/a", str(extra_benchmark))])
    }
    assert len(hashes) == 3, "the prompts URL and the benchmarks are part of the config hash"
