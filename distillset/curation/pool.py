"""Choosing what goes to the teacher: exact and near-duplicate removal and benchmark
decontamination of the prompts, with the reason every dropped row was dropped.

Order matters and is chosen to spend least: exact duplicates first (cheapest, hash equality), then
decontamination (a dropped benchmark item must not survive as a representative), then MinHash
near-duplicates on what is left.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import polars as pl

from distillset import catalog
from distillset.curation.decontam import BenchmarkIndex
from distillset.curation.near_dedup import NearDupParams, near_duplicate_clusters
from distillset.curation.near_index import two_pass_clusters

DROPS_SCHEMA: dict[str, pl.DataType] = {
    "prompt_id": pl.String,
    "reason": pl.String,
    "duplicate_of": pl.String,
    "similarity": pl.Float64,
    "detail": pl.String,
}


def _empty_drops() -> pl.DataFrame:
    return pl.DataFrame(schema=DROPS_SCHEMA)


def exact_duplicate_drops(frame: pl.DataFrame, *, id_column: str, key_column: str) -> pl.DataFrame:
    """Rows whose ``key_column`` equals an earlier row's: the first occurrence is kept."""
    if frame.is_empty():
        return _empty_drops()
    firsts = frame.group_by(key_column, maintain_order=True).agg(pl.col(id_column).first().alias("duplicate_of"))
    return (
        frame.select(id_column, key_column)
        .join(firsts, on=key_column, how="left")
        .filter(pl.col(id_column) != pl.col("duplicate_of"))
        .select(
            pl.col(id_column).alias("prompt_id"),
            pl.lit("exact_duplicate").alias("reason"),
            pl.col("duplicate_of"),
            pl.lit(1.0).alias("similarity"),
            pl.lit(None, dtype=pl.String).alias("detail"),
        )
        .cast(DROPS_SCHEMA)
    )


def contamination_drops(
    frame: pl.DataFrame, index: BenchmarkIndex, *, id_column: str, text_column: str
) -> pl.DataFrame:
    """Rows that share a long n-gram with a benchmark test item."""
    if frame.is_empty():
        return _empty_drops()
    hits = index.find(frame[id_column].to_list(), frame[text_column].to_list())
    if hits.is_empty():
        return _empty_drops()
    return (
        hits.unique(subset="id", keep="first", maintain_order=True)
        .select(
            pl.col("id").alias("prompt_id"),
            pl.lit("contaminated").alias("reason"),
            pl.lit(None, dtype=pl.String).alias("duplicate_of"),
            pl.lit(None, dtype=pl.Float64).alias("similarity"),
            pl.format('benchmark {} (row {}): "{}"', "benchmark", "benchmark_row", "matched_ngram").alias("detail"),
        )
        .cast(DROPS_SCHEMA)
    )


