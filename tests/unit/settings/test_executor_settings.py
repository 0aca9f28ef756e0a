"""DISTILLSET_EXECUTOR and the Celery URLs (issue 14, cluster mode).

Protects: the default stays in process with no URL needed; celery needs both the broker and the
backend URL and says which is missing; a URL of the wrong kind or an rpc:// backend on a Redis
broker is refused, naming the variable; a password in a bad URL is never echoed.
"""

from __future__ import annotations

import pytest

from distillset.settings import SettingsError, load_settings

SECRET = "broker-password-never-echoed-5521"


def _problems(env: dict) -> str:
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    return "\n".join(raised.value.problems)


def test_the_default_is_in_process_and_needs_no_url(tmp_path):
    executor = load_settings({"DISTILLSET_HOME": str(tmp_path)}).executor
    assert executor.kind == "in_process" and not executor.celery
    assert executor.celery_broker_url is None and executor.celery_backend_url is None


@pytest.mark.parametrize(
    ("broker", "backend"),
    [
        ("redis://127.0.0.1:6379/11", "redis://127.0.0.1:6379/11"),
        (f"amqp://guest:{SECRET}@127.0.0.1:5672//", "rpc://"),
    ],
)
def test_celery_with_a_broker_and_a_backend(tmp_path, broker, backend):
    executor = load_settings(
        {
            "DISTILLSET_HOME": str(tmp_path),
            "DISTILLSET_EXECUTOR": "celery",
            "DISTILLSET_CELERY_BROKER_URL": broker,
            "DISTILLSET_CELERY_BACKEND_URL": backend,
        }
    ).executor
    assert executor.celery and executor.celery_broker_url == broker
    assert SECRET not in repr(executor)


def test_celery_names_each_missing_url(tmp_path):
    problems = _problems({"DISTILLSET_HOME": str(tmp_path), "DISTILLSET_EXECUTOR": "celery"})
    assert "DISTILLSET_CELERY_BROKER_URL" in problems and "DISTILLSET_CELERY_BACKEND_URL" in problems


def test_an_unknown_executor_is_refused(tmp_path):
    problems = _problems({"DISTILLSET_HOME": str(tmp_path), "DISTILLSET_EXECUTOR": "kubernetes"})
    assert "DISTILLSET_EXECUTOR" in problems and "celery" in problems and "k8s" in problems


def test_a_bad_broker_url_is_refused_without_echoing_it(tmp_path):
    problems = _problems(
        {
            "DISTILLSET_HOME": str(tmp_path),
            "DISTILLSET_EXECUTOR": "celery",
            "DISTILLSET_CELERY_BROKER_URL": f"http://user:{SECRET}@broker:5672",
            "DISTILLSET_CELERY_BACKEND_URL": "rpc://",
        }
    )
    assert "DISTILLSET_CELERY_BROKER_URL" in problems and SECRET not in problems


def test_an_rpc_backend_needs_a_rabbitmq_broker(tmp_path):
    problems = _problems(
        {
            "DISTILLSET_HOME": str(tmp_path),
            "DISTILLSET_EXECUTOR": "celery",
            "DISTILLSET_CELERY_BROKER_URL": f"redis://:{SECRET}@127.0.0.1:6379/0",
            "DISTILLSET_CELERY_BACKEND_URL": "rpc://",
        }
    )
    assert "rpc://" in problems and "redis://:***@127.0.0.1:6379/0" in problems and SECRET not in problems
