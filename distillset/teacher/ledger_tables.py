"""The ledger's tables, declared once for every backend (``ledger_sqlite``, ``ledger_postgres``).

A table is a list of columns with a neutral type (``text``, ``integer``, ``real``, or ``serial``: an
integer key the database numbers), a primary key and its indexes. Each backend renders the same
declaration in its own dialect, so both hold one schema and the backend-neutral ``Ledger`` core
writes one SQL for both.

**Adding a table**: declare it here and append it to ``TABLES``; both backends create it (``CREATE
TABLE IF NOT EXISTS``) the next time a ledger is opened, so an existing ledger gains it without a
migration. Bump ``SCHEMA_VERSION`` and add a step to each backend's ``migrate`` only when an
*existing* table changes (a new column, a new key).
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 5
SIMULATED_ORIGIN = "simulated"
REMOTE_ORIGIN = "remote"


@dataclass(frozen=True)
class Column:
    """One column: its neutral type, whether it may be NULL, and a default (an SQL literal)."""

    name: str
    type: str
    not_null: bool = False
    default: str | None = None


@dataclass(frozen=True)
class Table:
    """One table of the ledger."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    indexes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(index name, columns) pairs."""

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


def _text(name: str, not_null: bool = True, default: str | None = None) -> Column:
    return Column(name, "text", not_null, default)


ANSWERS = Table(
    "answers",
    (
        _text("request_hash"),
        _text("model"),
        _text("messages_json"),
        _text("sampling_json"),
        _text("content"),
        _text("finish_reason", False),
        Column("prompt_tokens", "integer", True),
        Column("completion_tokens", "integer", True),
        Column("latency_ms", "real", True),
        Column("attempts", "integer", True),
        _text("response_id", False),
        _text("endpoint"),
        Column("simulated", "integer", True),
        _text("created_at"),
        _text("run_id", False),
        _text("origin"),
        _text("served_model", False),
        _text("reasoning", False),
    ),
    primary_key=("request_hash", "origin"),
    indexes=(("answers_run", ("run_id",)),),
)

FAILURES = Table(
    "failures",
    (
        Column("id", "serial"),
        _text("request_hash"),
        _text("model"),
        _text("error"),
        Column("status_code", "integer"),
        Column("attempts", "integer", True),
        _text("failed_at"),
        _text("run_id", False),
        _text("origin", default=f"'{REMOTE_ORIGIN}'"),
    ),
    indexes=(("failures_hash", ("request_hash",)),),
)

LEASES = Table(
    "leases",
    (
        _text("request_hash"),
        _text("origin"),
        _text("owner"),
        Column("claimed_at", "real", True),
        Column("expires_at", "real", True),
    ),
    primary_key=("request_hash", "origin"),
    indexes=(("leases_owner", ("owner",)),),
)

# Provider batches of batch mode (``distillset.teacher.batch.store``): recorded as an intent before
# their file is uploaded, with the provider's batch id as soon as it exists (schema version 5).
BATCHES = Table(
    "batches",
    (
        _text("token"),
        _text("model"),
        _text("origin"),
        _text("endpoint"),
        _text("state"),
        _text("input_file_id", False),
        _text("batch_id", False),
        _text("provider_status", False),
        Column("lines", "integer", True),
        Column("bytes", "integer", True),
        _text("run_id", False),
        Column("created_at", "real", True),
        Column("updated_at", "real", True),
    ),
    primary_key=("token",),
    indexes=(("batches_state", ("state",)),),
)

BATCH_LINES = Table(
    "batch_lines",
    (
        _text("token"),
        _text("request_hash"),
        _text("origin"),
        _text("messages_json"),
        _text("sampling_json"),
        _text("state"),
        _text("error", False),
    ),
    primary_key=("token", "request_hash"),
    indexes=(("batch_lines_key", ("request_hash", "origin")),),
)

TABLES: tuple[Table, ...] = (ANSWERS, FAILURES, LEASES, BATCHES, BATCH_LINES)


def create_table(table: Table, types: dict[str, str], *, name: str | None = None, extra: tuple[str, ...] = ()) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for ``table`` with the backend's ``types`` (neutral -> SQL).

    ``types["serial"]`` is the whole column definition of a numbered key (it is the primary key);
    ``extra`` adds backend-only column definitions (PostgreSQL's insertion order, say).
    """
    lines = []
    for column in table.columns:
        line = f"{column.name} {types[column.type]}"
        if column.not_null:
            line += " NOT NULL"
        if column.default is not None:
            line += f" DEFAULT {column.default}"
        lines.append(line)
    lines += extra
    if table.primary_key:
        lines.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
    body = ",\n    ".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {name or table.name} (\n    {body}\n)"


def create_indexes(table: Table) -> list[str]:
    """``CREATE INDEX IF NOT EXISTS`` for every index of ``table`` (the same SQL in both backends)."""
    return [f"CREATE INDEX IF NOT EXISTS {index} ON {table.name} ({', '.join(cols)})" for index, cols in table.indexes]
