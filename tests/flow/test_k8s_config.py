"""The documented Kubernetes deployment (issue 14): config-checked only, never run here.

There is no Kubernetes (nor helm) on the development and CI machines, so nothing here starts a pod.
What this protects, and nothing more: ``DISTILLSET_EXECUTOR=k8s`` gives every job dagster-k8s's
``k8s_job_executor``; docs/cluster/k8s/executor.yaml is valid config for that executor and
docs/cluster/k8s/run_launcher.yaml for ``K8sRunLauncher`` (dagster-k8s 0.29.27's config schemas);
the Helm values (docs/cluster/k8s/values.yaml) parse and name the same ConfigMap, Secret and
volume as those two files, and none of the files holds a secret value.
"""

from __future__ import annotations

import yaml
from dagster._config import validate_config
from dagster_k8s import K8sRunLauncher, k8s_job_executor

from distillset.settings import load_settings
from helpers.paths import PROJECT
from orchestration.definitions import build_definitions

K8S = PROJECT / "docs" / "cluster" / "k8s"


def _load(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text(encoding="utf-8"))


def _errors(result) -> list[str]:
    return [error.message for error in result.errors or []]


def test_k8s_mode_puts_every_job_on_the_k8s_job_executor(tmp_path):
    defs = build_definitions(load_settings({"DISTILLSET_HOME": str(tmp_path), "DISTILLSET_EXECUTOR": "k8s"}))
    for name in ("distill_job", "judge_job"):
        assert defs.resolve_job_def(name).executor_def is k8s_job_executor


def test_the_documented_executor_config_is_valid_for_k8s_job_executor():
    config = _load("executor.yaml")["execution"]["config"]
    result = validate_config(k8s_job_executor.config_schema.config_type, config)
    assert result.success, _errors(result)
    # The check can fail: a misspelt field is refused.
    assert not validate_config(k8s_job_executor.config_schema.config_type, {"job_namespaces": "x"}).success


def test_the_documented_run_launcher_is_valid_for_k8s_run_launcher():
    block = _load("run_launcher.yaml")["run_launcher"]
    assert (block["module"], block["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = validate_config(K8sRunLauncher.config_type(), block["config"])
    assert result.success, _errors(result)


def test_the_helm_values_name_the_same_configmap_secret_and_volume():
    executor = _load("executor.yaml")["execution"]["config"]
    launcher = _load("run_launcher.yaml")["run_launcher"]["config"]
    values = _load("values.yaml")
    chart_launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False  # the instance is the cluster's PostgreSQL
    for names in (
        executor["env_config_maps"],
        launcher["env_config_maps"],
        [m["name"] for m in chart_launcher["envConfigMaps"]],
        [m["name"] for m in deployment["envConfigMaps"]],
    ):
        assert names == ["distillset-env"]
    for names in (
        executor["env_secrets"],
        launcher["env_secrets"],
        [s["name"] for s in chart_launcher["envSecrets"]],
        [s["name"] for s in deployment["envSecrets"]],
    ):
        assert names == ["distillset-secrets"]
    assert executor["volumes"] == launcher["volumes"] == chart_launcher["volumes"]
    assert "orchestration.definitions" in deployment["dagsterApiGrpcArgs"]
    text = "".join(path.read_text(encoding="utf-8") for path in K8S.glob("*.yaml"))
    assert "postgresql://" not in text and "password:" not in text.lower()
