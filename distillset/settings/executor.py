"""Where a run's steps execute: in the run's own process (the default), or on Celery workers.

``DISTILLSET_EXECUTOR=in_process`` (default) keeps today's behaviour: one process per run, every
step in it. ``celery`` sends each step to the Celery workers listening on
``DISTILLSET_CELERY_BROKER_URL`` (Redis or RabbitMQ); their results come back through
``DISTILLSET_CELERY_BACKEND_URL``. Both URLs may carry a password: they are secrets, masked in
every message, and reach Dagster only as ``env:`` references (``orchestration/executor.py``), so the
run config never holds them. ``k8s`` runs each step in a Kubernetes pod of its own (production,
documented and config-checked, not exercised here). docs/cluster.md, "The executor".

``DISTILLSET_SHARDS`` (default 1) spreads one teacher over several workers: with N > 1 the teacher
stage is partitioned by teacher x prompt shard (``distillset/prompts/shards.py``), so each shard
is a run of its own that any worker may execute. docs/cluster.md, "One teacher on many workers".
"""

from __future__ import annotations

from dataclasses import dataclass

from distillset.settings.env import SettingsError
from distillset.settings.fields import setting, validate
from distillset.settings.ledger_url import mask_url

EXECUTORS = ("in_process", "celery", "k8s")
# More shards than this would be more runs than a Dagster instance schedules comfortably per teacher.
MAX_SHARDS = 256
BROKER_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://")
# rpc:// sends results back over an AMQP broker; Redis keeps them itself.
BACKEND_SCHEMES = ("redis://", "rediss://", "rpc://")


def _executors():
    return EXECUTORS


def _check_broker(value: str) -> str | None:
    if value.startswith(BROKER_SCHEMES):
        return None
    return "must be a Redis (redis://host:6379/0) or RabbitMQ (amqp://user:password@host:5672//) URL"


def _check_backend(value: str) -> str | None:
    if value.startswith(BACKEND_SCHEMES):
        return None
    return "must be redis://host:6379/0 (a Redis broker's own URL will do) or rpc:// (with a RabbitMQ broker)"


@dataclass(frozen=True)
class ExecutorSettings:
    """Where steps run (README, "Running on several machines")."""

    kind: str = setting(
        "in_process",
        env="DISTILLSET_EXECUTOR",
        choices=_executors,
        help="in_process: every step in the run's process; celery: steps on the Celery workers of the broker; "
        "k8s: a Kubernetes pod per step (docs/cluster.md)",
    )
    celery_broker_url: str | None = setting(
        None,
        env="DISTILLSET_CELERY_BROKER_URL",
        check=_check_broker,
        secret=True,
        help="the Celery broker (DISTILLSET_EXECUTOR=celery): redis://host:6379/0 or amqp://user:password@host:5672//",
    )
    celery_backend_url: str | None = setting(
        None,
        env="DISTILLSET_CELERY_BACKEND_URL",
        check=_check_backend,
        secret=True,
        help="where Celery workers put step results: redis://... (the broker's URL with Redis) or rpc:// (RabbitMQ)",
    )

    shards: int = setting(
        1,
        env="DISTILLSET_SHARDS",
        ge=1,
        le=MAX_SHARDS,
        help="prompt shards of the teacher stage: 1 (default) runs one teacher in one run; N > 1 partitions "
        "teacher_generations by teacher x shard, one run per shard that any worker may execute",
    )

    def __post_init__(self) -> None:
        validate(self)
        if self.kind != "celery":
            return
        problems = []
        if not self.celery_broker_url:
            problems.append("DISTILLSET_EXECUTOR=celery needs DISTILLSET_CELERY_BROKER_URL (redis://... or amqp://...)")
        if not self.celery_backend_url:
            problems.append(
                "DISTILLSET_EXECUTOR=celery needs DISTILLSET_CELERY_BACKEND_URL (the Redis broker's URL, or rpc:// "
                "with RabbitMQ): the workers' celery.yaml reads the same variable"
            )
        elif self.celery_backend_url.startswith("rpc://") and self.celery_broker_url:
            if not self.celery_broker_url.startswith(("amqp://", "amqps://", "pyamqp://")):
                problems.append(
                    f"DISTILLSET_EXECUTOR=celery: DISTILLSET_CELERY_BACKEND_URL=rpc:// needs a RabbitMQ broker, not "
                    f"{mask_url(self.celery_broker_url)}: use the Redis URL as the backend too"
                )
        if problems:
            raise SettingsError(problems)

    @property
    def celery(self) -> bool:
        """Steps go to Celery workers."""
        return self.kind == "celery"
