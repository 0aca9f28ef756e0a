"""Dead runs never block live ones: find runs whose process is gone, fail them and free their slots.

A run records its worker process in its tags (``assets.run_owner``). A run that is still
STARTING, STARTED or CANCELING in the instance while that process is gone (kill -9, OOM, reboot)
is marked failed and the concurrency slots it holds are freed, so the next run that needs the
``distillset_catalog`` pool gets it. Runs of another host, or with no recorded owner, are left
alone: only their own host (or Dagster's run monitoring) can tell.

Used by ``distillset run`` before it launches and while it waits, and by ``stale_run_sensor``
for the runs the daemon launches.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from assets.run_owner import HOST_TAG, PID_TAG, owner_state

UNFINISHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


@dataclass(frozen=True)
class ReapedRun:
    run_id: str
    job_name: str
    host: str | None
    pid: str | None


def reap_dead_runs(instance: dg.DagsterInstance) -> list[ReapedRun]:
    """Fail every unfinished run whose worker process is gone, and free the slots of every run that
    is finished (or just failed here) but still holds some. Returns the runs failed here."""
    reaped = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        if owner_state(run.tags) != "dead":
            continue
        instance.report_run_failed(
            run,
            f"the run's process ({run.tags.get(PID_TAG)} on {run.tags.get(HOST_TAG)}) is gone (killed, out of "
            "memory or the machine restarted): marked failed by distillset so its pool slots are freed",
        )
        reaped.append(ReapedRun(run.run_id, run.job_name, run.tags.get(HOST_TAG), run.tags.get(PID_TAG)))
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        holding = storage.get_concurrency_run_ids()
        if holding:
            for record in instance.get_run_records(filters=dg.RunsFilter(run_ids=list(holding))):
                if record.dagster_run.is_finished:
                    storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
    return reaped


@dataclass(frozen=True)
class PoolWait:
    """A step of ``run_id`` waiting for a slot of ``pool``, and who holds the pool's slots."""

    pool: str
    step_key: str
    holders: list[tuple[str, str, str]]
    """(run id, step key, owner state: alive / dead / unknown)"""

    def describe(self) -> str:
        held = ", ".join(f"run {run_id[:8]} step {step} ({state})" for run_id, step, state in self.holders) or "nobody"
        return f"step {self.step_key} waits for a slot of pool {self.pool!r}, held by {held}"


def pool_waits(instance: dg.DagsterInstance, run_id: str) -> list[PoolWait]:
    """The steps of ``run_id`` that wait for a concurrency slot right now."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    waits = []
    for pool in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(pool)
        waiting = [p.step_key for p in info.pending_steps if p.run_id == run_id and p.assigned_timestamp is None]
        if not waiting:
            continue
        holders = []
        for slot in info.claimed_slots:
            holder = instance.get_run_by_id(slot.run_id)
            holders.append((slot.run_id, slot.step_key, owner_state(holder.tags) if holder else "unknown"))
        waits += [PoolWait(pool, step, holders) for step in waiting]
    return waits
