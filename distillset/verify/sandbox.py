"""Running untrusted Python in a separate, isolated, resource-limited process.

``run_python(source, limits)`` writes ``source`` as ``main.py`` into a fresh empty directory and
runs ``sys.executable -I _sandbox_child.py`` there (``_sandbox_child`` sets the isolation up, then
runs the program as ``__main__``). Never inside the calling process, and never through
``preexec_fn`` (unsafe with threads): everything that needs the child is done by the child itself.

**Always, on every machine**

* a new session and process group; stdin is ``/dev/null``; the environment is only ``PATH``,
  ``LANG``/``LC_ALL``, ``HOME``/``TMPDIR`` (the work directory) and one-thread BLAS settings;
  ``-I`` ignores ``PYTHON*`` variables, the user site and the current directory;
* the work directory is the child's cwd and is removed afterwards, whatever happened;
* wall time: past ``timeout_s`` the whole process group is killed (SIGKILL);
* ``RLIMIT_CORE`` 0, ``RLIMIT_AS`` (``memory_bytes``), ``RLIMIT_CPU`` (``cpu_s``: SIGXCPU, then
  SIGKILL one second later), ``RLIMIT_FSIZE`` (``file_bytes``, which also caps stdout and stderr,
  written to files), ``RLIMIT_NOFILE``; only the first ``output_bytes`` of stdout and the last of
  stderr are read back;
* ``PR_SET_NO_NEW_PRIVS`` (set-uid programs gain nothing);
* an audit hook in the child (``audit_hook``, on by default) refusing network sockets (all but
  ``AF_UNIX``), name resolution, ``exec``/``spawn``/``subprocess``/``os.system``, and loading
  ``ctypes``, ``cffi`` or ``_posixsubprocess``. It is in-process: native code that calls libc
  directly is not stopped by it, which is why the kernel layers below come first where the
  machine allows them;
* after the run: the process group is killed, then every live process left of the sandbox (same
  uid when it had its own, else same session) is killed until none is found.

**As root** (CI and this project's machines), additionally:

* new network, mount and PID namespaces: no network device but a downed loopback, so no
  connection anywhere, 127.0.0.1 included (names resolve only from ``/etc/hosts``, and the audit
  hook refuses even that); a size-limited tmpfs (``disk_bytes``) over the work directory,
  ``/tmp``, ``/var/tmp`` and ``/dev/shm``, private to the run; a fresh ``/proc`` showing only the
  run's processes; the program runs under a PID 1 of its own that reaps orphans, and when the
  program ends or is killed the kernel kills every process it started, ``setsid`` or not;
* privileges dropped to a uid/gid of its own (``user``; by default a random uid in
  ``UID_RANGE``, not in ``/etc/passwd``) with no supplementary groups, so ``RLIMIT_NPROC``
  (``max_processes``) applies and is shared with nothing else, and the program can write only
  its tmpfs places (and world-writable places outside them, if the machine has any);
* when the interpreter lives below a directory that uid may not enter (pyenv under a 0700
  ``/root``), that directory is covered, in the run's mount namespace, by an empty tmpfs with
  only the interpreter's directories mounted back: the program can import the standard library
  and the project's packages and sees nothing else of it;
* as root where the kernel refuses namespaces (a container without ``CAP_SYS_ADMIN``): the uid
  drop, limits and audit hook still apply, and the sweep by uid still kills every process left
  (``setsid`` included); common standard modules are imported before the drop, since the uid may
  not be able to read the interpreter's files, and other imports may then fail.

**Not root**, additionally where unprivileged user namespaces are allowed (most Linux kernels):
the same three namespaces inside a new user namespace (the caller mapped to root inside, every
capability then dropped), so network, tmpfs places, ``/proc`` and PID containment hold as for
root; ``RLIMIT_NPROC`` is counted inside the new user namespace. Where user namespaces are
refused: no kernel network isolation (only the audit hook), writes limited by ``RLIMIT_FSIZE`` per
file and by the caller's own permissions, ``RLIMIT_NPROC`` set to the caller's current process
count plus ``max_processes``, and a process that calls ``setsid`` escapes the cleanup sweep.

``SandboxResult.isolation`` lists the layers a run obtained (``userns``, ``netns``, ``mountns``,
``interpreter``, ``tmpfs``, ``pidns``, ``uid``, ``nocaps``, ``nonewprivs``, ``audit``), so a caller
can refuse to trust a run without, say, ``netns``. Not guaranteed anywhere: CPU and memory
fairness between concurrent runs (no cgroups; tmpfs pages count against the machine's memory,
not ``RLIMIT_AS``), a read-only view of the rest of the file system, protection from kernel
exploits (no seccomp filter), and determinism of programs that depend on hash randomization
(``-I`` ignores ``PYTHONHASHSEED``).
"""

