"""The sandbox's first code in the child process: isolate, limit, then run the program.

Run by ``distillset.verify.sandbox`` as ``python -I _sandbox_child.py key=value...``, never
imported. Standard library only, and nothing from distillset: it runs before any isolation
exists. It imports as little as it can (no ``json``, no ``re``: at 20-40 ms they would double
its start-up). The steps, in order:

1. read the program (``main.py`` in the work directory) into memory;
2. new namespaces: as root ``unshare(NEWNET | NEWNS | NEWPID)``; otherwise
   ``unshare(NEWUSER | NEWNET | NEWNS | NEWPID)`` with the caller mapped to root inside; each
   falls back to what the kernel allows, and what was obtained is reported to the parent;
3. with a mount namespace: mounts made private; a size-limited tmpfs over ``/tmp``,
   ``/var/tmp``, ``/dev/shm`` and then the work directory (the program written back into it);
   when the run drops to another uid and the interpreter sits in a directory that uid cannot
   enter (pyenv under a 0700 ``/root``), an empty tmpfs goes over that directory with only the
   interpreter's directories bind-mounted back (the rest of it is hidden from the program);
4. with a PID namespace: fork; this process waits and mirrors the program's exit; the child is
   PID 1 of the namespace: it mounts a fresh ``/proc``, forks the program (PID 2) and reaps
   orphans; when the program ends, PID 1 ends, and the kernel kills every process left in it;
5. resource limits (core 0, address space, CPU, file size, open files, processes);
6. as root, drop to the sandbox uid/gid with no supplementary groups (without a mount namespace,
   common standard modules are imported first, since that uid may be unable to read them); in a
   user namespace, drop every capability; then ``PR_SET_NO_NEW_PRIVS``;
7. an audit hook that refuses network sockets, name resolution, ``exec``/``spawn``/``Popen`` and
   loading ``ctypes``/``cffi``/``_posixsubprocess`` (the last barrier when namespaces are refused);
8. report the layers obtained (comma-separated) on the report pipe, close it, and run the
   program as ``__main__``.
"""

import gc
import os
import resource
import stat
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 0x1000, 0x2000, 0x4000, 0x40000
PR_SET_NO_NEW_PRIVS = 38
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_BLOCKED_EVENTS = frozenset(
    {
        "socket.bind",
        "socket.connect",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
        "socket.sethostname",
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "pty.spawn",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.call_function",
        "ctypes.addressof",
        "ctypes.cdata",
        "ctypes.cdata/buffer",
    }
)
_BLOCKED_IMPORTS = frozenset({"ctypes", "_ctypes", "cffi", "_cffi_backend", "_posixsubprocess"})
_AF_UNIX = 1
# Imported before dropping to a uid that may not be able to read the standard library.
_COMMON_MODULES = (
    "array", "bisect", "cmath", "collections", "copy", "dataclasses", "datetime", "decimal", "enum",
    "fractions", "functools", "hashlib", "heapq", "itertools", "json", "math", "numbers", "operator",
    "random", "re", "socket", "statistics", "string", "struct", "textwrap", "typing", "unicodedata",
)  # fmt: skip


def _audit(event, args):
    if event in _BLOCKED_EVENTS:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "socket.__new__" and len(args) > 1 and args[1] != _AF_UNIX:
        raise PermissionError("sandbox: network sockets are not allowed")
    if event == "import" and args and str(args[0]).split(".")[0] in _BLOCKED_IMPORTS:
        raise ImportError(f"sandbox: importing {args[0]} is not allowed")


def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


class _Libc:
    """The few system calls the standard library does not offer."""

    def __init__(self):
        import ctypes

        self._ctypes = ctypes
        self._libc = ctypes.CDLL(None, use_errno=True)

    def unshare(self, flags):
        return self._libc.unshare(self._ctypes.c_int(flags)) == 0

    def mount(self, source, target, fstype, flags, data=None):
        def arg(value):
            return value.encode() if value is not None else None

        flags = self._ctypes.c_ulong(flags)
        return self._libc.mount(arg(source), arg(target), arg(fstype), flags, arg(data)) == 0

    def no_new_privs(self):
        return self._libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0

    def drop_capabilities(self):
        ctypes = self._ctypes

        class Header(ctypes.Structure):
            _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))

        class Data(ctypes.Structure):
            _fields_ = (
                ("effective", ctypes.c_uint32),
                ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32),
            )

        header, data = Header(_LINUX_CAPABILITY_VERSION_3, 0), (Data * 2)()
        return self._libc.capset(ctypes.byref(header), ctypes.byref(data)) == 0


