"""Who is publishing which version number: scanning a set's folder, claims, and stale leftovers.

A publisher claims a number with an exclusive create (local: ``.claims/v<NNNN>`` opened with
``O_EXCL``; S3: ``v<NNNN>/.claim`` put with ``If-None-Match: *``). A claim records its owner's
token, host, pid and time. One left by a dead publisher is stale when it is older than
``stale_after_s`` (``DISTILLSET_PUBLISH_STALE_AFTER_S``, default 6 hours) or, on a local folder,
owned by a process of this host that no longer exists; the next publisher removes it, never a
visible version. There is no heartbeat: a publisher slower than the stale delay would lose its
claim, so the delay is kept far above the longest upload.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import dataclass, field

import fsspec

from distillset import storage
from distillset.publish.layout import CLAIM, CLAIMS_DIR, MANIFEST, STAGING_PREFIX, version_name, version_number

HOST = socket.gethostname()
DEFAULT_STALE_AFTER_S = 6 * 3600.0


def read_json(fs: fsspec.AbstractFileSystem, path: str) -> dict | None:
    """A JSON file's object; None when it does not exist, ``{}`` when it is unreadable."""
    try:
        with fs.open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError):
        return {}


def _entries(fs: fsspec.AbstractFileSystem, folder: str) -> list[str]:
    try:
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False)]
    except FileNotFoundError:
        return []


@dataclass
class SetFolder:
    """What a training set's folder holds right now."""

    visible: dict[int, dict] = field(default_factory=dict)
    """version number -> manifest"""
    unfinished: dict[int, dict | None] = field(default_factory=dict)
    """version number -> claim (None when the claim is unreadable or gone)"""
    staging: list[str] = field(default_factory=list)
    """local staging folder names"""


def scan(fs: fsspec.AbstractFileSystem, set_dir: str) -> SetFolder:
    """Visible versions, unfinished (claimed) numbers and staging folders, from a fresh listing."""
    storage.refresh(fs)
    found = SetFolder()
    for entry in _entries(fs, set_dir):
        number = version_number(entry)
        if number is not None:
            manifest = read_json(fs, storage.join(set_dir, entry, MANIFEST))
            if manifest is not None:
                found.visible[number] = manifest
            else:
                found.unfinished[number] = read_json(fs, storage.join(set_dir, entry, CLAIM))
        elif entry.startswith(STAGING_PREFIX):
            found.staging.append(entry)
    if storage.is_local(fs):
        for entry in _entries(fs, storage.join(set_dir, CLAIMS_DIR)):
            number = version_number(entry)
            if number is not None and number not in found.visible:
                found.unfinished[number] = read_json(fs, storage.join(set_dir, CLAIMS_DIR, entry))
    return found


def claim_bytes(token: str, now: dt.datetime) -> bytes:
    return json.dumps({"owner": token, "host": HOST, "pid": os.getpid(), "claimed_at": now.isoformat()}).encode()


def claim_path(fs: fsspec.AbstractFileSystem, set_dir: str, number: int) -> str:
    """Where the claim of ``number`` lives (local: beside the versions; S3: inside the version folder)."""
    name = version_name(number)
    return storage.join(set_dir, CLAIMS_DIR, name) if storage.is_local(fs) else storage.join(set_dir, name, CLAIM)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(claim: dict | None, modified: dt.datetime | None, now: dt.datetime, stale_after_s: float) -> bool:
    """Whether a claim's owner is gone: a dead local process, or older than ``stale_after_s``."""
    if claim and claim.get("host") == HOST and isinstance(claim.get("pid"), int) and not _pid_alive(claim["pid"]):
        return True
    started = None
    if claim and claim.get("claimed_at"):
        try:
            started = dt.datetime.fromisoformat(claim["claimed_at"])
        except ValueError:
            started = None
    started = started or modified
    # Without any timestamp we cannot tell a slow publisher from a dead one: leave it alone.
    return started is not None and (now - started).total_seconds() >= stale_after_s


def _modified(fs: fsspec.AbstractFileSystem, path: str) -> dt.datetime | None:
    try:
        stamp = fs.modified(path)
    except (FileNotFoundError, NotImplementedError, OSError):
        return None
    # Backends disagree on naive timestamps: local ones are local time, remote ones are UTC.
    if stamp.tzinfo is None:
        stamp = stamp.astimezone() if storage.is_local(fs) else stamp.replace(tzinfo=dt.UTC)
    return stamp


def _newest_modified(fs: fsspec.AbstractFileSystem, folder: str) -> dt.datetime | None:
    try:
        files = fs.find(folder)
    except FileNotFoundError:
        return None
    stamps = [s for f in files if (s := _modified(fs, f)) is not None]
    return max(stamps) if stamps else None


def cleanup_stale(fs, set_dir: str, found: SetFolder, now: dt.datetime, stale_after_s: float) -> list[str]:
    """Remove dead publishers' leftovers; never a visible version. Returns what was removed."""
    removed = []
    local = storage.is_local(fs)
    for entry in found.staging:
        folder = storage.join(set_dir, entry)
        owner = read_json(fs, storage.join(folder, CLAIM))
        if is_stale(owner, _newest_modified(fs, folder), now, stale_after_s):
            fs.rm(folder, recursive=True)
            removed.append(entry)
    for number, claim in found.unfinished.items():
        name = version_name(number)
        folder = storage.join(set_dir, name)
        path = claim_path(fs, set_dir, number)
        modified = _newest_modified(fs, folder) if not local else _modified(fs, path)
        if not is_stale(claim, modified, now, stale_after_s):
            continue
        if fs.exists(storage.join(folder, MANIFEST)):
            continue
        if not local and fs.exists(folder):
            fs.rm(folder, recursive=True)
        if fs.exists(path):
            fs.rm(path)
        removed.append(name)
    return removed
