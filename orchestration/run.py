"""`distillset run`: the whole flow for one teacher, in DISTILLSET_HOME's Dagster instance.

With DISTILLSET_SHARDS > 1 the flow is several runs (``flow_plan``): the pool, the teacher's N
shards at once (so the celery executor spreads them over its workers), then curation and
publishing; each run has a worker of its own and the promises below hold for all of them.

`distillset run` supervises a worker process (``orchestration/run_worker.py``) that executes the run,
so that it can keep three promises Dagster alone does not (it swallows SIGINT/SIGTERM while a step
waits for a pool slot):

- a dead run never blocks it: before launching, and whenever the run waits for a pool slot, runs
  whose process is gone are failed and their slots freed (``orchestration/recovery.py``);
- it never waits silently: it says what it waits for (which pool, which run holds it, alive or
  not) and gives up after ``--wait-timeout`` seconds with exit code 3;
- SIGINT and SIGTERM stop it at any moment: the worker gets SIGTERM, then SIGKILL after a grace
  period; the run is marked canceled, its slots freed; the exit code is 128 + the signal number.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from distillset.settings import Settings
from orchestration.run_summary import RunSummary, summarize

TEACHER_PARTITIONS = "teacher_models"
# The instance configuration (pool limits, run queue) copied into a new DAGSTER_HOME. It lives here,
# not at the project root, where `dagster dev` would warn that it is ignored.
INSTANCE_CONFIG = Path(__file__).parent / "dagster.yaml"


def prepare_dagster_home(home: Path) -> Path:
    """Create the Dagster home (``Settings.dagster_home_path``) with the project's ``dagster.yaml``.

    A persistent home keeps run history, partitions and asset metadata between runs, so the UI
    (``make ui``) shows what the command line did.
    """
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(INSTANCE_CONFIG, config)
    return home


# A live run's catalog step takes seconds to minutes; a dead run's slot is freed at once.
DEFAULT_WAIT_TIMEOUT_S = 300.0
WAIT_TIMEOUT_EXIT_CODE = 3
# After SIGTERM the worker has this long to end its step and record the run; then SIGKILL.
STOP_GRACE_S = 15.0
_POLL_S = 0.25
_WAIT_CHECK_S = 2.0
_WAIT_REPORT_S = 15.0
# Below this, a failed run is reported as a full disk rather than left to Dagster's tracebacks.
_FULL_DISK_BYTES = 1 << 20


@contextlib.contextmanager
def _instance_lock(home: Path) -> Iterator[None]:
    """Serialize the first opening of a Dagster home: two runs creating a fresh SQLite run storage at
    the same moment can leave it with two schema heads, and every later run fails at start."""
    with open(home / ".distillset-instance.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_instance(home: Path):
    """The Dagster instance of ``home``, opened under the home's lock (see ``_instance_lock``)."""
    import dagster as dg

    with _instance_lock(home):
        return dg.DagsterInstance.from_config(str(home))


