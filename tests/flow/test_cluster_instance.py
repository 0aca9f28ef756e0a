"""The cluster's Dagster instance (issue 14): docs/cluster/dagster.yaml on PostgreSQL.

Protects: the documented instance file loads with dagster-postgres (run, event-log and schedule
storage in one PostgreSQL database named by ``DAGSTER_PG_*`` variables), a run on it succeeds, and a
second instance opened from the same file (another machine, in a cluster) sees that run and its
materialization; the database and its password are read from the environment, never written into the file.
"""

from __future__ import annotations

import shutil
from urllib.parse import urlsplit

import dagster as dg

from helpers.paths import PROJECT

CLUSTER_YAML = PROJECT / "docs" / "cluster" / "dagster.yaml"


@dg.asset
def probe() -> int:
    return 42


def test_the_documented_cluster_instance_keeps_runs_in_postgresql(postgres_url, tmp_path, monkeypatch):
    assert "postgresql://" not in CLUSTER_YAML.read_text(encoding="utf-8")  # from the environment only
    database = urlsplit(postgres_url)
    monkeypatch.setenv("DAGSTER_PG_HOST", database.hostname)
    monkeypatch.setenv("DAGSTER_PG_DB", database.path.lstrip("/"))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", database.username)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "ignored-by-trust-authentication")
    machines = []
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        shutil.copy(CLUSTER_YAML, home / "dagster.yaml")
        machines.append(home)
    with dg.DagsterInstance.from_config(str(machines[0])) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        result = dg.materialize([probe], instance=instance)
        assert result.success
    with dg.DagsterInstance.from_config(str(machines[1])) as other:
        runs = other.get_runs()
        assert [run.run_id for run in runs] == [result.run_id]
        assert runs[0].status == dg.DagsterRunStatus.SUCCESS
        assert other.get_latest_materialization_event(dg.AssetKey("probe")) is not None
