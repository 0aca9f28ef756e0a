"""The release gate in the Dagster flow, against the real simulator over HTTP serving two releases.

Protects: a run the new-release sensor launched evaluates the release first (`teacher_scorecard`);
for the weaker release (accuracy 0.55 against an incumbent of 0.9) the blocking check stops the run
before `teacher_generations`, pays nothing for generation and says why; the stronger release
distills and publishes, its card listing the teacher scorecard and the no-leak statement; a manual
run of the weaker release is not blocked but shows the comparison; a student evaluated against the
published version (`distillset evaluate --student-of`) appears in the version's scorecards file,
in `distillset versions` and in `student_scorecards`' numeric metadata.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest

from distillset.jsonl import iter_json_objects
from distillset.scorecards.cards import SIDECAR
from distillset.scorecards.sets import answer_key, load_questions
from distillset.settings import load_settings
from distillset.settings.paths import DATA_DIR
from distillset.simulator.server import TeacherSimulator
from distillset.verify.extract import reference_answer
from helpers.cli import distillset
from helpers.flow import last_metadata, step_failures
from orchestration.definitions import all_asset_checks, all_assets
from orchestration.resources import build_resources

INCUMBENT = "meta-llama/Llama-3.1-405B-Instruct"
STRONG = "meta-llama/Llama-5-Strong-Instruct"
WEAK = "meta-llama/Llama-5-Weak-Instruct"
ACCURACY = f"{INCUMBENT}=0.9,{STRONG}=0.9,{WEAK}=0.55"
SENSOR_TAGS = {"distillset/launched_by": "new_teacher_release_sensor"}


def _pool_references() -> dict[str, str]:
    path = DATA_DIR / "sample_prompts" / "gsm8k_train_sample.jsonl"
    return {r["question"]: reference_answer(r["answer"]) for _, r in iter_json_objects(path)}


@pytest.fixture
def simulator(monkeypatch, distillset_home, sample_prompts_dir):
    sample_prompts_dir(12)
    key = {**answer_key(load_questions("gsm8k", 60)), **_pool_references()}
    accuracies = dict(item.split("=") for item in ACCURACY.split(","))
    with TeacherSimulator(
        [INCUMBENT, STRONG, WEAK], model_accuracy={m: float(a) for m, a in accuracies.items()}, answer_key=key
    ) as running:
        monkeypatch.setenv("TEACHER_BASE_URL", running.base_url)
        monkeypatch.setenv("DISTILLSET_SCORECARD_BENCHMARKS", "gsm8k")
        monkeypatch.setenv("DISTILLSET_SCORECARD_LIMIT", "60")
        yield running


def _materialize(instance, model, selection=None, tags=None):
    if model not in instance.get_dynamic_partitions("teacher_models"):
        instance.add_dynamic_partitions("teacher_models", [model])
    return dg.materialize(
        selection or [*all_assets, *all_asset_checks],
        resources=build_resources(load_settings()),
        partition_key=model,
        instance=instance,
        tags=tags,
        raise_on_error=False,
    )


def _materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def _gate(result):
    [evaluation] = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "teacher_scorecard_release_gate"
    ]
    return evaluation


def test_the_weaker_release_stops_before_generation_and_the_stronger_one_distills(simulator, distillset_home):
    with dg.DagsterInstance.ephemeral() as instance:
        from assets.scorecards import teacher_scorecard, teacher_scorecard_release_gate

        incumbent = _materialize(instance, INCUMBENT, [teacher_scorecard, teacher_scorecard_release_gate])
        assert incumbent.success, step_failures(incumbent)

        strong = _materialize(instance, STRONG, tags=SENSOR_TAGS)
        assert strong.success, step_failures(strong)
        assert {"teacher_generations", "training_set", "student_scorecards"} <= _materialized(strong)
        assert _gate(strong).passed
        version_path = last_metadata(strong, "training_set")["path"]
        card = open(f"{version_path}/README.md", encoding="utf-8").read()
        assert "## Scorecards" in card and f"`{STRONG}`" in card and "No scorecard question can be in this set" in card

        completions = simulator.stats()["completions"]
        weak = _materialize(instance, WEAK, tags=SENSOR_TAGS)
        assert not weak.success
        assert "teacher_generations" not in _materialized(weak) and "teacher_scorecard" in _materialized(weak)
        gate = _gate(weak)
        assert not gate.passed
        assert "worse than the incumbent" in gate.description and "nothing was paid for generation" in gate.description
        assert WEAK in gate.description and "vs incumbent" in gate.description  # the best so far
        assert simulator.stats()["completions"] - completions == 60  # the evaluation only, no generation

        manual = _materialize(instance, WEAK, [teacher_scorecard, teacher_scorecard_release_gate, *_generation_only()])
        assert _gate(manual).passed and "not a sensor run" in str(_gate(manual).metadata)
        assert "teacher_generations" in _materialized(manual)
        assert "WORSE" in last_metadata(manual, "teacher_scorecard")["comparison"]


def _generation_only():
    from assets.teacher import teacher_generations

    return [teacher_generations]


def test_the_gate_can_be_turned_off(simulator, distillset_home, monkeypatch):
    monkeypatch.setenv("DISTILLSET_SCORECARD_GATE", "false")
    with dg.DagsterInstance.ephemeral() as instance:
        from assets.scorecards import teacher_scorecard, teacher_scorecard_release_gate

        _materialize(instance, INCUMBENT, [teacher_scorecard, teacher_scorecard_release_gate])
        weak = _materialize(instance, WEAK, [teacher_scorecard, teacher_scorecard_release_gate], tags=SENSOR_TAGS)
        assert weak.success and _gate(weak).passed


def test_a_student_evaluated_on_a_version_is_in_its_card_versions_and_scorecards(simulator, distillset_home, tmp_path):
    with dg.DagsterInstance.ephemeral() as instance:
        strong = _materialize(instance, STRONG)
        assert strong.success, step_failures(strong)
        ts = last_metadata(strong, "training_set")
        name, version = ts["training_set_name"], ts["version"]

        import os

        env = {k: v for k, v in os.environ.items()}
        result = distillset(
            "evaluate", "--model", WEAK, "--benchmark", "gsm8k", "--limit", "40",
            "--student-of", f"{name}:{version}", "--json", env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["kind"] == "student"
        sidecar = open(f"{ts['path']}/{SIDECAR}", encoding="utf-8").read()
        assert f"`{WEAK}`" in sidecar and "Students trained on this version" in sidecar

        listed = json.loads(distillset("scorecards", "--json", env=env).stdout)
        assert any(c["model"] == WEAK and c["kind"] == "student" and c["student_of"] == f"{name}:{version}"
                   for c in listed)  # fmt: skip
        versions = distillset("versions", name, env=env)
        assert WEAK in versions.stdout, versions.stdout

        from assets.scorecards import student_scorecards

        recorded = _materialize(instance, STRONG, [student_scorecards])
        metadata = last_metadata(recorded, "student_scorecards")
        assert metadata["version"] == version and 0 <= metadata["gsm8k/accuracy"] <= 1