def near_duplicate_drops(
    frame: pl.DataFrame, params: NearDupParams, *, id_column: str, text_column: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """MinHash clusters over ``text_column``: (cluster ids per row, drops of non-representatives)."""
    if frame.is_empty():
        return pl.DataFrame(schema={"id": pl.String, "cluster_id": pl.String}), _empty_drops()
    clusters = near_duplicate_clusters(frame[id_column].to_list(), frame[text_column].to_list(), params=params)
    return clusters.select("id", "cluster_id"), near_drops_of(clusters)


def near_drops_of(clusters: pl.DataFrame) -> pl.DataFrame:
    """The drops rows (``DROPS_SCHEMA``) of the rows ``near_duplicate_clusters`` did not keep."""
    return (
        clusters.filter(~pl.col("kept"))
        .select(
            pl.col("id").alias("prompt_id"),
            pl.lit("near_duplicate").alias("reason"),
            pl.col("duplicate_of"),
            pl.col("similarity").cast(pl.Float64),
            pl.lit(None, dtype=pl.String).alias("detail"),
        )
        .cast(DROPS_SCHEMA)
    )


def build_prompt_pool(
    prompts: pl.DataFrame, *, benchmarks: BenchmarkIndex, near_dup: NearDupParams
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The prompts worth paying the teacher for, and a drop row (with its reason) for every other one."""
    exact = exact_duplicate_drops(prompts, id_column="prompt_id", key_column="text_hash")
    remaining = prompts.filter(~pl.col("prompt_id").is_in(exact["prompt_id"].implode()))
    contaminated = contamination_drops(remaining, benchmarks, id_column="prompt_id", text_column="prompt_text")
    remaining = remaining.filter(~pl.col("prompt_id").is_in(contaminated["prompt_id"].implode()))
    _, near = near_duplicate_drops(remaining, near_dup, id_column="prompt_id", text_column="prompt_text")
    pool = remaining.filter(~pl.col("prompt_id").is_in(near["prompt_id"].implode()))
    return pool, pl.concat([exact, contaminated, near])


def build_prompt_pool_in_catalog(
    writer: catalog.ChunkWriter,
    *,
    benchmarks: BenchmarkIndex,
    near_dup: NearDupParams,
    chunk_rows: int,
    source: str = "raw_prompts",
    pool_table: str = "prompt_pool",
    drops_table: str = "prompt_drops",
) -> PoolCounts:
    """``build_prompt_pool`` over the catalog's ``source`` table, streamed: the same pool and drops.

    Memory holds the ids and text hashes of every prompt, one chunk of ``chunk_rows`` texts at a
    time, and the near-duplicate index (band keys of every prompt, then signatures and shingle sets of the
    candidates only, ``near_index.two_pass_clusters``),
    never every document: exact duplicates are found from ``(prompt_id, text_hash)``, texts are
    streamed once for decontamination and sketching, then ``source`` once more, chunk by chunk,
    without the dropped ids into ``pool_table`` (in its order). ``writer`` is the chunked write
    (``catalog.write_chunks``) that commits it.

    Returns:
        The number of rows read and kept, and the drops frame (ids and reasons, as written).
    """
    con = writer.con
    keys = con.execute(f'SELECT prompt_id, text_hash FROM "{source}"').pl()
    exact = exact_duplicate_drops(keys, id_column="prompt_id", key_column="text_hash")
    total = keys.height
    del keys
    exact_ids = exact["prompt_id"].implode()
    contaminated_parts: list[pl.DataFrame] = []

    def clean_chunks() -> Iterator[tuple[list[str], list[str]]]:
        sql = f'SELECT prompt_id, prompt_text FROM "{source}"'
        for chunk in catalog.iter_chunks(con, sql, chunk_rows=chunk_rows):
            if exact.height:
                chunk = chunk.filter(~pl.col("prompt_id").is_in(exact_ids))
            hits = contamination_drops(chunk, benchmarks, id_column="prompt_id", text_column="prompt_text")
            if hits.height:
                contaminated_parts.append(hits)
                chunk = chunk.filter(~pl.col("prompt_id").is_in(hits["prompt_id"].implode()))
            yield chunk["prompt_id"].to_list(), chunk["prompt_text"].to_list()

    def texts_of_ids(wanted: pl.Series) -> Iterator[tuple[list[str], list[str]]]:
        sql = f'SELECT prompt_id, prompt_text FROM "{source}"'
        for chunk in catalog.iter_chunks_of_ids(con, sql, id_column="prompt_id", ids=wanted, chunk_rows=chunk_rows):
            yield chunk["prompt_id"].to_list(), chunk["prompt_text"].to_list()

    # Two streamed passes: band keys of every prompt, then the texts of the candidates only.
    clusters = two_pass_clusters(
        clean_chunks(), texts_of_ids, params=near_dup, verification="union-find", capacity=total - exact.height
    )
    contaminated = pl.concat(contaminated_parts) if contaminated_parts else _empty_drops()
    near = (
        clusters.filter(~pl.col("kept"))
        .select(
            pl.col("id").alias("prompt_id"),
            pl.lit("near_duplicate").alias("reason"),
            pl.col("duplicate_of"),
            pl.col("similarity").cast(pl.Float64),
            pl.lit(None, dtype=pl.String).alias("detail"),
        )
        .cast(DROPS_SCHEMA)
    )
    del clusters
    drops = pl.concat([exact, contaminated, near])
    # The pool is raw_prompts without the dropped ids, in its order: streamed through the writer
    # (an anti join would need an ORDER BY to keep the order, a sort DuckDB ran out of memory on
    # under the chunked write's limit at 300k prompts).
    dropped = drops["prompt_id"].implode()
    writer.replace_table(pool_table, _schema_of(con, source))
    for chunk in catalog.iter_chunks(con, f'SELECT * FROM "{source}"', chunk_rows=chunk_rows):
        writer.append(pool_table, chunk.filter(~pl.col("prompt_id").is_in(dropped)))
    con.register("_frame", drops.to_arrow())
    try:
        con.execute(f'CREATE OR REPLACE TABLE "{drops_table}" AS SELECT * FROM _frame')
    finally:
        con.unregister("_frame")
    return PoolCounts(input_rows=total, kept=total - drops.height, drops=drops)


@dataclass
class PoolCounts:
    """What ``build_prompt_pool_in_catalog`` wrote: rows read, rows kept, the drop rows."""

    input_rows: int
    kept: int
    drops: pl.DataFrame


def cluster_size_histogram(kept: int, drops: pl.DataFrame) -> dict[str, int]:
    """How many kept rows represent a cluster of each size (1 = no duplicate), from the drop rows."""
    duplicates = drops.filter(pl.col("duplicate_of").is_not_null())
    sizes = duplicates.group_by("duplicate_of").len()["len"].to_list() if duplicates.height else []
    histogram = {"1": kept - len(sizes)}
    for size in sorted(n + 1 for n in sizes):
        histogram[str(size)] = histogram.get(str(size), 0) + 1
    return histogram


def _schema_of(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, pl.DataType]:
    """``table``'s columns as a polars schema (from an empty read)."""
    return dict(con.execute(f'SELECT * FROM "{table}" LIMIT 0').pl().schema)
