"""Which process runs a Dagster run, recorded as run tags, so a dead run can be told from a slow one.

A run that dies (kill -9, OOM, reboot, disk full) stays STARTED in the instance and keeps the
catalog pool slot it held; every later run would wait for that slot forever. Each run therefore
records its worker process (host, pid and the process's start time, so a reused pid is not
mistaken for the owner) when its resources are set up, and the CLI and the reaper sensor
(``orchestration/recovery.py``) check those tags before waiting on a run.
"""

import os
import socket

HOST_TAG = "distillset/host"
PID_TAG = "distillset/pid"
PID_START_TAG = "distillset/pid_start"

HOST = socket.gethostname()


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None where /proc is missing."""
    fields = _stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def owner_tags(pid: int | None = None) -> dict[str, str]:
    """The tags that name this (or ``pid``'s) process as a run's worker."""
    pid = os.getpid() if pid is None else pid
    tags = {HOST_TAG: HOST, PID_TAG: str(pid)}
    start = _start_ticks(pid)
    if start is not None:
        tags[PID_START_TAG] = start
    return tags


def owner_state(tags: dict[str, str]) -> str:
    """``alive``, ``dead`` or ``unknown`` (no owner recorded, or a process of another host)."""
    if tags.get(HOST_TAG) != HOST or not (tags.get(PID_TAG) or "").isdigit():
        return "unknown"
    pid = int(tags[PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "dead"
    except PermissionError:
        pass
    fields = _stat(pid)
    if fields and fields[0] == "Z":
        return "dead"  # killed, not yet reaped by its parent
    recorded = tags.get(PID_START_TAG)
    if recorded is not None and fields and len(fields) > 19 and fields[19] != recorded:
        return "dead"  # the pid was reused by another process
    return "alive"
