"""Shared fixtures: every test runs against a temporary DISTILLSET_HOME and the embedded simulator."""

from __future__ import annotations

import os
import shutil

import pytest

from distillset.settings.paths import DATA_DIR

# moto's S3 server fixtures (moto_endpoint, s3_url) and PostgreSQL ones (postgres_url,
# ledger_location) and the catalog backends (catalog_location) for the tests that need those services.
pytest_plugins = ["helpers.s3", "helpers.postgres", "helpers.catalog"]

_CONFIGURATION_PREFIXES = ("DISTILLSET_", "TEACHER_")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's own configuration or writes into the project's .distillset/."""
    for name in list(os.environ):
        if name.startswith(_CONFIGURATION_PREFIXES) or name == "DAGSTER_HOME":
            monkeypatch.delenv(name, raising=False)
    # The teacher scorecard asks held-out questions before every distillation; tests that are not
    # about scorecards count calls and answers, so they measure nothing (tests/flow/test_release_gate.py
    # and tests/unit/scorecards set their own limit).
    monkeypatch.setenv("DISTILLSET_SCORECARD_LIMIT", "0")


@pytest.fixture
def distillset_home(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A fresh DISTILLSET_HOME (catalog, ledger, training sets) for one test."""
    home = tmp_path / "home"
    monkeypatch.setenv("DISTILLSET_HOME", str(home))
    return home


@pytest.fixture
def sample_prompts_dir(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """Make DISTILLSET_PROMPTS_URL a folder with the first ``rows`` of each shipped sample file.

    Returns a function ``(rows) -> folder``; tests may add files to the folder.
    """

    def make(rows: int):
        folder = tmp_path / "prompts"
        folder.mkdir(exist_ok=True)
        sample = DATA_DIR / "sample_prompts"
        for name in ("gsm8k_train_sample.jsonl", "mt_bench_questions.jsonl"):
            lines = (sample / name).read_text(encoding="utf-8").splitlines(keepends=True)[:rows]
            (folder / name).write_text("".join(lines), encoding="utf-8")
            shutil.copyfile(sample / f"{name}.license", folder / f"{name}.license")
        monkeypatch.setenv("DISTILLSET_PROMPTS_URL", str(folder))
        return folder

    return make
