"""Building one teacher's ``training_examples`` inside the catalog, in bounded memory.

DuckDB joins the partition's ``deduplicated_generations`` with its passing ``quality_scores``, its
``judge_scores`` of the same answers and the prompts' provenance in ``prompt_pool``, ordered by
``prompt_id`` (a sort it spills to disk under the chunked write's memory limit); the rows are
streamed in chunks of ``chunk_rows`` and finished row by row (origin, run, example id, split:
``examples.finish_examples``, the code ``build_training_examples`` runs over frames) into the
chunked writer. The split's one global decision (the fallback when the hash puts no row in
validation) is made first, from the few keys with the smallest hash positions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import polars as pl

from distillset.catalog import (
    CHUNKED_WRITE_MEMORY,
    SORT_RANGE_ROWS,
    ChunkWriter,
    Location,
    connect,
    iter_chunks,
    key_ranges,
    table_exists,
)
from distillset.catalog import (
    exists as catalog_exists,
)
from distillset.curation.decontam import BenchmarkIndex
from distillset.quality.judge import combine_scores
from distillset.training.examples import PROVENANCE_COLUMNS, finish_examples
from distillset.training.split import (
    OVERLAP_COLUMNS,
    fallback_validation_key,
    split_fallback_sql,
    split_overlap_in_catalog,
)

PREVIEW_ROWS = 10
SLICE_ROWS = 10_000
RANGE_ROWS = SORT_RANGE_ROWS
"""Rows finished, or looked up in the benchmark index, at once inside a chunk: each becomes Python
objects (the example id) or n-gram arrays (the lookup) several times its size."""
# The generation columns an example is built from; served_model and origin are optional.
_GENERATION_COLUMNS = (
    "teacher_model",
    "prompt_id",
    "messages_json",
    "request_hash",
    "generated_at",
    "cluster_id",
    "simulated",
)
_OPTIONAL_GENERATION_COLUMNS = ("served_model", "origin")


@dataclass
class WrittenExamples:
    """What ``build_examples_in_catalog`` wrote: rows, rows per split, judgments used, the first rows."""

    rows: int
    splits: dict[str, int]
    judgments: int
    head: pl.DataFrame = field(repr=False)


def build_examples_in_catalog(
    writer: ChunkWriter,
    teacher_model: str,
    *,
    chunk_rows: int,
    validation_fraction: float,
    judge_weight: float = 0.5,
    judge_min_score: float | None = None,
    run_id: str | None = None,
    table: str = "training_examples",
) -> WrittenExamples:
    """Replace ``teacher_model``'s rows of ``table`` with ``build_training_examples`` of its
    catalog rows (same rows, columns, order, ``example_id`` and split), ``chunk_rows`` at a time.

    Judgments count when ``judge_scores`` has rows for the teacher, as in ``build_training_examples``.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    con = writer.con
    judgments = _count(con, "judge_scores", teacher_model)
    sql, params = _examples_sql(con, teacher_model, judged=judgments > 0, judge_min_score=judge_min_score)
    rows_total = int(con.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0])
    keys_sql = f"SELECT coalesce(text_hash, prompt_id) AS key FROM ({sql})"
    candidates = [row[0] for row in con.execute(split_fallback_sql(keys_sql), params).fetchall()]
    forced = fallback_validation_key(candidates, validation_fraction, rows=rows_total)

    schema = _examples_schema(con, sql, params)
    writer.replace_partition(table, schema, column="teacher_model", value=teacher_model)
    rows, splits, head = 0, Counter(), pl.DataFrame(schema=schema)
    for chunk in _ordered_chunks(con, sql, params, teacher_model, chunk_rows=min(chunk_rows, SLICE_ROWS)):
        if judgments:
            chunk = chunk.with_columns(
                combine_scores(pl.col("quality_score"), pl.col("judge_score"), judge_weight).alias("quality_score")
            )
        examples = finish_examples(
            chunk, validation_fraction=validation_fraction, forced_validation_key=forced, run_id=run_id
        )
        writer.append(table, examples)
        splits.update(examples["split"].to_list())
        if head.height < PREVIEW_ROWS:
            head = pl.concat([head, examples.head(PREVIEW_ROWS - head.height)], how="vertical_relaxed")
        rows += examples.height
    return WrittenExamples(rows=rows, splits=dict(splits), judgments=judgments, head=head)


def _ordered_chunks(
    con: duckdb.DuckDBPyConnection, sql: str, params: list, teacher_model: str, *, chunk_rows: int
) -> Iterator[pl.DataFrame]:
    """The rows of ``sql`` (ordered by ``g.prompt_id``) in chunks, sorted one prompt-id range at a
    time (``catalog.key_ranges``: one sort of the whole joined partition ran out of memory at 300k)."""
    # The query ends "... WHERE g.teacher_model = ? ORDER BY g.prompt_id": a range narrows the WHERE.
    head, order = sql.rsplit(" ORDER BY ", 1)
    ranges = key_ranges(
        con,
        "deduplicated_generations",
        "prompt_id",
        "WHERE teacher_model = ?",
        [teacher_model],
        rows=RANGE_ROWS,
        alias="g",
    )
    for condition, bounds in ranges:
        yield from iter_chunks(
            con, f"{head} AND {condition} ORDER BY {order}", [*params, *bounds], chunk_rows=chunk_rows
        )


