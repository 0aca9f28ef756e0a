"""Prompt shards: the pool split into ``DISTILLSET_SHARDS`` stable slices, one teacher run each.

A prompt's shard is the first 32 bits of the MD5 of its ``prompt_id`` (hex digits 1-8, read as an
unsigned integer) modulo the shard count. MD5 rather than DuckDB's ``hash()``: ``hash()`` is not
promised to stay the same across DuckDB releases, and a shard must name the same prompts on every
worker and after an upgrade. The prompt id is content-derived (``distillset.ids``), so a prompt
keeps its shard for as long as the shard count stays the same.

Every (teacher, shard) run replaces its slice of the teacher tables and records it in
``teacher_shards`` (teacher, shard count, shard, rows, run). A run with another shard count first
forgets the records of the old count (its slices are being overwritten), so the records always
describe one sharding; the later stages read a teacher only when every shard of the current count
is recorded (``missing_shards``), never a mix of two shardings' slices.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import duckdb
import polars as pl

from distillset.catalog import table_exists

SHARDS_TABLE = "teacher_shards"
SHARDS_SCHEMA = {
    "teacher_model": pl.String,
    "shards": pl.Int64,
    "shard": pl.Int64,
    "rows": pl.Int64,
    "run_id": pl.String,
    "written_at": pl.Datetime("us", "UTC"),
}


def shard_sql(shards: int, column: str = "prompt_id") -> str:
    """The DuckDB expression of a row's shard (0 .. shards-1) from its ``column`` (a prompt id)."""
    return f"((('0x' || left(md5(\"{column}\"), 8))::UBIGINT) % {int(shards)})"


def shard_of(prompt_id: str, shards: int) -> int:
    """The shard of ``prompt_id``, computed in Python exactly as ``shard_sql`` does in DuckDB."""
    return int(hashlib.md5(prompt_id.encode("utf-8")).hexdigest()[:8], 16) % shards


def slice_condition(shards: int, shard: int, column: str = "prompt_id") -> str:
    """A SQL condition true for the rows of ``shard`` out of ``shards``."""
    return f"{shard_sql(shards, column)} = {int(shard)}"


def record_shard(con: duckdb.DuckDBPyConnection, model: str, shards: int, shard: int, rows: int, run_id: str) -> None:
    """Record (inside the caller's transaction) that ``model``'s ``shard`` of ``shards`` was written;
    records of another shard count are dropped, their slices being overwritten from now on."""
    _ensure_table(con)
    con.execute(
        f'DELETE FROM "{SHARDS_TABLE}" WHERE teacher_model = ? AND (shards <> ? OR shard = ?)', [model, shards, shard]
    )
    con.execute(
        f'INSERT INTO "{SHARDS_TABLE}" VALUES (?, ?, ?, ?, ?, ?)',
        [model, shards, shard, rows, run_id, datetime.now(UTC)],
    )


def forget_shards(con: duckdb.DuckDBPyConnection, model: str) -> None:
    """Forget ``model``'s shard records (inside the caller's transaction): an unsharded run has
    just replaced all of its rows."""
    if table_exists(con, SHARDS_TABLE):
        con.execute(f'DELETE FROM "{SHARDS_TABLE}" WHERE teacher_model = ?', [model])


def recorded_shards(con: duckdb.DuckDBPyConnection, model: str) -> dict[int, set[int]]:
    """Shard count -> the shards recorded for ``model`` (empty when nothing was sharded)."""
    if not table_exists(con, SHARDS_TABLE):
        return {}
    found: dict[int, set[int]] = {}
    for shards, shard in con.execute(
        f'SELECT shards, shard FROM "{SHARDS_TABLE}" WHERE teacher_model = ?', [model]
    ).fetchall():
        found.setdefault(int(shards), set()).add(int(shard))
    return found


def missing_shards(recorded: dict[int, set[int]], shards: int) -> str | None:
    """Why a teacher's rows may not be read with ``shards`` shards configured, or None.

    With ``shards`` > 1 every shard of that count must be recorded. With 1 (unsharded), a teacher
    last written in shards must have all of them (its rows are then the whole pool's).
    """
    if shards == 1:
        if not recorded:
            return None
        (shards,) = recorded  # one count at a time: record_shard keeps no other
    present = recorded.get(shards, set())
    missing = sorted(set(range(shards)) - present)
    if not missing:
        return None
    other = sorted(n for n in recorded if n != shards)
    written = f"; its rows were last written in {other[0]} shards" if other else ""
    return (
        f"teacher_generations has {len(present)} of {shards} shards (DISTILLSET_SHARDS={shards}); missing shard(s) "
        f"{', '.join(map(str, missing))}{written}: materialize them first (`distillset run`, or a backfill of "
        "teacher_generations for this teacher)"
    )


def _ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    if table_exists(con, SHARDS_TABLE):
        return
    con.register("_shards_frame", pl.DataFrame(schema=SHARDS_SCHEMA).to_arrow())
    try:
        con.execute(f'CREATE TABLE "{SHARDS_TABLE}" AS SELECT * FROM _shards_frame')
    finally:
        con.unregister("_shards_frame")