def _unshare(libc, root, layers):
    wanted = CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID
    base = 0 if root else CLONE_NEWUSER
    if libc.unshare(base | wanted):
        got = wanted
    else:
        got = 0
        for flag in (CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID):
            if libc.unshare(base | flag):
                got |= flag
                base = 0  # the user namespace, once made, holds the rest
    if got and not root:
        layers.append("userns")
        uid, gid = os.getuid(), os.getgid()
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"0 {uid} 1")
            _write("/proc/self/gid_map", f"0 {gid} 1")
        except OSError:
            pass
    if got & CLONE_NEWNET:
        layers.append("netns")
    return got


def _closed_ancestor(path):
    """The highest directory above or at ``path`` that others may not enter, or None."""
    current = "/"
    for part in [p for p in path.split("/") if p]:
        current = os.path.join(current, part)
        try:
            info = os.stat(current)
        except OSError:
            return None
        if stat.S_ISDIR(info.st_mode) and not info.st_mode & stat.S_IXOTH:
            return current
    return None


def _interpreter_paths():
    paths = {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)}
    paths.add(os.path.realpath(sys.base_prefix))
    paths.add(os.path.realpath(sys.prefix))
    # Only the outermost of nested paths needs mounting.
    return sorted(p for p in paths if not any(p != q and p.startswith(q + "/") for q in paths))


