"""The executor of every job: Dagster's in-process executor, or ``dagster_celery``'s (cluster mode).

``DISTILLSET_EXECUTOR=in_process`` (the default) is ``dg.in_process_executor``, exactly as before:
the flow is a chain, and one process per step would add start-up time and no parallelism on one
machine. ``celery`` sends every step to the Celery workers of ``DISTILLSET_CELERY_BROKER_URL``
(``dagster-celery worker start -A dagster_celery.app -y docs/cluster/celery.yaml`` on each machine),
so a cluster runs different runs' steps (teacher partitions) on different machines at once. The
broker and backend URLs reach the executor as ``env:`` references, resolved in each process that
starts the executor: the password is never in the run config, the definitions or the UI.

``k8s`` is ``dagster_k8s.k8s_job_executor`` as it ships: a pod per step, configured per run
(docs/cluster/k8s/executor.yaml) or inheriting the K8sRunLauncher's ConfigMaps and Secrets. The
production deployment; no Kubernetes here, so it is config-checked only (tests/flow/test_k8s_config.py).
"""

from __future__ import annotations

import dagster as dg

from distillset.settings import ExecutorSettings

BROKER_ENV = "DISTILLSET_CELERY_BROKER_URL"
BACKEND_ENV = "DISTILLSET_CELERY_BACKEND_URL"
# Celery's settings for the submitting side; the workers get the same ones from celery.yaml.
# A long teacher step must not hold a second step hostage. With early acknowledgement a worker
# still reserves one extra task per process (Celery's "Prefetch Limits"), so on Redis the worker
# fetches only when a process is free (`worker_disable_prefetch`, Celery >= 5.6; other brokers log
# a warning and keep the one extra task). Late acknowledgement would do that on every broker but
# makes Redis re-deliver a step that runs longer than its visibility timeout, one hour: a teacher
# step could then be executed, and paid for, twice.
CELERY_CONFIG_SOURCE = {"worker_prefetch_multiplier": 1, "worker_disable_prefetch": True}


def celery_executor_config() -> dict:
    """The ``celery_executor`` config of cluster mode (env references only, no secret value)."""
    return {
        "broker": {"env": BROKER_ENV},
        "backend": {"env": BACKEND_ENV},
        "config_source": dict(CELERY_CONFIG_SOURCE),
    }


def build_executor(settings: ExecutorSettings) -> dg.ExecutorDefinition:
    """The executor ``settings`` name (validated by the settings tree before anything runs)."""
    if settings.kind == "k8s":
        from dagster_k8s import k8s_job_executor  # only a Kubernetes deployment loads its client

        return k8s_job_executor
    if not settings.celery:
        return dg.in_process_executor
    from dagster_celery import celery_executor  # only cluster mode loads Celery

    return celery_executor.configured(celery_executor_config(), name="celery")