from __future__ import annotations

import math
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_CHILD = Path(__file__).with_name("_sandbox_child.py")
UID_RANGE = (1_500_000, 2_500_000)
"""Uids the sandbox picks from as root: far above any account, so the uid is the run's own."""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed run.

    Attributes:
        timeout_s: wall-time limit; the process group is killed past it.
        cpu_s: CPU-time limit per process (``RLIMIT_CPU``); None means ``ceil(timeout_s)``.
        memory_bytes: address-space limit per process (``RLIMIT_AS``).
        file_bytes: largest file the program may write (``RLIMIT_FSIZE``), stdout and stderr included.
        disk_bytes: size of each private tmpfs (work directory, ``/tmp``...), where mounts are allowed.
        max_processes: processes the program may run at once (``RLIMIT_NPROC``).
        open_files: file descriptors per process (``RLIMIT_NOFILE``).
        output_bytes: how much of stdout and of stderr is read back.
        namespaces: try network, mount and PID namespaces (and a user namespace when not root).
        drop_privileges: as root, run as ``user`` instead (needed for ``RLIMIT_NPROC`` to apply).
            Off, a program run by root keeps every capability inside its namespaces (it could
            mount the host's disks): for debugging only, not a sandbox.
        audit_hook: install the in-process audit hook; off leaves only the kernel layers (for
            testing those layers on their own).
        user: uid (and gid) to run as when root; None picks a random one in ``UID_RANGE``.
    """

    timeout_s: float = 10.0
    cpu_s: int | None = None
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    disk_bytes: int = 32 << 20
    max_processes: int = 32
    open_files: int = 64
    output_bytes: int = 64 << 10
    namespaces: bool = True
    drop_privileges: bool = True
    audit_hook: bool = True
    user: int | None = None

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if min(self.memory_bytes, self.file_bytes, self.disk_bytes, self.max_processes, self.open_files) < 1:
            raise ValueError("limits must be positive")


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed run did.

    Attributes:
        returncode: the exit code, negative for a signal (as ``subprocess`` reports it).
        stdout: the first ``output_bytes`` of standard output (UTF-8, undecodable bytes replaced).
        stderr: the last ``output_bytes`` of standard error (where a traceback is).
        timed_out: killed at the wall-time limit.
        duration_s: wall time of the run.
        isolation: the isolation layers the child obtained (see the module docstring).
    """

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float
    isolation: tuple[str, ...]

    @property
    def cpu_limited(self) -> bool:
        """Killed by the CPU-time limit (SIGXCPU, or SIGKILL at the hard limit)."""
        return self.returncode in (-signal.SIGXCPU, -signal.SIGKILL) and not self.timed_out


def _environment(work: str) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": work,
        "TMPDIR": work,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _read_head(handle, limit: int) -> str:
    handle.seek(0)
    return handle.read(limit).decode("utf-8", errors="replace")


def _read_tail(handle, limit: int) -> str:
    # A traceback is at the end of stderr, after whatever the program printed there.
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - limit))
    return handle.read(limit).decode("utf-8", errors="replace")


