"""The process that executes one run of `distillset run`:
``python -m orchestration.run_worker RUN_ID PARTITION PARENT_PID [--job JOB] [--allow-partial]``
(``distill_job`` for a teacher partition by default; with DISTILLSET_SHARDS > 1 also the prepare
job, and the shard job for a ``shard|teacher`` partition).

`distillset run` (``orchestration/run.py``) supervises it: Dagster swallows SIGINT/SIGTERM outside
asset code (while a step waits for a pool slot, say), so only a supervisor in another process can
promise that a signal stops the run at any moment and that a dead run never blocks the next one.
The worker dies with its supervisor (Linux ``PR_SET_PDEATHSIG``): a kill -9 of `distillset run`
leaves no run executing on behind the user's back.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import warnings

from assets.run_owner import owner_tags
from assets.run_tags import LAUNCHED_BY_TAG

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the supervisor's own cleanup still applies
        return
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def main(argv: list[str]) -> int:
    run_id, partition, parent_pid = argv[0], argv[1], int(argv[2])
    options = argv[3:]
    allow_partial = "--allow-partial" in options
    job_name = options[options.index("--job") + 1] if "--job" in options else "distill_job"
    _die_with_parent(parent_pid)

    from distillset.settings import load_settings
    from orchestration.definitions import build_definitions
    from orchestration.run import open_instance

    settings = load_settings()
    tags = {LAUNCHED_BY_TAG: "cli", **owner_tags()}
    run_config = {
        # INFO shows the stages' own progress lines, not every Dagster engine event.
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
        # Only the one field: the resource's other fields keep their environment defaults.
        **({"resources": {"training_storage": {"config": {"allow_partial": True}}}} if allow_partial else {}),
    }
    with open_instance(settings.dagster_home_path) as instance:
        if settings.executor.kind != "in_process":
            result = _execute_out_of_process(instance, run_id, job_name, partition, tags, run_config)
        else:
            result = (
                build_definitions(settings)
                .resolve_job_def(job_name)
                .execute_in_process(
                    instance=instance,
                    partition_key=partition,
                    run_id=run_id,
                    raise_on_error=False,
                    tags=tags,
                    run_config=run_config,
                )
            )
    return 0 if result.success else 1


def _execute_out_of_process(instance, run_id: str, job_name: str, partition: str, tags: dict, run_config: dict):
    """Run ``job_name`` for ``partition`` with its executor (celery: this process orchestrates, the
    Celery workers execute the steps). They load the job from the same code pointer
    (``orchestration.definitions:defs``, as workspace.yaml names it), so it must be reconstructable,
    unlike ``execute_in_process``, which ignores a job's executor."""
    from pathlib import Path

    # Private API: ``dg.execute_job`` creates the run itself, and the supervisor needs the run id it
    # chose (pool waits, cancelling); ``execute_run`` is what ``execute_job`` calls after creating it.
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.execution.api import execute_run

    # dagster_celery registers its step task anew for every step it submits, and Celery warns each
    # time that the name exists (the first registration, the same function, serves every call).
    warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered")

    project = str(Path(__file__).resolve().parent.parent)
    job = ReconstructableRepository.for_module("orchestration.definitions", "defs", project).get_reconstructable_job(
        job_name
    )
    job_def = job.get_definition()
    # A teacher x shard key also tags each dimension (dagster/partition/shard, .../teacher), as Dagster does.
    partition_tags = job_def.partitions_def.get_tags_for_partition_key(partition)
    run = instance.create_run_for_job(
        job_def=job_def,
        run_id=run_id,
        run_config=run_config,
        tags={**tags, **partition_tags},
        job_code_origin=job.get_python_origin(),
    )
    return execute_run(job, run, instance, raise_on_error=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