def _examples_sql(
    con: duckdb.DuckDBPyConnection, teacher_model: str, *, judged: bool, judge_min_score: float | None
) -> tuple[str, list]:
    """The joined rows, ordered by ``prompt_id``: the generation columns, ``quality_score`` (the
    heuristic score), ``judge_score`` (NULL without a judgment of the same answer) and provenance."""
    present = set(_columns(con, "deduplicated_generations"))
    generation = [f'g."{c}"' for c in _GENERATION_COLUMNS]
    generation += [f'g."{c}"' if c in present else f'NULL::VARCHAR AS "{c}"' for c in _OPTIONAL_GENERATION_COLUMNS]
    pool = set(_columns(con, "prompt_pool"))
    provenance = [f'pp."{c}"' if c in pool else f'NULL::VARCHAR AS "{c}"' for c in PROVENANCE_COLUMNS]
    passing = "SELECT prompt_id, score FROM quality_scores WHERE teacher_model = ? AND passed"
    params: list = [teacher_model]
    if judged:
        # A judgment counts only for the answer it judged (same request hash), as in build_training_examples.
        judgment = (
            "SELECT j.prompt_id, j.judge_score FROM judge_scores AS j JOIN deduplicated_generations AS jg "
            "ON jg.prompt_id = j.prompt_id AND jg.request_hash = j.answer_request_hash "
            "WHERE j.teacher_model = ? AND jg.teacher_model = ?"
        )
        params += [teacher_model, teacher_model]
        condition = ""
        if judge_min_score is not None:
            condition = "WHERE c.judge_score IS NULL OR c.judge_score >= ?"
            params.append(judge_min_score)
        scored = (
            "SELECT s.prompt_id, s.score AS quality_score, c.judge_score::DOUBLE AS judge_score "
            f"FROM ({passing}) AS s LEFT JOIN ({judgment}) AS c ON c.prompt_id = s.prompt_id {condition}"
        )
    else:
        scored = f"SELECT prompt_id, score AS quality_score, NULL::DOUBLE AS judge_score FROM ({passing})"
    sql = (
        f"SELECT {', '.join(generation)}, s.quality_score, s.judge_score, {', '.join(provenance)} "
        f"FROM deduplicated_generations AS g JOIN ({scored}) AS s ON s.prompt_id = g.prompt_id "
        "LEFT JOIN prompt_pool AS pp ON pp.prompt_id = g.prompt_id "
        "WHERE g.teacher_model = ? ORDER BY g.prompt_id"
    )
    return sql, [*params, teacher_model]


def _examples_schema(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> dict[str, pl.DataType]:
    # The columns' types, from finishing no row of the query: one definition of the table's schema.
    empty = con.execute(f"SELECT * FROM ({sql}) LIMIT 0", params).pl()
    return dict(finish_examples(empty, validation_fraction=0.0, forced_validation_key=None, run_id=None).schema)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [row[0] for row in con.execute(f'DESCRIBE "{table}"').fetchall()] if table_exists(con, table) else []


def _count(con: duckdb.DuckDBPyConnection, table: str, teacher_model: str) -> int:
    if not table_exists(con, table):
        return 0
    return int(con.execute(f'SELECT count(*) FROM "{table}" WHERE teacher_model = ?', [teacher_model]).fetchone()[0])


def examples_split_overlap(
    catalog_path: Location, teacher_model: str, table: str = "training_examples"
) -> dict[str, int]:
    """``split.split_overlap`` of one teacher's examples in the catalog, computed by DuckDB under the
    chunked write's memory limit (zero overlaps when the table does not exist)."""
    if not catalog_exists(catalog_path):
        return dict.fromkeys(OVERLAP_COLUMNS, 0)
    with connect(catalog_path, read_only=True) as con:
        if not table_exists(con, table):
            return dict.fromkeys(OVERLAP_COLUMNS, 0)
        con.execute(f"SET memory_limit = '{CHUNKED_WRITE_MEMORY}'")
        return split_overlap_in_catalog(con, table, teacher_model)


def contaminated_examples(
    catalog_path: Location,
    teacher_model: str,
    index: BenchmarkIndex,
    *,
    chunk_rows: int,
    table: str = "training_examples",
) -> pl.DataFrame:
    """``index.find`` over one teacher's examples (id, conversation), ``chunk_rows`` at a time: the
    contaminated examples, in table order (``find`` judges each text alone, so chunks change nothing)."""
    hits: list[pl.DataFrame] = []
    if catalog_exists(catalog_path):
        with connect(catalog_path, read_only=True) as con:
            if table_exists(con, table):
                sql = f'SELECT example_id, messages_json FROM "{table}" WHERE teacher_model = ?'
                for chunk in iter_chunks(con, sql, [teacher_model], chunk_rows=min(chunk_rows, SLICE_ROWS)):
                    found = index.find(chunk["example_id"].to_list(), chunk["messages_json"].to_list())
                    if found.height:
                        hits.append(found)
    return pl.concat(hits) if hits else index.find([], [])
