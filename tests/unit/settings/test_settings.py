"""The settings tree and its one environment parser.

Protects: with no variable set every section has its documented default; numbers, yes/no values,
lists, durations, URLs and storage locations each follow one rule (an empty value is the default
for every kind, booleans included); a bad value names its variable, every bad variable of one
read is reported at once, and a secret's value is never echoed; bounds hold for settings built in
code too; the README and .env.example document every variable the tree reads; the Dagster
resources carry the same values as the tree and a run's config can override one.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from assets.resources import QualityResource, TeacherResource
from distillset.settings import (
    JudgeSettings,
    LicensePolicy,
    QualityGates,
    QualityThresholds,
    SamplingSettings,
    Settings,
    SettingsError,
    TeacherSettings,
    describe,
    load_settings,
)
from distillset.settings.paths import PROJECT_ROOT
from orchestration.resources import build_resources


def test_no_variable_gives_the_documented_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.home == (tmp_path / ".distillset").resolve()
    assert settings.storage_url == str(settings.home / "training_sets")
    assert settings.dagster_home_path == settings.home / "dagster"
    assert settings.teacher == TeacherSettings()
    assert settings.teacher.sampling.params() == {"temperature": 0.7, "top_p": 0.95, "max_tokens": 1024}
    assert settings.quality.thresholds == QualityThresholds() and settings.gates == QualityGates()
    assert settings.licenses == LicensePolicy() and settings.judge == JudgeSettings()
    assert settings.publish.export_formats == ("openai",) and settings.publish.stale_after_s == 6 * 3600
    assert settings.storage_options() == {}


def test_each_kind_of_value_follows_one_rule(tmp_path):
    settings = load_settings(
        {
            "DISTILLSET_HOME": str(tmp_path / "home"),
            "TEACHER_TEMPERATURE": "0.2",
            "TEACHER_MAX_TOKENS": "2e3",
            "TEACHER_SEED": "7",
            "TEACHER_BASE_URL": "https://api.example.com/v1",
            "DISTILLSET_JUDGE_ENABLED": "YES",
            "DISTILLSET_LICENSE_POLICY_BLOCK_UNKNOWN": "on",
            "DISTILLSET_QUALITY_DISABLED_RULES": " pii, ,broken_table ",
            "DISTILLSET_EXPORT_FORMATS": "sharegpt,alpaca",
            "DISTILLSET_PUBLISH_STALE_AFTER_S": "90m",
            "DISTILLSET_STORAGE_URL": "s3://bucket/sets",
            "DISTILLSET_REFUSAL_PATTERNS": "~/patterns.csv",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        }
    )
    assert settings.home == (tmp_path / "home").resolve()
    assert settings.teacher.sampling.params() == {"temperature": 0.2, "top_p": 0.95, "max_tokens": 2000, "seed": 7}
    assert settings.teacher.base_url == "https://api.example.com/v1" and not settings.teacher.simulated
    assert settings.judge.enabled is True and settings.licenses.block_unknown is True
    assert settings.quality.thresholds.disabled_rules == ("pii", "broken_table")
    assert settings.publish.export_formats == ("sharegpt", "alpaca")
    assert settings.publish.stale_after_s == 5400
    assert settings.storage_url == "s3://bucket/sets"
    assert settings.quality.refusal_patterns == Path("~/patterns.csv").expanduser()
    assert settings.storage_options() == {"endpoint_url": "http://127.0.0.1:9000"}


@pytest.mark.parametrize(
    "name",
    [
        "DISTILLSET_JUDGE_ENABLED",
        "DISTILLSET_LICENSE_POLICY_BLOCK_TEACHER_FORBIDS_TRAINING",
        "TEACHER_TEMPERATURE",
        "DISTILLSET_STORAGE_URL",
    ],
)
def test_an_empty_value_is_the_default_for_every_kind(name):
    assert load_settings({name: "  "}) == load_settings({})


def test_every_bad_variable_is_named_in_one_error_and_secrets_are_not_echoed():
    with pytest.raises(SettingsError) as error:
        load_settings(
            {
                "TEACHER_TEMPERATURE": "abc",
                "TEACHER_MAX_CONCURRENCY": "2.5",
                "DISTILLSET_VALIDATION_FRACTION": "1.5",
                "DISTILLSET_TRAINING_SET_NAME": "../../etc/evil",
                "DISTILLSET_EXPORT_FORMATS": "openai,xml",
                "DISTILLSET_JUDGE_ENABLED": "maybe",
                "TEACHER_BASE_URL": "ftp://teacher",
                "DISTILLSET_STORAGE_URL": "gs://bucket",
                "DISTILLSET_PUBLISH_STALE_AFTER_S": "soon",
                "DISTILLSET_RELEASE_PATTERN": "(unclosed",
            }
        )
    problems = error.value.problems
    for name in (
        "TEACHER_TEMPERATURE='abc' is not a number",
        "TEACHER_MAX_CONCURRENCY='2.5' is not a whole number",
        "DISTILLSET_VALIDATION_FRACTION=1.5 must be at most 1",
        "DISTILLSET_TRAINING_SET_NAME='../../etc/evil'",
        "DISTILLSET_EXPORT_FORMATS=('openai', 'xml'): unknown value(s) xml",
        "DISTILLSET_JUDGE_ENABLED='maybe' is not a yes/no value",
        "TEACHER_BASE_URL='ftp://teacher' is not an http:// or https:// URL",
        "DISTILLSET_STORAGE_URL='gs://bucket' uses an unsupported scheme",
        "DISTILLSET_PUBLISH_STALE_AFTER_S='soon' is not a duration",
        "DISTILLSET_RELEASE_PATTERN='(unclosed' is not a valid regular expression",
    ):
        assert any(problem.startswith(name) for problem in problems), (name, problems)
    assert len(problems) == 10

    secret = "sk-this-is-secret-0042"
    with pytest.raises(SettingsError) as error:
        load_settings({"TEACHER_API_KEY": secret, "DISTILLSET_JUDGE_API_KEY": secret, "TEACHER_TOP_P": "2"})
    assert secret not in str(error.value) and "TEACHER_TOP_P=2.0 must be at most 1" in str(error.value)


def test_bounds_hold_for_settings_built_in_code():
    with pytest.raises(SettingsError, match="TEACHER_MAX_CONCURRENCY=0 must be at least 1"):
        TeacherSettings(max_concurrency=0)
    with pytest.raises(SettingsError, match="TEACHER_TEMPERATURE=3 must be at most 2"):
        SamplingSettings(temperature=3)
    with pytest.raises(SettingsError, match="DISTILLSET_JUDGE_WEIGHT"):
        JudgeSettings(weight=-0.1)
    assert "sk-hidden" not in repr(TeacherSettings(api_key="sk-hidden-key"))


def test_the_judge_takes_the_teachers_endpoint_and_key_only_for_the_same_endpoint():
    teacher = TeacherSettings(base_url="https://teacher.example/v1", api_key="teacher-key", model="m")
    same = JudgeSettings().for_teacher(teacher)
    assert (same.model, same.base_url, same.api_key) == ("m", "https://teacher.example/v1", "teacher-key")
    other = JudgeSettings(base_url="https://judge.example/v1").for_teacher(teacher)
    assert other.api_key is None


def test_the_docs_name_every_variable_the_settings_read():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    example = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8")
    names = {env for row in describe(Settings) for env in row["env"][:1]}
    assert len(names) > 60
    quality = {name for name in names if name.startswith(("DISTILLSET_QUALITY_", "DISTILLSET_GATE_"))}

    def documented(name: str) -> bool:
        # A family is documented as `DISTILLSET_GATE_MAX_REFUSAL_RATE`, `_MAX_TRUNCATION_RATE`, ...
        parts = name.split("_")
        return name in readme or any(f"`_{'_'.join(parts[i:])}`" in readme for i in range(2, len(parts) - 1))

    # The quality thresholds are documented as a family (DISTILLSET_QUALITY_<THRESHOLD>).
    assert "DISTILLSET_QUALITY_<THRESHOLD>" in readme
    for name in sorted(names - {n for n in quality if n.startswith("DISTILLSET_QUALITY_")}):
        assert documented(name), f"{name} is read by the settings but not in the README"
        if name not in ("DAGSTER_HOME", "AWS_ENDPOINT_URL_S3"):
            assert name in example, f"{name} is read by the settings but not in .env.example"


def test_the_resources_carry_the_settings_and_run_config_overrides_them(tmp_path):
    settings = load_settings(
        {"DISTILLSET_HOME": str(tmp_path), "TEACHER_TEMPERATURE": "0.3", "DISTILLSET_GATE_MIN_PASS_RATE": "0.7"}
    )
    resources = build_resources(settings)
    teacher = resources["teacher"].settings_for("m")
    assert teacher == settings.teacher.with_overrides(model="m")
    assert resources["quality"].gate_settings() == settings.gates

    @dg.asset
    def used(teacher: TeacherResource, quality: QualityResource) -> tuple:
        chosen = teacher.settings_for("m")
        assert chosen.sampling.max_tokens == settings.teacher.sampling.max_tokens
        assert chosen.max_concurrency == settings.teacher.max_concurrency
        return chosen.sampling.temperature, quality.gate_settings().min_pass_rate

    result = dg.materialize(
        [used],
        resources={"teacher": resources["teacher"], "quality": resources["quality"]},
        # One field given in the launchpad: every other field keeps the environment's value.
        run_config={"resources": {"teacher": {"config": {"sampling": {"temperature": 0.9}}}}},
    )
    assert result.output_for_node("used") == (0.9, 0.7)
