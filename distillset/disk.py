"""Telling a full disk from other write failures, so a user reads "no space left on device at X"."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

# Under this many free bytes a failing write is reported as a full disk.
FULL_BYTES = 1 << 20
_FULL_WORDS = ("No space left", "disk is full", "database or disk is full")


def is_disk_full(exc: BaseException, folder: Path) -> bool:
    """Whether ``exc``, raised while writing under ``folder``, comes from a full disk."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    if any(word in str(exc) for word in _FULL_WORDS):
        return True
    try:
        return shutil.disk_usage(folder).free < FULL_BYTES
    except OSError:
        return False


def describe_write_error(exc: BaseException, path: Path) -> str:
    """``no space left on device at FOLDER`` when the disk is full, else the error itself."""
    folder = Path(path).parent
    return f"no space left on device at {folder}" if is_disk_full(exc, folder) else f"{type(exc).__name__}: {exc}"
