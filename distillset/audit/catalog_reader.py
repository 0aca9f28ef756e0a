"""Read-only queries on the catalog for the audit commands, and small text helpers they share.

A missing catalog file or table reads as empty, so ``explain`` and ``diff`` still answer from the
published versions alone. A DuckLake catalog (``catalog_lake.Lake``) is attached read-only.
Filters run in DuckDB so explaining one id never loads whole tables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import duckdb

from distillset import ids
from distillset.catalog_lake import Lake, open_lake

EXCERPT_CHARS = 80


def first_user_turn(messages_json: str | None, limit: int = EXCERPT_CHARS) -> str:
    """The first user message of a conversation, cut to ``limit`` characters on one line."""
    try:
        messages = json.loads(messages_json or "[]")
    except ValueError:
        return "(unreadable messages)"
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict) and message.get("role") == "user":
            text = " ".join(str(message.get("content", "")).split())
            return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""


def plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class CatalogReader:
    """Read-only queries on the catalog over one connection; a missing file or table reads as empty.

    Filters run in DuckDB so explaining one id does not load whole tables into memory.
    """

    def __init__(self, path: Path | Lake | str | None):
        self.path = path if isinstance(path, Lake) else Path(path) if path else None
        self._stack = contextlib.ExitStack()
        self._con = None
        self._columns: dict[str, set[str]] = {}

    def __enter__(self) -> CatalogReader:
        if isinstance(self.path, Lake) or (self.path is not None and self.path.exists()):
            self._con = (
                open_lake(self.path, read_only=True) if isinstance(self.path, Lake) else _connect_read_only(self.path)
            )
            self._stack.callback(self._con.close)
            with contextlib.suppress(duckdb.Error):
                # Timestamps read as UTC, as they are stored (the session default is the machine's zone).
                self._con.execute("SET TimeZone = 'UTC'")
            for table, column in self._con.execute(
                # The catalog's own tables (a lake's connection also lists its empty in-memory database).
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_catalog = current_database()"
            ).fetchall():
                self._columns.setdefault(table, set()).add(column)
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.close()
        self._con = None

    def has_rows(self, name: str) -> bool:
        if self._con is None or name not in self._columns:
            return False
        return self._con.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone() is not None

    def rows(self, name: str, **equal: Any) -> list[dict]:
        if self._con is None or name not in self._columns or not set(equal) <= self._columns[name]:
            return []
        where = " AND ".join(f'"{column}" = ?' for column in equal)
        query = f'SELECT * FROM "{name}"' + (f" WHERE {where}" if where else "")
        cursor = self._con.execute(query, list(equal.values()))
        names = [d[0] for d in cursor.description]
        return [plain(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]


_LOCK_MARKERS = ("Could not set lock", "Conflicting lock", "database is locked")


def _connect_read_only(path: Path, lock_timeout_s: float = 120.0) -> duckdb.DuckDBPyConnection:
    """A read-only connection, waiting while a writer holds the file (like ``catalog.connect``, whose
    module imports polars: ``distillset explain`` answers without it)."""
    deadline = time.monotonic() + lock_timeout_s
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException as exc:
            if not any(m in str(exc) for m in _LOCK_MARKERS) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def drop_sentence(stage: str, drop: dict) -> str:
    """``prompt dropped as near_duplicate of p1 (similarity 0.91): detail`` for a drop row."""
    sentence = f"{stage} dropped as {drop.get('reason')}"
    if drop.get("duplicate_of"):
        sentence += f" of {drop['duplicate_of']}"
    if drop.get("similarity") is not None:
        sentence += f" (similarity {drop['similarity']:.2f})"
    if drop.get("detail"):
        sentence += f": {drop['detail']}"
    return sentence


def rejects_for(cat: CatalogReader, prompt_id: str) -> list[dict]:
    """The rejected source rows whose file and line would have made ``prompt_id``."""
    # Rejected rows have no prompt_id column: recompute it from the row's file hash and line.
    return [
        row
        for row in cat.rows("rejects")
        if row.get("source_sha256")
        and row.get("source_line") is not None
        and ids.prompt_id(row["source_sha256"], int(row["source_line"])) == prompt_id
    ]
