"""Code sandbox (distillset.verify.sandbox): untrusted Python in a separate, isolated process.

Protects, with real subprocesses: a program runs in its own empty work directory that is removed
afterwards, with stdin at EOF and a minimal environment; an infinite loop is killed at the wall
limit; a fork bomb is contained and leaves no process behind (counted before and after); a 10 GB
allocation hits the memory limit; writes stop at the file-size and tmpfs limits; the program
cannot connect to a real TCP server on 127.0.0.1 nor resolve names, through each barrier on its
own (kernel network namespace, in-process audit hook) and both together; as root it runs under a
uid of its own and cannot see root's home; a non-root caller gets the same network, file and
process containment through user namespaces.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from distillset.verify import sandbox
from distillset.verify.sandbox import SandboxLimits, run_python

FAST = SandboxLimits(timeout_s=5)
ROOT = os.geteuid() == 0


def _live_processes() -> set[int]:
    live = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state not in ("Z", "X"):
                live.add(int(entry))
    return live


def _processes_of(uid: int) -> list[int]:
    found = []
    for pid in _live_processes():
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                found.append(pid)
        except OSError:
            pass
    return found


class _Server:
    """A real TCP server on 127.0.0.1 that records every connection it accepts."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self.socket.settimeout(0.2)
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop:
            try:
                connection, _ = self.socket.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            connection.close()

    def close(self):
        self._stop = True
        self._thread.join()
        self.socket.close()


@pytest.fixture
def server():
    running = _Server()
    # The control: the server does accept connections from outside the sandbox.
    socket.create_connection(("127.0.0.1", running.port), timeout=2).close()
    deadline = time.monotonic() + 2
    while running.accepted == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert running.accepted == 1
    running.accepted = 0
    yield running
    running.close()


def _connect_program(port: int) -> str:
    return (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "s.settimeout(2)\n"
        f"s.connect(('127.0.0.1', {port}))\n"
        "print('CONNECTED')\n"
    )


def test_runs_in_an_empty_work_directory_that_is_removed():
    program = (
        "import os, sys, json\n"
        "print(json.dumps({'cwd': os.getcwd(), 'files': sorted(os.listdir('.')), 'env': sorted(os.environ),"
        " 'stdin': sys.stdin.read(), 'uid': os.getuid()}))\n"
    )
    result = run_python(program, FAST)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["files"] == ["main.py"]
    assert seen["stdin"] == ""
    assert not any(name.startswith(("DISTILLSET_", "TEACHER_", "AWS_", "PYTHON")) for name in seen["env"])
    assert not os.path.exists(seen["cwd"])
    if ROOT:
        assert seen["uid"] >= sandbox.UID_RANGE[0] and "uid" in result.isolation


def test_a_failing_program_reports_its_traceback():
    result = run_python("def f():\n    raise ValueError('boom')\nf()\n", FAST)
    assert result.returncode == 1 and not result.timed_out
    assert result.stderr.rstrip().endswith("ValueError: boom")


def test_an_infinite_loop_is_killed_at_the_wall_limit():
    started = time.monotonic()
    result = run_python("while True:\n    pass\n", SandboxLimits(timeout_s=1.0))
    elapsed = time.monotonic() - started
    assert result.timed_out or result.cpu_limited
    assert result.returncode != 0
    assert elapsed < 4.0


def test_a_fork_bomb_is_contained_and_leaves_nothing_behind():
    uid = 1_987_654
    before = _live_processes()
    result = run_python(
        "import os\nwhile True:\n    os.fork()\n", SandboxLimits(timeout_s=3, max_processes=16, user=uid)
    )
    assert result.returncode != 0
    # Every process of the bomb is gone once run_python returns, not eventually.
    if ROOT:
        assert _processes_of(uid) == []
    deadline = time.monotonic() + 5
    while len(_live_processes() - before) > 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(_live_processes() - before) <= 2
    # The machine is still healthy: this process can fork and a new sandbox runs normally.
    assert run_python("print(6 * 7)", FAST).stdout.strip() == "42"


def test_a_process_that_escapes_with_setsid_is_still_killed():
    uid = 1_987_655
    program = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\nprint('parent done')\n"
    before = _live_processes()
    result = run_python(program, SandboxLimits(timeout_s=5, user=uid))
    assert result.stdout.strip() == "parent done"
    if ROOT:
        assert _processes_of(uid) == []
    else:
        time.sleep(0.2)
        assert not any("time.sleep(60)" in _cmdline(pid) for pid in _live_processes() - before)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_allocating_10_gb_hits_the_memory_limit():
    result = run_python("x = bytearray(10 * 1024 ** 3)\nprint('allocated')\n", FAST)
    assert result.returncode != 0
    assert "allocated" not in result.stdout
    assert result.stderr.rstrip().endswith("MemoryError")


def test_writes_stop_at_the_file_size_limit():
    limits = SandboxLimits(timeout_s=5, file_bytes=4 << 20, disk_bytes=8 << 20)
    result = run_python("open('big', 'wb').write(b'x' * (6 << 20))\n", limits)
    assert result.returncode != 0 and "File too large" in result.stderr
    # Many files under the per-file limit: the private tmpfs fills up where mounts are allowed.
    many = "for i in range(4):\n    open(f'part{i}', 'wb').write(b'x' * (3 << 20))\nprint('wrote all')\n"
    result = run_python(many, limits)
    if "tmpfs" in result.isolation:
        assert result.returncode != 0 and "No space left on device" in result.stderr
    else:
        assert result.stdout.strip() == "wrote all"


