"""Shared fixtures: every test runs against a temporary DISTILLSET_HOME and the embedded simulator."""

from __future__ import annotations

import pytest

_DISTILLSET_VARS = (
    "DISTILLSET_HOME",
    "DISTILLSET_PROMPTS_URL",
    "DISTILLSET_STORAGE_URL",
    "DISTILLSET_TRAINING_SET_NAME",
    "DISTILLSET_BENCHMARKS",
    "DAGSTER_HOME",
    "TEACHER_BASE_URL",
    "TEACHER_API_KEY",
    "TEACHER_MODEL",
    "DISTILLSET_JUDGE_ENABLED",
    "DISTILLSET_JUDGE_MODEL",
    "DISTILLSET_JUDGE_BASE_URL",
    "DISTILLSET_JUDGE_API_KEY",
    "DISTILLSET_JUDGE_WEIGHT",
    "DISTILLSET_JUDGE_MIN_SCORE",
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's own configuration or writes into the project's .distillset/."""
    for name in _DISTILLSET_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def distillset_home(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A fresh DISTILLSET_HOME (catalog, ledger, training sets) for one test."""
    home = tmp_path / "home"
    monkeypatch.setenv("DISTILLSET_HOME", str(home))
    return home
