"""Cluster mode (issue 14): the flow's steps on two Celery workers, the Dagster instance on PostgreSQL.

Two ``dagster-celery worker start`` processes stand in for two machines; a Redis broker (its own
database number, results in Redis too), then RabbitMQ (guest/guest, results over ``rpc://``) carries
the steps, a fresh PostgreSQL database is the Dagster instance
(docs/cluster/dagster.yaml, copied into DAGSTER_HOME as a cluster's machines do) and another one the
teacher ledger. Two `distillset run` for two teacher partitions start together with
``DISTILLSET_EXECUTOR=celery``, against one loopback simulator.

Protects: both runs succeed; every step of both runs was executed by a Celery worker, exactly once,
and the steps were spread over both workers (the worker's name is in the engine event the task
records); nothing was paid twice (the simulator's count per request equals the ledger's answers);
each teacher's training set is published once and verifies; the instance database's password is
in no output and no worker log. Before this, no job used the celery
executor and `distillset run` always executed in process.

With ``DISTILLSET_SHARDS=2`` (Redis broker), one teacher's `distillset run` is four runs; its two
teacher x shard steps execute on the two workers (each worker one shard), every step once, nothing
is paid twice, one version is published.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pytest

from distillset.publish.reader import list_versions, verify_version
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.ledger import Ledger
from helpers.celery import celery_workers, require_broker
from helpers.cli import cli_env, small_prompt_folder, start_distillset
from helpers.paths import PROJECT
from helpers.postgres import fresh_database

TEACHERS = ("meta-llama/Llama-3.1-405B-Instruct", "meta-llama/Llama-3.1-8B-Instruct")
SETS = ("distill-llama-3-1-405b-instruct", "distill-llama-3-1-8b-instruct")
RELAXED_GATES = {"DISTILLSET_GATE_MIN_VERIFIABLE_ACCURACY": "0", "DISTILLSET_GATE_MIN_PASS_RATE": "0"}
WORKERS = ["worker-a", "worker-b"]
# The instance database's password (trust authentication ignores it): there to be looked for.
SECRET = "dagster-pg-password-never-logged-6610"


def _worker_of(event) -> str | None:
    """The Celery worker named by a step's "Executing steps ... in celery worker" engine event."""
    data = event.dagster_event.event_specific_data if event.dagster_event else None
    metadata = getattr(data, "metadata", None) or {}
    value = metadata.get("Celery worker")
    return getattr(value, "value", value)


