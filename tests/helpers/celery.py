"""Celery brokers and workers for tests: Redis at 127.0.0.1:6379, RabbitMQ at 127.0.0.1:5672.

``require_broker(kind)`` gives a broker and backend URL for a test and skips it, reason printed,
when the server does not answer (``.ci/run`` checks both are up first, so CI never skips silently).
Redis uses a database number of its own (``REDIS_DB``), emptied before and after the test;
RabbitMQ's ``dagster`` queue (guest's default virtual host) is purged before and after: the queue
never holds an interrupted test's tasks.

``celery_workers`` starts ``dagster-celery worker start`` processes, each in its own process group
(``start_new_session``) so that teardown kills the worker and its pool children together, with its
output kept in a file for failure messages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.paths import PROJECT

REDIS_DB = 11  # no other test uses it
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
QUEUE = "dagster"  # dagster_celery's task queue
WORKER_CONFIG = PROJECT / "docs" / "cluster" / "celery.yaml"
DAGSTER_CELERY = Path(sys.executable).parent / "dagster-celery"
_READY_TIMEOUT_S = 90.0
_STOP_GRACE_S = 10.0


def _down_reason(kind: str) -> str | None:
    try:
        if kind == "redis":
            import redis

            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping()
        else:
            import kombu

            with kombu.Connection(RABBITMQ_URL, connect_timeout=5) as connection:
                connection.connect()
    except Exception as exc:  # noqa: BLE001 - any failure means: no broker to test against
        where = "Redis at 127.0.0.1:6379" if kind == "redis" else "RabbitMQ at 127.0.0.1:5672 (guest/guest)"
        return f"{where} does not answer: {type(exc).__name__}: {exc}"
    return None


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def _purge_rabbitmq() -> None:
    """Empty the queue the workers listen on: a task left by an interrupted test would reach them."""
    import kombu

    with kombu.Connection(RABBITMQ_URL, connect_timeout=5) as connection:
        channel = connection.channel()
        try:
            channel.queue_purge(QUEUE)
        except Exception:  # noqa: BLE001 - the queue does not exist yet: nothing to purge
            pass
        finally:
            channel.close()


@contextlib.contextmanager
def require_broker(kind: str) -> Iterator[tuple[str, str]]:
    """``(broker URL, backend URL)`` of ``kind`` (``redis`` or ``rabbitmq``); skips when it is down."""
    reason = _down_reason(kind)
    if reason:
        print(f"SKIP: {reason}", file=sys.stderr)
        pytest.skip(reason)
    if kind == "redis":
        _flush_redis()
        try:
            yield REDIS_URL, REDIS_URL
        finally:
            _flush_redis()
    else:
        _purge_rabbitmq()
        try:
            yield RABBITMQ_URL, "rpc://"
        finally:
            _purge_rabbitmq()


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


class Workers(list):
    """The started workers; ``logs()`` for assertion messages."""

    def logs(self) -> str:
        return "\n".join(f"----- worker {w.name} -----\n{w.output()[-6000:]}" for w in self)


def _stop(worker: Worker) -> None:
    if worker.process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.process.pid, signal.SIGTERM)
    try:
        worker.process.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=_STOP_GRACE_S)


@contextlib.contextmanager
def celery_workers(names: list[str], env: dict[str, str], logs_dir: Path) -> Iterator[Workers]:
    """One ``dagster-celery worker start`` per name (one task at a time each), ready when yielded."""
    workers = Workers()
    # `worker start` runs the `celery` command it finds on PATH: this interpreter's.
    env = {**env, "PATH": f"{DAGSTER_CELERY.parent}{os.pathsep}{env.get('PATH', '')}"}
    try:
        for name in names:
            log = logs_dir / f"worker-{name}.log"
            command = [
                str(DAGSTER_CELERY),
                "worker",
                "start",
                "-A",
                "dagster_celery.app",
                "-y",
                str(WORKER_CONFIG),
                "-n",
                name,
                "--",
                "--concurrency=1",
            ]
            with open(log, "w", encoding="utf-8") as handle:
                process = subprocess.Popen(
                    command, env=env, cwd=PROJECT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
                )
            workers.append(Worker(name, process, log))
        deadline = time.monotonic() + _READY_TIMEOUT_S
        for worker in workers:
            while " ready." not in worker.output():
                if worker.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"celery worker {worker.name} did not start\n{workers.logs()}")
                time.sleep(0.5)
        yield workers
    finally:
        for worker in workers:
            _stop(worker)