def test_cannot_reach_a_local_server_or_resolve_names(server):
    result = run_python(_connect_program(server.port), FAST)
    assert "CONNECTED" not in result.stdout and result.returncode != 0
    for name in ("localhost", "example.com"):
        resolved = run_python(f"import socket\nprint(socket.getaddrinfo({name!r}, 80))\n", FAST)
        assert resolved.returncode != 0, resolved.stdout
    assert server.accepted == 0


def test_the_network_namespace_alone_blocks_the_local_server(server):
    result = run_python(_connect_program(server.port), SandboxLimits(timeout_s=5, audit_hook=False))
    if "netns" not in result.isolation:
        pytest.skip("this machine refuses network namespaces")
    assert "audit" not in result.isolation
    assert "CONNECTED" not in result.stdout
    assert "Network is unreachable" in result.stderr or "Connection refused" in result.stderr
    assert server.accepted == 0


def test_the_audit_hook_alone_blocks_the_local_server(server):
    result = run_python(_connect_program(server.port), SandboxLimits(timeout_s=5, namespaces=False))
    assert "netns" not in result.isolation and "audit" in result.isolation
    assert "CONNECTED" not in result.stdout
    assert "network sockets are not allowed" in result.stderr
    escape = run_python("import os\nos.system('true')\n", SandboxLimits(timeout_s=5, namespaces=False))
    assert "os.system is not allowed" in escape.stderr
    assert server.accepted == 0


@pytest.mark.skipif(not ROOT, reason="root's own view: a non-root caller never had access to /root")
def test_as_root_the_program_sees_nothing_of_roots_home_but_the_interpreter():
    result = run_python("import os\nprint(sorted(os.listdir('/root')))\n", FAST)
    inside = [Path(p).resolve() for p in (sys.base_prefix, sys.prefix, *sys.path) if p]
    needed = sorted(
        {p.relative_to("/root").parts[0] for p in inside if p.is_relative_to("/root") and p != Path("/root")}
    )
    if "interpreter" in result.isolation:
        assert len(os.listdir("/root")) > len(needed)  # the control: root's home has more than that
        assert ast.literal_eval(result.stdout) == needed
    else:
        assert "Permission denied" in result.stderr


_NON_ROOT_SCRIPT = r"""
import importlib.util, json, socket, sys, os
spec = importlib.util.spec_from_file_location("sb", sys.argv[1])
sb = importlib.util.module_from_spec(spec); sys.modules["sb"] = sb; spec.loader.exec_module(sb)
server = socket.create_server(("127.0.0.1", 0)); port = server.getsockname()[1]
limits = sb.SandboxLimits(timeout_s=5, audit_hook=False, max_processes=16)
out = {"euid": os.geteuid()}
connect = "import socket\ns = socket.socket(); s.settimeout(2)\n"
r = sb.run_python(connect + f"s.connect(('127.0.0.1', {port})); print('CONNECTED')", limits)
out["net"] = [r.returncode, r.stdout, r.stderr[-200:], list(r.isolation)]
r = sb.run_python("import os\nwhile True:\n    os.fork()\n", limits)
out["bomb"] = [r.returncode, r.timed_out]
r = sb.run_python("open('big', 'wb').write(b'x' * (40 << 20))", limits)
out["big"] = [r.returncode, r.stderr[-200:]]
print(json.dumps(out))
"""


def _python_for_nobody() -> str | None:
    for candidate in (sys.executable, "/usr/bin/python3"):
        if not os.path.exists(candidate):
            continue
        try:
            probe = subprocess.run(
                [candidate, "-I", "-c", "import json, socket, importlib.util"],
                user=65534, group=65534, extra_groups=[], capture_output=True, timeout=30, check=False,
            )  # fmt: skip
        except OSError:
            continue  # e.g. pyenv under a 0700 /root: nobody cannot even start it
        if probe.returncode == 0:
            return candidate
    return None


@pytest.mark.skipif(not ROOT, reason="as non-root, every other test here already runs the non-root path")
def test_a_non_root_caller_gets_the_same_containment():
    python = _python_for_nobody()
    if python is None:
        pytest.skip("no Python interpreter that an unprivileged user may run")
    # A copy that nobody can read: the checkout itself may sit in a folder only root can enter.
    readable = Path(tempfile.mkdtemp(prefix="sandbox-nobody-"))
    for name in ("sandbox.py", "_sandbox_child.py"):
        shutil.copy(Path(sandbox.__file__).with_name(name), readable / name)
    os.chmod(readable, 0o755)
    try:
        run = subprocess.run(
            [python, "-I", "-c", _NON_ROOT_SCRIPT, str(readable / "sandbox.py")],
            user=65534, group=65534, extra_groups=[], capture_output=True, text=True, timeout=60, cwd="/", check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(readable, ignore_errors=True)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["euid"] == 65534
    returncode, stdout, stderr, isolation = seen["net"]
    if "userns" not in isolation:
        pytest.skip("this kernel refuses unprivileged user namespaces")
    assert {"netns", "pidns", "nocaps", "nonewprivs"} <= set(isolation)
    assert returncode != 0 and "CONNECTED" not in stdout and "unreachable" in stderr
    assert seen["bomb"][0] != 0
    assert seen["big"][0] != 0 and "File too large" in seen["big"][1]