_INSTANCE_VARIABLES = ("DAGSTER_PG_HOST", "DAGSTER_PG_DB", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD")


def _cluster_env(tmp_path, prompts, teacher_url, broker, instance_url, ledger_url, **settings) -> dict[str, str]:
    """The environment of a cluster's machine: the PostgreSQL instance (docs/cluster/dagster.yaml
    copied into a fresh DAGSTER_HOME, its password the SECRET), the shared ledger, the celery
    executor on ``broker`` (broker URL, backend URL), plus ``settings``."""
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(PROJECT / "docs" / "cluster" / "dagster.yaml", dagster_home / "dagster.yaml")
    database = urlsplit(instance_url)
    broker_url, backend_url = broker
    return cli_env(
        tmp_path,
        prompts,
        TEACHER_BASE_URL=teacher_url,
        DISTILLSET_LEDGER_URL=ledger_url,
        DISTILLSET_EXECUTOR="celery",
        DISTILLSET_CELERY_BROKER_URL=broker_url,
        DISTILLSET_CELERY_BACKEND_URL=backend_url,
        DAGSTER_HOME=str(dagster_home),
        DAGSTER_PG_HOST=database.hostname,
        DAGSTER_PG_DB=database.path.lstrip("/"),
        DAGSTER_PG_USERNAME=database.username,
        DAGSTER_PG_PASSWORD=SECRET,
        **RELAXED_GATES,
        **settings,
    )


def _celery_events(instance, dagster_run) -> list:
    """The run's Dagster events, after checking that every step that succeeded was executed by a
    celery worker, exactly once."""
    events = [e for e in instance.all_logs(dagster_run.run_id) if e.dagster_event is not None]
    succeeded = {e.step_key for e in events if e.dagster_event.event_type_value == "STEP_SUCCESS"}
    on_celery = Counter(e.step_key for e in events if _worker_of(e))
    assert succeeded and set(on_celery) == succeeded, f"steps not executed by a celery worker: {dagster_run}"
    assert set(on_celery.values()) == {1}, f"a step was executed twice: {on_celery}"
    return events


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_two_runs_execute_their_steps_on_two_celery_workers(tmp_path, broker, monkeypatch):
    prompts = small_prompt_folder(tmp_path, gsm8k_rows=30, mt_bench_rows=5)
    with (
        require_broker(broker) as broker_urls,
        fresh_database("distillset_instance") as instance_url,
        fresh_database() as ledger_url,
        TeacherSimulator(latency_s=0.1) as sim,
    ):
        env = _cluster_env(
            tmp_path, prompts, sim.base_url, broker_urls, instance_url, ledger_url, TEACHER_MAX_CONCURRENCY="8"
        )
        dagster_home = env["DAGSTER_HOME"]
        with celery_workers(WORKERS, env, tmp_path) as workers:
            runs = [start_distillset("run", "--teacher", model, "--wait-timeout", "600", env=env) for model in TEACHERS]
            outputs = [run.communicate(timeout=900)[0] for run in runs]
            print(*outputs, sep="\n")
            for run, output in zip(runs, outputs, strict=True):
                assert run.returncode == 0, f"{output}\n{workers.logs()}"
            completions = sim.stats()["completions_by_hash"]

            for variable in _INSTANCE_VARIABLES:
                monkeypatch.setenv(variable, env[variable])  # this process reads the instance too
            with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
                assert type(instance.run_storage).__name__ == "PostgresRunStorage"
                dagster_runs = instance.get_runs()
                assert len(dagster_runs) == 2
                assert {r.status for r in dagster_runs} == {dg.DagsterRunStatus.SUCCESS}
                placed: Counter = Counter()
                for run in dagster_runs:
                    assert run.tags["dagster/partition"] in TEACHERS
                    events = _celery_events(instance, run)
                    placed.update(_worker_of(e).split("@")[0] for e in events if _worker_of(e))
                assert set(placed) == set(WORKERS), f"steps per worker: {dict(placed)}\n{workers.logs()}"
            for worker in workers:
                assert "execute_plan" in worker.output() and "succeeded" in worker.output(), worker.output()
            # The steps travel with the instance's reference (env: names), never its password.
            assert not any(SECRET in text for text in [*outputs, workers.logs()])
            assert not any("already registered" in output for output in outputs)

        ledger = Ledger(ledger_url)
        try:
            assert ledger.count_answers() >= 2 * 30
            assert set(completions.values()) == {1}, "a request was paid twice"
            assert sum(completions.values()) == ledger.count_answers()
            assert ledger.leases() == []
        finally:
            ledger.close()
    storage = str(Path(env["DISTILLSET_HOME"]) / "training_sets")
    for name in SETS:
        assert [v.version for v in list_versions(storage, name)] == ["v0001"], outputs
        assert verify_version(storage, name, "v0001") == []


def test_one_teacher_in_two_shards_runs_its_shards_on_both_celery_workers(tmp_path, monkeypatch):
    """DISTILLSET_SHARDS=2: one `distillset run` is four runs (the pool, two teacher x shard runs
    started together, then curation and publishing once); the two shards' teacher steps execute
    on the two workers, every step once, nothing is paid twice, one version is published."""
    model, name = TEACHERS[0], SETS[0]
    prompts = small_prompt_folder(tmp_path, gsm8k_rows=40, mt_bench_rows=5)
    with (
        require_broker("redis") as broker_urls,
        fresh_database("distillset_instance") as instance_url,
        fresh_database() as ledger_url,
        # Slow enough answers (about 6 s per shard step) that both shard steps are in flight at once,
        # whatever the two runs' start-up times: a busy worker fetches nothing (worker_disable_prefetch).
        TeacherSimulator(latency_s=1.0) as sim,
    ):
        env = _cluster_env(
            tmp_path,
            prompts,
            sim.base_url,
            broker_urls,
            instance_url,
            ledger_url,
            TEACHER_MAX_CONCURRENCY="4",
            DISTILLSET_SHARDS="2",
        )
        dagster_home = env["DAGSTER_HOME"]
        with celery_workers(WORKERS, env, tmp_path) as workers:
            run = start_distillset("run", "--teacher", model, "--wait-timeout", "600", env=env)
            output = run.communicate(timeout=900)[0]
            print(output)
            assert run.returncode == 0, f"{output}\n{workers.logs()}"
            assert "teacher_generations" in output and "all 2 shards" in output, output
            completions = sim.stats()["completions_by_hash"]

            for variable in _INSTANCE_VARIABLES:
                monkeypatch.setenv(variable, env[variable])
            with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
                dagster_runs = instance.get_runs()
                assert sorted(r.job_name for r in dagster_runs) == [
                    "distill_job",
                    "distill_prepare_job",
                    "distill_shard_job",
                    "distill_shard_job",
                ]
                assert {r.status for r in dagster_runs} == {dg.DagsterRunStatus.SUCCESS}
                shard_workers = {}
                for dagster_run in dagster_runs:
                    events = _celery_events(instance, dagster_run)
                    if dagster_run.job_name == "distill_shard_job":
                        (teacher_step,) = [e for e in events if _worker_of(e) and e.step_key == "teacher_generations"]
                        shard = dagster_run.tags["dagster/partition/shard"]
                        assert dagster_run.tags["dagster/partition/teacher"] == model
                        shard_workers[shard] = _worker_of(teacher_step).split("@")[0]
                assert sorted(shard_workers) == ["0", "1"]
                assert set(shard_workers.values()) == set(WORKERS), f"shard -> worker: {shard_workers}"
            assert SECRET not in output and SECRET not in workers.logs()

        ledger = Ledger(ledger_url)
        try:
            assert set(completions.values()) == {1}, "a request was paid twice"
            assert sum(completions.values()) == ledger.count_answers() >= 40
            assert ledger.leases() == []
        finally:
            ledger.close()
    storage = str(Path(env["DISTILLSET_HOME"]) / "training_sets")
    assert [v.version for v in list_versions(storage, name)] == ["v0001"], output
    assert verify_version(storage, name, "v0001") == []