def _expose_interpreter(libc, stage):
    """Let a uid without access to the interpreter's home read the interpreter, and nothing else there."""
    closed = {}
    for path in _interpreter_paths():
        ancestor = _closed_ancestor(path)
        if ancestor is not None and ancestor != path:
            closed.setdefault(ancestor, []).append(path)
    for number, (ancestor, paths) in enumerate(sorted(closed.items())):
        staged = []
        for index, path in enumerate(paths):
            place = os.path.join(stage, f"{number}-{index}")
            os.makedirs(place)
            if libc.mount(path, place, None, MS_BIND | MS_REC):
                staged.append((place, path))
        if not libc.mount("tmpfs", ancestor, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755"):
            return False
        for place, path in staged:
            os.makedirs(path, exist_ok=True)
            libc.mount(place, path, None, MS_MOVE)
            os.rmdir(place)
    os.rmdir(stage)
    return True


def _mounts(config, libc, root, layers):
    if not libc.mount(None, "/", None, MS_REC | MS_PRIVATE):
        return
    layers.append("mountns")
    size = f"size={config['disk_bytes']}"
    dropping = root and config["drop_privileges"]
    owner = f"uid={config['uid']},gid={config['gid']}" if dropping else ""
    # The shared places first: the work directory usually lives under /tmp, and is made again
    # (empty) inside the fresh /tmp before its own tmpfs goes over it.
    for shared in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(shared) and not os.path.islink(shared):
            libc.mount("tmpfs", shared, "tmpfs", MS_NOSUID | MS_NODEV, f"{size},mode=1777")
    if dropping and os.path.isdir("/tmp"):
        stage = f"/tmp/.distillset-stage-{os.getpid()}"
        os.makedirs(stage, mode=0o700)
        if _expose_interpreter(libc, stage):
            layers.append("interpreter")
    work = config["work"]
    os.makedirs(work, mode=0o700, exist_ok=True)
    if libc.mount("tmpfs", work, "tmpfs", MS_NOSUID | MS_NODEV, ",".join(filter(None, [size, "mode=0700", owner]))):
        layers.append("tmpfs")


def _exit_like(status):
    """End this process the way a child with wait ``status`` ended: same code, or same signal."""
    if os.WIFSIGNALED(status):
        import signal

        number = os.WTERMSIG(status)
        if number not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    os._exit(os.waitstatus_to_exitcode(status) if not os.WIFSIGNALED(status) else 1)


def _become_init(libc, layers, report_fd):
    """In a new PID namespace: return in the program's process, PID 2 of the namespace.

    The first child is PID 1: it mounts ``/proc``, forks the program, reaps every orphan, and
    when the program ends sends its wait status to the outer process and exits, so the kernel
    kills whatever the program left. The program is not PID 1 on purpose: PID 1 ignores signals
    it has no handler for (``SIGXCPU`` at the CPU limit, a test's own ``SIGALRM``).
    """
    status_read, status_write = os.pipe()
    first = os.fork()
    if first:
        # The outer process keeps nothing the program could use; it only mirrors the exit.
        os.close(report_fd)
        os.close(status_write)
        _, own = os.waitpid(first, 0)
        relayed = os.read(status_read, 32)
        _exit_like(int(relayed) if relayed else own)
    os.close(status_read)
    layers.append("pidns")
    if "mountns" in layers:
        libc.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    program = os.fork()
    if program == 0:
        os.close(status_write)
        return
    os.close(report_fd)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if pid == program:
            os.write(status_write, str(status).encode())
            os._exit(0)


def _processes_of(uid):
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass
    return count


def _limit(config, uid, own_uid):
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (config["memory_bytes"], config["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_CPU, (config["cpu_s"], config["cpu_s"] + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (config["file_bytes"], config["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (config["open_files"], config["open_files"]))
    # RLIMIT_NPROC counts every process of the real uid (per user namespace): a uid of its own, or
    # a new user namespace, needs only the budget; a shared uid needs what it already runs on top.
    nproc = config["max_processes"] + (0 if own_uid else _processes_of(uid))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _drop_privileges(config, libc, root, layers):
    if root and config["drop_privileges"]:
        if "tmpfs" not in layers:
            os.chown(config["work"], config["uid"], config["gid"])
        if "interpreter" not in layers and _closed_ancestor(os.path.realpath(os.__file__)):
            for name in _COMMON_MODULES:
                __import__(name)
        os.setgroups([])
        os.setgid(config["gid"])
        os.setuid(config["uid"])
        layers.append("uid")
    elif "userns" in layers and libc.drop_capabilities():
        # Root inside the user namespace could otherwise mount an unlimited tmpfs of its own.
        layers.append("nocaps")
    if libc.no_new_privs():
        layers.append("nonewprivs")


def _config(arguments):
    """``key=value`` arguments; values are integers, except the work directory."""
    config = {}
    for argument in arguments:
        key, _, value = argument.partition("=")
        config[key] = value if key == "work" else int(value)
    return config


def main():
    # First, for every process here, the mirror of step 4 included: no core file anywhere.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    config = _config(sys.argv[1:])
    work = config["work"]
    with open(os.path.join(work, "main.py"), encoding="utf-8") as handle:
        source = handle.read()
    layers = []
    root = os.geteuid() == 0
    libc = _Libc()
    got = _unshare(libc, root, layers) if config["namespaces"] else 0
    if got & CLONE_NEWNS:
        _mounts(config, libc, root, layers)
    if got & CLONE_NEWPID:
        _become_init(libc, layers, config["report_fd"])
    if "tmpfs" in layers:
        _write(os.path.join(work, "main.py"), source)
    os.chdir(work)
    dropping = root and config["drop_privileges"]
    _limit(config, config["uid"] if dropping else os.getuid(), dropping or "userns" in layers)
    _drop_privileges(config, libc, root, layers)
    # No ctypes handle may outlive the setup: the audit hook refuses to load it again.
    del libc
    for name in [name for name in sys.modules if name.split(".")[0] in _BLOCKED_IMPORTS]:
        del sys.modules[name]
    gc.collect()
    if config["audit_hook"]:
        sys.addaudithook(_audit)
        layers.append("audit")
    report = config["report_fd"]
    os.write(report, ",".join(layers).encode())
    os.close(report)
    sys.argv = ["main.py"]
    code = compile(source, "main.py", "exec")
    namespace = {"__name__": "__main__", "__file__": os.path.join(work, "main.py"), "__builtins__": __builtins__}
    del source, config
    exec(code, namespace)  # noqa: S102 - running the program is what this process is for


if __name__ == "__main__":
    main()