def _stat_fields(pid: str) -> list[str]:
    """``/proc/<pid>/stat`` after the command name (which may hold spaces): state, ppid, pgrp, session..."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat.rsplit(")", 1)[-1].split()


def _leftovers(uid: int | None, session: int) -> list[int]:
    """Live processes of a run: its uid when it had its own, else its session. Zombies are dead
    already (their parent or init reaps them), so they do not count."""
    found = []
    # A session's processes run as this process's uid (or, in a user namespace, are mapped to it).
    owner = uid if uid is not None else os.getuid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != owner:
                continue
        except OSError:
            continue
        fields = _stat_fields(entry)
        if len(fields) < 4 or fields[0] in ("Z", "X"):
            continue
        if uid is not None or int(fields[3]) == session:
            found.append(int(entry))
    return found


def _kill_all(pgid: int, uid: int | None) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    # A process that forks while being killed can leave a new one behind: sweep until none is left.
    for _ in range(100):
        pids = _leftovers(uid, pgid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)


DEFAULT_LIMITS = SandboxLimits()


def _wait(process: subprocess.Popen, timeout_s: float) -> bool:
    """Wait for ``process`` to exit, at most ``timeout_s``; True if it did.

    ``Popen.wait(timeout)`` polls with sleeps of up to 50 ms, a third of a typical run; a pidfd
    wakes up the moment the process exits.
    """
    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(1, int(timeout_s * 1000))))
    finally:
        os.close(pidfd)


def run_python(source: str, limits: SandboxLimits = DEFAULT_LIMITS) -> SandboxResult:
    """Run ``source`` as a Python program in the sandbox and wait for it.

    Args:
        source: the whole program (it runs as ``__main__`` from ``main.py``).
        limits: time, memory, file, process and output limits, and which isolation to try.

    Returns:
        The exit code, the head of stdout and stderr, whether the wall-time limit killed it, and
        the isolation layers obtained. A program that fails is a result, not an exception.

    Raises:
        OSError: the child process could not be started at all.
    """
    root = os.geteuid() == 0
    dropping = root and limits.drop_privileges
    uid = (limits.user if limits.user is not None else random.randrange(*UID_RANGE)) if dropping else os.getuid()
    work = tempfile.mkdtemp(prefix="distillset-sandbox-")
    report_read, report_write = os.pipe()
    started = time.monotonic()
    try:
        Path(work, "main.py").write_text(source, encoding="utf-8")
        config = {
            "work": work,
            "namespaces": int(limits.namespaces),
            "drop_privileges": int(limits.drop_privileges),
            "audit_hook": int(limits.audit_hook),
            "uid": uid,
            "gid": uid if dropping else os.getgid(),
            "memory_bytes": limits.memory_bytes,
            "cpu_s": limits.cpu_s if limits.cpu_s is not None else max(1, math.ceil(limits.timeout_s)),
            "file_bytes": limits.file_bytes,
            "disk_bytes": limits.disk_bytes,
            "max_processes": limits.max_processes,
            "open_files": limits.open_files,
            "report_fd": report_write,
        }
        with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(
                [sys.executable, "-I", str(_CHILD), *(f"{key}={value}" for key, value in config.items())],
                cwd=work,
                env=_environment(work),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                close_fds=True,
                pass_fds=(report_write,),
                start_new_session=True,
            )
            os.close(report_write)
            report_write = -1
            try:
                timed_out = not _wait(process, limits.timeout_s)
                if timed_out:
                    os.killpg(process.pid, signal.SIGKILL)
                returncode = process.wait()
            finally:
                _kill_all(process.pid, uid if dropping else None)
            duration = time.monotonic() - started
            os.set_blocking(report_read, False)
            try:
                layers = [layer for layer in os.read(report_read, 4096).decode().split(",") if layer]
            except (BlockingIOError, UnicodeDecodeError):
                layers = []
            return SandboxResult(
                returncode=returncode,
                stdout=_read_head(stdout, limits.output_bytes),
                stderr=_read_tail(stderr, limits.output_bytes),
                timed_out=timed_out,
                duration_s=duration,
                isolation=tuple(layers),
            )
    finally:
        if report_write >= 0:
            os.close(report_write)
        os.close(report_read)
        shutil.rmtree(work, onerror=_force_remove)


def _force_remove(function, path, _exc_info) -> None:
    """rmtree's error handler: a program may leave read-only directories behind."""
    try:
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
            shutil.rmtree(path, onerror=_force_remove)
        else:
            os.unlink(path)
    except OSError:
        pass
