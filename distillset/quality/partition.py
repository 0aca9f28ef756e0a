"""Scoring one teacher's partition of the catalog in bounded memory.

The rows to score (``deduplicated_generations`` with each prompt's text and reference from
``prompt_pool``) are streamed in chunks of ``chunk_rows``; each chunk is scored by
:func:`distillset.quality.score.score_frame` (every rule is row-local, so a chunk's scores are the
whole table's) and appended to ``quality_scores`` through the chunked writer. Memory holds one
chunk and its signal tables, whatever the partition's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from distillset.catalog import ChunkWriter, iter_chunks
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
    writer: ChunkWriter,
    teacher_model: str,
    *,
    chunk_rows: int,
    thresholds: QualityThresholds | None = None,
    extra_patterns: Path | None = None,
    generations: str = "deduplicated_generations",
    prompts: str = "prompt_pool",
    table: str = "quality_scores",
) -> ScoredPartition:
    """Replace ``teacher_model``'s rows of ``table`` with the scores of its ``generations`` rows.

    The rows are those ``score_frame`` returns for the whole partition (``teacher_model`` first,
    then ``prompt_id`` and the signals), in the order of ``generations``; ``writer`` is the
    chunked write (``catalog.write_chunks``) that commits them.

    Raises:
        ValueError: a ``prompt_id`` of the partition is null or not unique (as ``score_frame``).
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    con = writer.con
    _check_keys(con, generations, teacher_model)
    schema = _scores_schema(thresholds, extra_patterns)
    writer.replace_partition(table, schema, column="teacher_model", value=teacher_model)
    # The chunks stream from `con`; each chunk's prompts are looked up on a second connection, since a
    # query on `con` would end the stream.
    lookup = con.cursor()
    rows, head = 0, pl.DataFrame(schema=schema)
    try:
        sql = f'SELECT prompt_id, response, finish_reason FROM "{generations}" WHERE teacher_model = ?'
        for chunk in iter_chunks(con, sql, [teacher_model], chunk_rows=min(chunk_rows, SCORE_ROWS)):
            scores = score_frame(
                _with_prompts(lookup, chunk, prompts),
                thresholds=thresholds,
                key_column="prompt_id",
                extra_patterns=extra_patterns,
            )
            scores = scores.select(pl.lit(teacher_model, dtype=pl.Utf8).alias("teacher_model"), pl.all())
            writer.append(table, scores)
            if head.height < PREVIEW_ROWS:
                head = pl.concat([head, scores.head(PREVIEW_ROWS - head.height)], how="vertical_relaxed")
            rows += scores.height
    finally:
        lookup.close()
    return ScoredPartition(rows=rows, head=head)


def _check_keys(con, generations: str, teacher_model: str) -> None:
    nulls, duplicates = con.execute(
        f"SELECT count(*) FILTER (WHERE prompt_id IS NULL), count(prompt_id) - count(DISTINCT prompt_id) "
        f'FROM "{generations}" WHERE teacher_model = ?',
        [teacher_model],
    ).fetchone()
    if nulls:
        raise ValueError(f"cannot score: {nulls} row(s) have a null 'prompt_id'")
    if duplicates:
        raise ValueError(f"cannot score: 'prompt_id' is not unique ({duplicates} duplicate(s))")


def _with_prompts(con, chunk: pl.DataFrame, prompts: str) -> pl.DataFrame:
    """The chunk's rows, in order, with their prompt's text and reference (NULL when not in the pool)."""
    con.register("_chunk", chunk.with_row_index("_pos").to_arrow())
    try:
        return con.execute(
            f"SELECT c.prompt_id, c.response, c.finish_reason, p.prompt_text, p.reference "
            f'FROM _chunk AS c LEFT JOIN "{prompts}" AS p ON p.prompt_id = c.prompt_id ORDER BY c._pos'
        ).pl()
    finally:
        con.unregister("_chunk")


def _scores_schema(thresholds: QualityThresholds | None, extra_patterns: Path | None) -> dict[str, pl.DataType]:
    # The rules' columns and types, from scoring no row: one definition of the table's schema.
    empty = score_frame(
        pl.DataFrame(schema=_INPUT_SCHEMA), thresholds=thresholds, key_column="prompt_id", extra_patterns=extra_patterns
    )
    return {"teacher_model": pl.Utf8, **empty.schema}