class _StopRequest:
    """The first SIGINT/SIGTERM received while the run goes on (handlers only on the main thread)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, _frame) -> None:
        if self.signum is None:
            self.signum = signum

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


@dataclass
class _Launched:
    """One run of the flow and the worker process executing it."""

    run_id: str
    job: str
    partition: str
    worker: subprocess.Popen
    waiting_since: float | None = None


def flow_plan(model: str, shards: int) -> list[list[tuple[str, str]]]:
    """The runs of the flow for ``model``, as stages of ``(job, partition key)`` launched together.

    One run of ``distill_job`` when unsharded; with ``shards`` > 1 (``orchestration/shards.py``) the
    pool and the scorecard, then every teacher x shard at once (the executor spreads them over its
    workers), then the stages after the teacher once over all shards.
    """
    if shards == 1:
        return [[("distill_job", model)]]
    from assets.partitions import shard_partition_key
    from orchestration.jobs import PREPARE_JOB, SHARD_JOB

    return [
        [(PREPARE_JOB, model)],
        [(SHARD_JOB, str(shard_partition_key(model, shard))) for shard in range(shards)],
        [("distill_job", model)],
    ]


def run_flow(
    settings: Settings,
    teacher_model: str | None = None,
    *,
    echo: Callable[[str], None] = print,
    wait_timeout_s: float = DEFAULT_WAIT_TIMEOUT_S,
    allow_partial: bool = False,
) -> RunSummary:
    """Register the teacher partition if new, then run the whole flow for it in supervised worker
    processes: one run of ``distill_job``, or with DISTILLSET_SHARDS > 1 the runs of ``flow_plan``.
    ``DAGSTER_HOME`` must be set in the environment (the CLI does it)."""
    import dagster as dg

    from orchestration.recovery import reap_dead_runs

    model = teacher_model or settings.teacher.model
    dagster_home = prepare_dagster_home(settings.dagster_home_path)
    with _instance_lock(dagster_home):
        instance = dg.DagsterInstance.from_config(str(dagster_home))
        # Registering a partition writes the run storage too: under the same lock.
        if model not in instance.get_dynamic_partitions(TEACHER_PARTITIONS):
            instance.add_dynamic_partitions(TEACHER_PARTITIONS, [model])
            echo(f"registered teacher partition {model}")
    for dead in reap_dead_runs(instance):
        echo(
            f"run {dead.run_id} ({dead.job_name}) had died (pid {dead.pid} on {dead.host}): marked failed, slots freed"
        )
    shards = settings.executor.shards
    sharded = f" in {shards} prompt shards" if shards > 1 else ""
    echo(f"distilling with teacher {model}{sharded}; DISTILLSET_HOME={settings.home}; DAGSTER_HOME={dagster_home}")

    launched: list[_Launched] = []
    stopped_because, exit_code = None, None
    with _StopRequest() as stop:
        for stage in flow_plan(model, shards):
            runs = [_launch(job, partition, allow_partial) for job, partition in stage]
            if len(runs) > 1:
                echo(f"{len(runs)} runs of {stage[0][0]} started together: {', '.join(r.run_id for r in runs)}")
            launched += runs
            stopped_because, exit_code = _supervise(instance, runs, stop, echo, wait_timeout_s)
            if stopped_because or any(run.worker.returncode != 0 for run in runs):
                break
    return _finish(instance, settings, model, launched, stopped_because, exit_code)


def _launch(job: str, partition: str, allow_partial: bool) -> _Launched:
    run_id = str(uuid.uuid4())
    command = [sys.executable, "-m", "orchestration.run_worker", run_id, partition, str(os.getpid()), "--job", job]
    worker = subprocess.Popen(command + (["--allow-partial"] if allow_partial else []))
    return _Launched(run_id, job, partition, worker)


def _supervise(
    instance, runs: list[_Launched], stop: _StopRequest, echo: Callable[[str], None], wait_timeout_s: float
) -> tuple[str | None, int | None]:
    """Wait for ``runs``' workers; a signal or a pool wait past ``wait_timeout_s`` stops them all.
    Returns ``(why stopped, exit code)``, both None when every worker ended by itself."""
    from orchestration.recovery import pool_waits, reap_dead_runs

    stopped_because, exit_code = None, None
    last_check, last_report, terminated_at = 0.0, 0.0, None

    def terminate(now: float) -> float:
        for run in runs:
            if run.worker.poll() is None:
                run.worker.send_signal(signal.SIGTERM)
        return now

    while any(run.worker.poll() is None for run in runs):
        time.sleep(_POLL_S)
        now = time.monotonic()
        if stop.signum is not None and terminated_at is None:
            name = signal.Signals(stop.signum).name
            echo(f"{name} received: stopping the run (answers already paid stay in the ledger)")
            stopped_because, exit_code = f"by {name}", 128 + stop.signum
            terminated_at = terminate(now)
        if terminated_at is not None:
            if now - terminated_at > STOP_GRACE_S:
                for run in runs:
                    if run.worker.poll() is None:
                        run.worker.kill()
            continue
        if now - last_check < _WAIT_CHECK_S:
            continue
        last_check = now
        for run in runs:
            if run.worker.poll() is not None:
                continue
            waits = pool_waits(instance, run.run_id)
            if not waits:
                run.waiting_since = None
                continue
            if any(state == "dead" for wait in waits for _, _, state in wait.holders):
                for dead in reap_dead_runs(instance):
                    echo(f"freed the pool slot held by dead run {dead.run_id} (pid {dead.pid} on {dead.host})")
                continue
            run.waiting_since = run.waiting_since or now
            waited = now - run.waiting_since
            if waited > wait_timeout_s:
                stopped_because = (
                    f"after waiting {waited:.0f}s (--wait-timeout {wait_timeout_s:g}s): {waits[0].describe()}; "
                    "rerun when that run has finished, or stop it in the Dagster UI"
                )
                exit_code = WAIT_TIMEOUT_EXIT_CODE
                echo(f"giving up: {stopped_because}")
                terminated_at = terminate(now)
                break
            if now - last_report >= _WAIT_REPORT_S or last_report < run.waiting_since:
                echo(f"waiting {waited:.0f}s of at most {wait_timeout_s:g}s: {waits[0].describe()}")
                last_report = now
    return stopped_because, exit_code


def _finish(
    instance, settings: Settings, model: str, launched: list[_Launched], stopped_because, exit_code
) -> RunSummary:
    """Record what the workers could not (a killed worker leaves its run STARTED) and summarize
    every run of the flow in one summary (a sharded flow's shard runs each add their figures)."""
    events, problems = [], []
    for launched_run in launched:
        run_id, returncode = launched_run.run_id, launched_run.worker.returncode
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            if stopped_because:
                instance.report_run_canceled(run, f"distillset run stopped {stopped_because}")
            else:
                why = f"signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
                instance.report_run_failed(run, f"the run worker died ({why}): out of memory, or killed")
        if run is not None and instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        events += [entry.dagster_event for entry in instance.all_logs(run_id) if entry.dagster_event is not None]
        if run is None:
            problems.append(f"the run worker exited with code {returncode} before the run started (see above)")
        elif returncode < 0 and not stopped_because:
            problems.append(f"the run worker was killed by signal {-returncode} (out of memory?)")
    success = bool(launched) and all(r.worker.returncode == 0 for r in launched) and stopped_because is None
    success = success and len(launched) == sum(len(stage) for stage in flow_plan(model, settings.executor.shards))
    last = launched[-1].run_id if launched else ""
    summary = summarize(events, model, last, success=success)
    if len(launched) > 1:
        summary.runs = [(r.job, r.partition, r.run_id) for r in launched]
    summary.exit_code, summary.stopped_because = exit_code, stopped_because
    summary.errors += problems
    if not summary.success:
        for place in dict.fromkeys([settings.home, settings.dagster_home_path]):
            with contextlib.suppress(OSError):
                if shutil.disk_usage(place).free < _FULL_DISK_BYTES:
                    summary.errors.append(f"no space left on device at {place}")
    return summary
