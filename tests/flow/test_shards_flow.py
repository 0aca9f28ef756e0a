"""One teacher in prompt shards (DISTILLSET_SHARDS > 1, issue 14): teacher x shard partitions.

Protects: with two shards the flow is three jobs (the pool and scorecard, one run per teacher x
shard, then curation and publishing once per teacher) and publishes the same training set (rows,
content hash) as one unsharded run on the same prompts, paying each request once; the shards are
disjoint slices that together cover the pool, and a prompt's shard is the same in DuckDB and in
Python; a changed shard count never mixes two shardings: the later stages refuse to run, naming
the missing shards, until every shard of the new count is written, which then pays nothing again
and publishes no new version; the release sensor and the nightly refresh request an asset
backfill of the whole graph for a teacher instead of a run of one job.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.partitions import shard_partition_key
from distillset.prompts.shards import shard_of, shard_sql
from distillset.settings import SettingsError, load_settings
from distillset.teacher.ledger import Ledger
from helpers.flow import MODEL, last_metadata, materialize_flow, step_failures
from orchestration.definitions import build_definitions
from orchestration.schedules import refresh_every_teacher_in_shards


@pytest.fixture
def prompts_dir(sample_prompts_dir):
    return sample_prompts_dir(25)


def _use_home(monkeypatch, home: Path, shards: int) -> None:
    monkeypatch.setenv("DISTILLSET_HOME", str(home))
    monkeypatch.setenv("DISTILLSET_SHARDS", str(shards))


def _run(defs: dg.Definitions, job: str, key, instance) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
    return result


def _run_sharded(instance, shards: int, *, only: list[int] | None = None) -> dict[str, dg.ExecuteInProcessResult]:
    """The three jobs of a sharded flow, in the order `distillset run` launches them."""
    defs = build_definitions(load_settings())
    if MODEL not in instance.get_dynamic_partitions("teacher_models"):
        instance.add_dynamic_partitions("teacher_models", [MODEL])
    results = {"prepare": _run(defs, "distill_prepare_job", MODEL, instance)}
    assert results["prepare"].success, step_failures(results["prepare"])
    for shard in range(shards) if only is None else only:
        results[f"shard{shard}"] = _run(defs, "distill_shard_job", shard_partition_key(MODEL, shard), instance)
        assert results[f"shard{shard}"].success, step_failures(results[f"shard{shard}"])
    results["distill"] = _run(defs, "distill_job", MODEL, instance)
    return results


def _published(home: Path, metadata: dict) -> tuple[str, list[str]]:
    version = Path(metadata["path"])
    manifest = json.loads((version / "manifest.json").read_text())
    lines = []
    for split in ("train.jsonl", "validation.jsonl"):
        lines += (version / split).read_text().splitlines()
    return manifest["content_hash"], sorted(lines)


def _answers(home: Path) -> int:
    ledger = Ledger(home / "ledger.sqlite")
    try:
        return ledger.count_answers()
    finally:
        ledger.close()


def test_two_shards_publish_what_one_run_publishes_and_pay_each_request_once(tmp_path, monkeypatch, prompts_dir):
    one, two = tmp_path / "one", tmp_path / "two"
    _use_home(monkeypatch, one, 1)
    unsharded = materialize_flow(dg.DagsterInstance.ephemeral())
    assert unsharded.success, step_failures(unsharded)
    expected = _published(one, last_metadata(unsharded, "training_set"))
    paid_unsharded = last_metadata(unsharded, "teacher_generations")["teacher/requests_paid"]

    _use_home(monkeypatch, two, 2)
    instance = dg.DagsterInstance.ephemeral()
    results = _run_sharded(instance, 2)
    assert results["distill"].success, step_failures(results["distill"])
    published = last_metadata(results["distill"], "training_set")
    assert published["version"] == "v0001"
    assert _published(two, published) == expected

    shard_metadata = [last_metadata(results[f"shard{s}"], "teacher_generations") for s in (0, 1)]
    assert [m["shard"] for m in shard_metadata] == ["0 of 2", "1 of 2"]
    paid = [m["teacher/requests_paid"] for m in shard_metadata]
    assert all(p > 0 for p in paid) and sum(paid) == paid_unsharded
    assert _answers(two) == _answers(one) == paid_unsharded

    with duckdb.connect(str(two / "catalog.duckdb"), read_only=True) as con:
        pool = dict(con.execute(f"SELECT prompt_id, {shard_sql(2)} FROM prompt_pool").fetchall())
        rows = dict(con.execute("SELECT shard, rows FROM teacher_shards WHERE shards = 2").fetchall())
        generated = con.execute("SELECT count(*), count(DISTINCT prompt_id) FROM teacher_generations").fetchone()
    assert all(shard_of(prompt_id, 2) == shard for prompt_id, shard in pool.items())
    assert set(pool.values()) == {0, 1}
    # Disjoint slices that cover the pool: one row per prompt, each written by its shard's run.
    assert generated == (len(pool), len(pool)) and sum(rows.values()) == len(pool)
    assert rows == {s: sum(1 for v in pool.values() if v == s) for s in (0, 1)}

    # A shard run again pays for nothing.
    again = _run(build_definitions(load_settings()), "distill_shard_job", shard_partition_key(MODEL, 0), instance)
    assert again.success and last_metadata(again, "teacher_generations")["teacher/requests_paid"] == 0


def test_a_changed_shard_count_is_read_only_once_every_new_shard_is_written(tmp_path, monkeypatch, prompts_dir):
    home = tmp_path / "home"
    _use_home(monkeypatch, home, 2)
    instance = dg.DagsterInstance.ephemeral()
    first = _run_sharded(instance, 2)
    assert first["distill"].success, step_failures(first["distill"])
    answers = _answers(home)

    _use_home(monkeypatch, home, 3)
    partial = _run_sharded(instance, 3, only=[0])
    assert not partial["distill"].success
    (failure,) = step_failures(partial["distill"])
    assert failure.startswith("deduplicated_generations")
    assert "2 of 3" not in failure and "1 of 3 shards" in failure
    assert "missing shard(s) 1, 2" in failure and "DISTILLSET_SHARDS=3" in failure

    complete = _run_sharded(instance, 3, only=[1, 2])
    assert complete["distill"].success, step_failures(complete["distill"])
    published = last_metadata(complete["distill"], "training_set")
    assert published["published_new_version"] is False and published["version"] == "v0001"
    assert _answers(home) == answers  # re-sharding paid for nothing

    # Back to one run for the teacher: it reads the whole pool again and forgets the shards.
    _use_home(monkeypatch, home, 1)
    unsharded = materialize_flow(instance)
    assert unsharded.success, step_failures(unsharded)
    assert last_metadata(unsharded, "training_set")["published_new_version"] is False
    with duckdb.connect(str(home / "catalog.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM teacher_shards").fetchone() == (0,)


def test_shards_with_batch_mode_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(SettingsError) as raised:
        load_settings({"DISTILLSET_HOME": str(tmp_path), "DISTILLSET_SHARDS": "2", "TEACHER_BATCH": "true"})
    assert "DISTILLSET_SHARDS=2" in str(raised.value.problems) and "TEACHER_BATCH" in str(raised.value.problems)
    with pytest.raises(SettingsError) as raised:
        load_settings({"DISTILLSET_HOME": str(tmp_path), "DISTILLSET_SHARDS": "0"})
    assert "DISTILLSET_SHARDS" in str(raised.value.problems)


def _backfill_partitions(request: dg.RunRequest) -> dict[str, set]:
    subset = request.asset_graph_subset
    assert subset is not None, "not a backfill request"
    found = {key.to_user_string(): {None} for key in subset.non_partitioned_asset_keys}
    for key, partitions in subset.partitions_subsets_by_asset_key.items():
        found[key.to_user_string()] = set(partitions.get_partition_keys())
    return found


def test_the_release_sensor_and_the_nightly_refresh_request_a_backfill_per_teacher(tmp_path, monkeypatch):
    from distillset.simulator.server import TeacherSimulator
    from orchestration.resources import build_resources

    _use_home(monkeypatch, tmp_path / "home", 2)
    with TeacherSimulator(models=[MODEL]) as sim:
        monkeypatch.setenv("TEACHER_BASE_URL", sim.base_url)
        settings = load_settings()
        defs = build_definitions(settings)
        assert {s.name for s in defs.sensors or []} >= {"new_teacher_release_sensor", "nightly_refresh_sensor"}
        assert not list(defs.schedules or [])
        resources = {k: v for k, v in build_resources(settings).items() if k in ("teacher", "release_source")}
        with dg.DagsterInstance.ephemeral() as instance:
            context = dg.build_sensor_context(
                instance=instance,
                repository_def=defs.get_repository_def(),
                resources=resources,
                sensor_name="new_teacher_release_sensor",
            )
            result = next(s for s in defs.sensors if s.name == "new_teacher_release_sensor")(context)
            assert isinstance(result, dg.SensorResult), result
            (request,) = result.run_requests
            partitions = _backfill_partitions(request)
            assert partitions["teacher_generations"] == {"0|" + MODEL, "1|" + MODEL}
            assert partitions["training_set"] == {MODEL} and partitions["prompt_pool"] == {None}
            assert result.dynamic_partitions_requests[0].partition_keys == [MODEL]

            instance.add_dynamic_partitions("teacher_models", [MODEL, "meta-llama/Llama-3.1-8B-Instruct"])
            cron = "0 2 * * *"
            night = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
            context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
            first = refresh_every_teacher_in_shards(context, cron, now=night)
            assert not first.run_requests and first.cursor == "2026-12-03T02:00Z"  # turned on: nothing past
            context = dg.build_sensor_context(
                instance=instance, repository_def=defs.get_repository_def(), cursor=first.cursor
            )
            assert isinstance(refresh_every_teacher_in_shards(context, cron, now=night), dg.SkipReason)
            tick = refresh_every_teacher_in_shards(context, cron, now=night.replace(hour=2, minute=5))
            assert tick.cursor == "2026-12-04T02:00Z"
            teachers = sorted(next(iter(_backfill_partitions(r)["training_set"])) for r in tick.run_requests)
            assert teachers == ["meta-llama/Llama-3.1-405B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"]
