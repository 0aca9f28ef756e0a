"""A ledger as JSON Lines: the migration path between ledgers (``distillset ledger export|import``).

One line per record: ``{"table": "answers", ...columns}`` or ``{"table": "failures", ...columns}``,
with the columns of ``docs/engine.md`` ("The teacher ledger"); times are ISO 8601 in UTC. Leases are
not exported: they belong to the workers running now, not to the ledger's history. Importing is
idempotent (``Ledger.merge``): an answer already in the target under its key is kept.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

from distillset.jsonl import iter_json_objects
from distillset.teacher.ledger import Ledger, LedgerAnswer, LedgerFailure

_IMPORT_BATCH = 5000
_KINDS = {"answers": LedgerAnswer, "failures": LedgerFailure}
_ROW_OF = {"answers": "an answer row", "failures": "a failure row"}


def _line(table: str, record) -> str:
    values = {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in ((f.name, getattr(record, f.name)) for f in dataclasses.fields(record))
    }
    return json.dumps({"table": table, **values}, ensure_ascii=False, sort_keys=True) + "\n"


def export_ledger(ledger: Ledger, out: IO[str]) -> dict[str, int]:
    """Write every answer and failure of ``ledger`` to ``out``; returns the counts written."""
    counts = {"answers": 0, "failures": 0}
    for answer in ledger.iter_answers():
        out.write(_line("answers", answer))
        counts["answers"] += 1
    for failure in ledger.iter_failures():
        out.write(_line("failures", failure))
        counts["failures"] += 1
    return counts


def _record(path: Path, line_number: int, row: dict):
    table = row.get("table")
    kind = _KINDS.get(table)
    if kind is None:
        raise ValueError(f"{path}:{line_number}: 'table' must be 'answers' or 'failures', got {table!r}")
    names = {f.name for f in dataclasses.fields(kind)}
    required = {f.name for f in dataclasses.fields(kind) if f.default is dataclasses.MISSING}
    missing = sorted(required - row.keys())
    if missing:
        raise ValueError(f"{path}:{line_number}: {_ROW_OF[table]} lacks {', '.join(missing)}")
    values = {name: row[name] for name in names if name in row}
    stamp = "created_at" if kind is LedgerAnswer else "failed_at"
    try:
        values[stamp] = datetime.fromisoformat(values[stamp])
        if kind is LedgerAnswer:
            values["simulated"] = bool(values["simulated"])
        return table, kind(**values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}:{line_number}: {_ROW_OF[table]} is unreadable: {exc}") from None


def _records(path: Path) -> Iterator[tuple[str, object]]:
    for line_number, row in iter_json_objects(path):
        yield _record(path, line_number, row)


def import_ledger(ledger: Ledger, path: Path) -> dict[str, int]:
    """Add the records of the JSONL file ``path`` to ``ledger``; returns how many were read and new.

    The whole file is checked before anything is written, so a bad line changes nothing.

    Raises:
        ValueError: a line is not a ledger record; the message names the file and line.
    """
    records = list(_records(Path(path)))
    answers = [r for table, r in records if table == "answers"]
    failures = [r for table, r in records if table == "failures"]
    added_answers = added_failures = 0
    for start in range(0, max(len(answers), len(failures)), _IMPORT_BATCH):
        new_answers, new_failures = ledger.merge(
            answers[start : start + _IMPORT_BATCH], failures[start : start + _IMPORT_BATCH]
        )
        added_answers += new_answers
        added_failures += new_failures
    return {
        "answers": len(answers),
        "failures": len(failures),
        "answers_added": added_answers,
        "failures_added": added_failures,
    }
