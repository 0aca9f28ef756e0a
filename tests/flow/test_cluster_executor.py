"""The jobs' executor (issue 14): in process by default, dagster-celery in cluster mode.

Protects: without DISTILLSET_EXECUTOR every job keeps ``in_process_executor`` (what `make demo`
and every other test run); with ``celery`` every job gets the celery executor, its broker and
backend as ``env:`` references resolved where the executor starts (no URL, no password in the
definitions), and the workers'
documented docs/cluster/celery.yaml is the same config, valid for ``celery_executor``.
The celery run itself is tests/e2e/test_celery_cluster.py.
"""

from __future__ import annotations

import dagster as dg
import yaml
from dagster._config import validate_config
from dagster_celery import celery_executor

from distillset.settings import load_settings
from helpers.paths import PROJECT
from orchestration.definitions import build_definitions
from orchestration.executor import celery_executor_config

SECRET = "redis-password-never-in-definitions-3391"
CELERY_ENV = {
    "DISTILLSET_EXECUTOR": "celery",
    "DISTILLSET_CELERY_BROKER_URL": f"redis://:{SECRET}@127.0.0.1:6379/0",
    "DISTILLSET_CELERY_BACKEND_URL": f"redis://:{SECRET}@127.0.0.1:6379/0",
}


def _jobs(env: dict) -> dict[str, dg.JobDefinition]:
    defs = build_definitions(load_settings(env))
    return {name: defs.resolve_job_def(name) for name in ("distill_job", "judge_job")}


def test_the_default_executor_is_in_process(tmp_path):
    for job in _jobs({"DISTILLSET_HOME": str(tmp_path)}).values():
        assert job.executor_def is dg.in_process_executor


def test_cluster_mode_puts_every_job_on_celery_with_env_references_only(tmp_path, monkeypatch):
    for name, job in _jobs({"DISTILLSET_HOME": str(tmp_path), **CELERY_ENV}).items():
        executor = job.executor_def
        assert executor.name == "celery", name
        assert executor.executor_creation_fn is celery_executor.executor_creation_fn
        # The URLs are read where the executor starts, not baked into the definitions: unset, the
        # executor's config does not resolve; set, it resolves to what the environment says then.
        unresolved = executor.config_schema.resolve_config({})
        assert not unresolved.success and "DISTILLSET_CELERY_BROKER_URL" in unresolved.errors[0].message
        monkeypatch.setenv("DISTILLSET_CELERY_BROKER_URL", "redis://broker-now:6379/3")
        monkeypatch.setenv("DISTILLSET_CELERY_BACKEND_URL", "redis://broker-now:6379/3")
        resolved = executor.config_schema.resolve_config({}).value["config"]
        assert resolved["broker"] == resolved["backend"] == "redis://broker-now:6379/3"
        for variable in ("DISTILLSET_CELERY_BROKER_URL", "DISTILLSET_CELERY_BACKEND_URL"):
            monkeypatch.delenv(variable)


def test_the_workers_celery_yaml_is_the_jobs_executor_config():
    documented = yaml.safe_load((PROJECT / "docs" / "cluster" / "celery.yaml").read_text(encoding="utf-8"))
    config = documented["execution"]["config"]
    assert config == celery_executor_config()
    assert validate_config(celery_executor.config_schema.config_type, config).success
