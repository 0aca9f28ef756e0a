"""The process that executes one `distillset run`: ``python -m orchestration.run_worker RUN_ID MODEL``.

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
    run_id, model, parent_pid = argv[0], argv[1], int(argv[2])
    allow_partial = "--allow-partial" in argv[3:]
    _die_with_parent(parent_pid)

    from distillset.settings import load_settings
    from orchestration.definitions import build_definitions
    from orchestration.run import open_instance

    settings = load_settings()
    defs = build_definitions(settings)
    with open_instance(settings.dagster_home_path) as instance:
        result = defs.resolve_job_def("distill_job").execute_in_process(
            instance=instance,
            partition_key=model,
            run_id=run_id,
            raise_on_error=False,
            tags={LAUNCHED_BY_TAG: "cli", **owner_tags()},
            # INFO shows the stages' own progress lines, not every Dagster engine event.
            run_config={
                "loggers": {"console": {"config": {"log_level": "INFO"}}},
                # Only the one field: the resource's other fields keep their environment defaults.
                **({"resources": {"training_storage": {"config": {"allow_partial": True}}}} if allow_partial else {}),
            },
        )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
