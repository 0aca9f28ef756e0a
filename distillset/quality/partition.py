"""Scoring one teacher's partition of the catalog in bounded memory, without holding the catalog.

The rows to score (``deduplicated_generations`` with each prompt's text and reference from
``prompt_pool``) are copied out of the catalog in one short read (plain scans, so the table's order),
streamed from the copy in chunks of ``chunk_rows`` (each chunk's prompts looked up by an in-memory
DuckDB over the copied pool), and scored ``SCORE_ROWS`` at a time by
:func:`distillset.quality.score.score_frame`: every rule is row-local, so a slice's scores are the
whole table's. The scores go to Parquet parts, which the catalog takes in one short write at the
end: memory holds one chunk and its signal tables, and the catalog's write lock is not held while
scoring runs (as in the teacher stage).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

from distillset.catalog import SPOOL_COMPRESSION, Location, connect, local_dir, write_chunks
from distillset.quality.score import score_frame
from distillset.settings import QualityThresholds

PREVIEW_ROWS = 10
SCORE_ROWS = 10_000
"""Rows scored at once inside a chunk: a row's signal tables and verdict take several times its size."""
_INPUT_SCHEMA = {name: pl.Utf8 for name in ("prompt_id", "response", "finish_reason", "prompt_text", "reference")}


@dataclass
class ScoredPartition:
    """What ``score_partition`` wrote: the row count and the first rows (for a preview and the schema)."""

    rows: int
    head: pl.DataFrame


def score_partition(
    catalog_path: Location,
    teacher_model: str,
    *,
    chunk_rows: int,
    thresholds: QualityThresholds | None = None,
    extra_patterns: Path | None = None,
    spool_root: Path | None = None,
    table: str = "quality_scores",
) -> ScoredPartition:
    """Replace ``teacher_model``'s rows of ``table`` with the scores of its ``deduplicated_generations`` rows.

    The rows are those ``score_frame`` returns for the whole partition (``teacher_model`` first,
    then ``prompt_id`` and the signals), in the order of ``deduplicated_generations``, committed at
    once. ``spool_root`` is where the copies and parts are spooled (a temporary folder inside it,
    removed at the end; default: beside the catalog).

    Raises:
        ValueError: a ``prompt_id`` of the partition is null or not unique (as ``score_frame``).
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    schema = _scores_schema(thresholds, extra_patterns)
    root = spool_root or local_dir(catalog_path)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="quality-", dir=root) as folder:
        answers, prompts = Path(folder) / "answers.parquet", Path(folder) / "prompts.parquet"
        with connect(catalog_path, read_only=True) as con:
            _check_keys(con, teacher_model)
            _copy(
                con,
                "SELECT prompt_id, response, finish_reason FROM deduplicated_generations WHERE teacher_model = ?",
                answers,
                [teacher_model],
            )
            _copy(con, "SELECT prompt_id, prompt_text, reference FROM prompt_pool", prompts)
        parts: list[Path] = []
        rows, head = 0, pl.DataFrame(schema=schema)
        lookup = duckdb.connect()
        try:
            for batch in pq.ParquetFile(answers).iter_batches(batch_size=chunk_rows):
                chunk = _with_prompts(lookup, pl.from_arrow(batch), prompts)
                for start in range(0, chunk.height, SCORE_ROWS):
                    scores = score_frame(
                        chunk.slice(start, SCORE_ROWS),
                        thresholds=thresholds,
                        key_column="prompt_id",
                        extra_patterns=extra_patterns,
                    )
                    scores = scores.select(pl.lit(teacher_model, dtype=pl.Utf8).alias("teacher_model"), pl.all())
                    parts.append(Path(folder) / f"scores-{len(parts):06d}.parquet")
                    scores.write_parquet(parts[-1], compression=SPOOL_COMPRESSION)
                    if head.height < PREVIEW_ROWS:
                        head = pl.concat([head, scores.head(PREVIEW_ROWS - head.height)], how="vertical_relaxed")
                    rows += scores.height
        finally:
            lookup.close()
        with write_chunks(catalog_path) as writer:
            writer.replace_partition(table, schema, column="teacher_model", value=teacher_model)
            writer.append_parquet(table, parts)
    return ScoredPartition(rows=rows, head=head)


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def _copy(con: duckdb.DuckDBPyConnection, sql: str, path: Path, params: list | None = None) -> None:
    con.execute(f"COPY ({sql}) TO '{_quoted(path)}' (FORMAT parquet)", params or [])


def _check_keys(con: duckdb.DuckDBPyConnection, teacher_model: str) -> None:
    nulls, duplicates = con.execute(
        "SELECT count(*) FILTER (WHERE prompt_id IS NULL), count(prompt_id) - count(DISTINCT prompt_id) "
        "FROM deduplicated_generations WHERE teacher_model = ?",
        [teacher_model],
    ).fetchone()
    if nulls:
        raise ValueError(f"cannot score: {nulls} row(s) have a null 'prompt_id'")
    if duplicates:
        raise ValueError(f"cannot score: 'prompt_id' is not unique ({duplicates} duplicate(s))")


def _with_prompts(con: duckdb.DuckDBPyConnection, chunk: pl.DataFrame, prompts: Path) -> pl.DataFrame:
    """The chunk's rows, in order, with their prompt's text and reference (NULL when not in the pool)."""
    # A semi join (IN) hashes the chunk's ids, never the pool: memory follows the chunk, not the pool.
    con.register("_chunk", chunk.select("prompt_id").to_arrow())
    try:
        found = con.execute(
            f"SELECT prompt_id, prompt_text, reference FROM read_parquet('{_quoted(prompts)}') "
            "WHERE prompt_id IN (SELECT prompt_id FROM _chunk)"
        ).pl()
    finally:
        con.unregister("_chunk")
    return chunk.join(found, on="prompt_id", how="left", maintain_order="left")


def _scores_schema(thresholds: QualityThresholds | None, extra_patterns: Path | None) -> dict[str, pl.DataType]:
    # The rules' columns and types, from scoring no row: one definition of the table's schema.
    empty = score_frame(
        pl.DataFrame(schema=_INPUT_SCHEMA), thresholds=thresholds, key_column="prompt_id", extra_patterns=extra_patterns
    )
    return {"teacher_model": pl.Utf8, **empty.schema}
