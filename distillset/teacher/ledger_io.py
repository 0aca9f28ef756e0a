"""A ledger as JSON Lines: the migration path between ledgers (``distillset ledger export|import``).

One line per record: ``{"table": "answers", ...columns}``, ``"failures"``, ``"batches"`` or
``"batch_lines"``, with the columns of ``docs/engine.md`` ("The teacher ledger"); answer and failure
times are ISO 8601 in UTC. The provider batches of batch mode travel too: a ledger migrated while
batches are open at the provider still knows them, so the next run ingests them instead of paying
for their lines again. Online leases are not exported: they belong to the workers running now, not
to the ledger's history (a batch's leases are, and are re-taken by the batch's lines on import).
Importing is idempotent (``Ledger.merge``, ``ON CONFLICT DO NOTHING``): a record already in the
target under its key is kept.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

from distillset.jsonl import iter_json_objects
from distillset.teacher.ledger import Ledger, LedgerAnswer, LedgerFailure, LedgerSession
from distillset.teacher.ledger_tables import BATCH_LINES, BATCHES, Table

_IMPORT_BATCH = 5000
_KINDS = {"answers": LedgerAnswer, "failures": LedgerFailure}
_ROW_OF = {
    "answers": "an answer row",
    "failures": "a failure row",
    "batches": "a batch row",
    "batch_lines": "a batch line row",
}
_PLAIN_TABLES: dict[str, Table] = {"batches": BATCHES, "batch_lines": BATCH_LINES}


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
    for name, table in _PLAIN_TABLES.items():
        columns = table.column_names
        order = ledger.insertion_order if name == "batch_lines" else "created_at"
        counts[name] = 0
        for row in ledger.query(f"SELECT {', '.join(columns)} FROM {name} ORDER BY {order}"):
            out.write(json.dumps({"table": name, **dict(zip(columns, row, strict=True))}, ensure_ascii=False) + "\n")
            counts[name] += 1
    return counts


def _plain_record(path: Path, line_number: int, row: dict, table: Table) -> tuple:
    missing = sorted(c.name for c in table.columns if c.not_null and row.get(c.name) is None)
    if missing:
        raise ValueError(f"{path}:{line_number}: {_ROW_OF[table.name]} lacks {', '.join(missing)}")
    return tuple(row.get(name) for name in table.column_names)


def _record(path: Path, line_number: int, row: dict):
    table = row.get("table")
    if table in _PLAIN_TABLES:
        return table, _plain_record(path, line_number, row, _PLAIN_TABLES[table])
    kind = _KINDS.get(table)
    if kind is None:
        raise ValueError(
            f"{path}:{line_number}: 'table' must be one of answers, failures, batches, batch_lines; got {table!r}"
        )
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
    counts = {
        "answers": len(answers),
        "failures": len(failures),
        "answers_added": added_answers,
        "failures_added": added_failures,
    }
    for name in _PLAIN_TABLES:
        rows = [r for table, r in records if table == name]
        counts[name] = len(rows)
        counts[f"{name}_added"] = ledger.transaction(
            f"import {name}", lambda session, n=name, r=rows: _insert(session, n, r)
        )
    _lease_open_batches(ledger)
    return counts


def _insert(session: LedgerSession, name: str, rows: list[tuple]) -> int:
    columns = _PLAIN_TABLES[name].column_names
    sql = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING"
    return session.executemany(sql, rows)


def _lease_open_batches(ledger: Ledger) -> None:
    """Lease the pending lines of open imported batches to their batch, as ``record_intent`` did at the source."""
    from distillset.teacher.batch.store import BatchStore  # the batch package imports this module's ledger

    BatchStore(ledger).lease_open_lines()
