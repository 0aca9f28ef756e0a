"""`distillset run`: the whole flow for one teacher, in DISTILLSET_HOME's Dagster instance.

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


def run_flow(
    settings: Settings,
    teacher_model: str | None = None,
    *,
    echo: Callable[[str], None] = print,
    wait_timeout_s: float = DEFAULT_WAIT_TIMEOUT_S,
    allow_partial: bool = False,
) -> RunSummary:
    """Register the teacher partition if new, then run the whole flow (``distill_job``) for it in a
    supervised worker process. ``DAGSTER_HOME`` must be set in the environment (the CLI does it)."""
    import dagster as dg

    from orchestration.recovery import pool_waits, reap_dead_runs

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
    echo(f"distilling with teacher {model}; DISTILLSET_HOME={settings.home}; DAGSTER_HOME={dagster_home}")

    run_id = str(uuid.uuid4())
    stopped_because, exit_code = None, None
    with _StopRequest() as stop:
        command = [sys.executable, "-m", "orchestration.run_worker", run_id, model, str(os.getpid())]
        worker = subprocess.Popen(command + (["--allow-partial"] if allow_partial else []))
        waiting_since, last_check, last_report, terminated_at = None, 0.0, 0.0, None
        while worker.poll() is None:
            time.sleep(_POLL_S)
            now = time.monotonic()
            if stop.signum is not None and terminated_at is None:
                name = signal.Signals(stop.signum).name
                echo(f"{name} received: stopping the run (answers already paid stay in the ledger)")
                stopped_because, exit_code = f"by {name}", 128 + stop.signum
                worker.send_signal(signal.SIGTERM)
                terminated_at = now
            if terminated_at is not None:
                if now - terminated_at > STOP_GRACE_S:
                    worker.kill()
                continue
            if now - last_check < _WAIT_CHECK_S:
                continue
            last_check = now
            waits = pool_waits(instance, run_id)
            if not waits:
                waiting_since = None
                continue
            if any(state == "dead" for wait in waits for _, _, state in wait.holders):
                for dead in reap_dead_runs(instance):
                    echo(f"freed the pool slot held by dead run {dead.run_id} (pid {dead.pid} on {dead.host})")
                continue
            waiting_since = waiting_since or now
            waited = now - waiting_since
            if waited > wait_timeout_s:
                stopped_because = (
                    f"after waiting {waited:.0f}s (--wait-timeout {wait_timeout_s:g}s): {waits[0].describe()}; "
                    "rerun when that run has finished, or stop it in the Dagster UI"
                )
                exit_code = WAIT_TIMEOUT_EXIT_CODE
                echo(f"giving up: {stopped_because}")
                worker.send_signal(signal.SIGTERM)
                terminated_at = now
            elif now - last_report >= _WAIT_REPORT_S or last_report < waiting_since:
                echo(f"waiting {waited:.0f}s of at most {wait_timeout_s:g}s: {waits[0].describe()}")
                last_report = now
    return _finish(instance, settings, model, run_id, worker.returncode, stopped_because, exit_code)


def _finish(
    instance, settings: Settings, model: str, run_id: str, returncode: int, stopped_because, exit_code
) -> RunSummary:
    """Record what the worker could not (a killed worker leaves its run STARTED) and summarize."""
    run = instance.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        if stopped_because:
            instance.report_run_canceled(run, f"distillset run stopped {stopped_because}")
        else:
            why = f"signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
            instance.report_run_failed(run, f"the run worker died ({why}): out of memory, or killed")
    if run is not None and instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    events = [entry.dagster_event for entry in instance.all_logs(run_id) if entry.dagster_event is not None]
    summary = summarize(events, model, run_id, success=returncode == 0 and stopped_because is None)
    summary.exit_code, summary.stopped_because = exit_code, stopped_because
    if run is None:
        summary.errors.append(f"the run worker exited with code {returncode} before the run started (see above)")
    elif returncode < 0 and not stopped_because:
        summary.errors.append(f"the run worker was killed by signal {-returncode} (out of memory?)")
    if not summary.success:
        for place in dict.fromkeys([settings.home, settings.dagster_home_path]):
            with contextlib.suppress(OSError):
                if shutil.disk_usage(place).free < _FULL_DISK_BYTES:
                    summary.errors.append(f"no space left on device at {place}")
    return summary
