"""Paid answers the ledger could not commit (a full disk, a broken file) are never lost.

They are written as JSON Lines to the first place that takes them: beside the ledger, else a
folder on another filesystem (the temporary directory, ``/dev/shm``). Every place is keyed by the
ledger's path, so the next ``Ledger`` opened on that path finds the spilled answers and commits
them before anything else (``Ledger.__init__``); a file is removed only once its answers are in.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

SPILL_FOLDER = "distillset-unsaved"


def _key(ledger_path: Path) -> str:
    return hashlib.sha256(str(Path(ledger_path).resolve()).encode("utf-8")).hexdigest()[:16]


def spill_places(ledger_path: Path) -> list[tuple[Path, str]]:
    """(folder, file-name prefix) where answers of ``ledger_path`` may be spilled, in order of preference."""
    ledger_path = Path(ledger_path)
    places = [(ledger_path.parent, f"{ledger_path.name}.unsaved-")]
    for root in (Path(tempfile.gettempdir()), Path("/dev/shm")):
        places.append((root / SPILL_FOLDER, f"{_key(ledger_path)}-"))
    return places


def spill(ledger_path: Path, rows: list[dict]) -> Path:
    """Write ``rows`` (answers as column -> value) to the first place that takes all of them, durably.

    Raises:
        OSError: no place could take them (the message names every place tried).
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    payload = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    problems = []
    for folder, prefix in spill_places(ledger_path):
        target = folder / f"{prefix}{stamp}-{os.getpid()}.jsonl"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            return target
        except OSError as exc:
            problems.append(f"{folder}: {exc.strerror or exc}")
            target.unlink(missing_ok=True)
    raise OSError(errno.ENOSPC, f"could not save {len(rows)} paid answers anywhere ({'; '.join(problems)})")


def spilled_files(ledger_path: Path) -> Iterator[Path]:
    """Every spill file of ``ledger_path``, oldest first."""
    found = []
    for folder, prefix in spill_places(ledger_path):
        if folder.is_dir():
            found += sorted(folder.glob(f"{prefix}*.jsonl"))
    yield from found


def read_spilled(path: Path) -> list[dict]:
    """The rows of a spill file (a line cut by a crash mid-write is ignored)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
