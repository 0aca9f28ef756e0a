"""What survives the teacher: failed calls, exact and near-duplicate (prompt, answer) pairs removed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl

from distillset import catalog
from distillset.curation.near_dedup import NearDupParams
from distillset.curation.near_index import two_pass_clusters
from distillset.curation.pool import (
    DROPS_SCHEMA,
    _schema_of,
    exact_duplicate_drops,
    near_drops_of,
    near_duplicate_drops,
)
from distillset.ids import normalize_text, sha256_hex

GENERATION_DROPS_SCHEMA: dict[str, pl.DataType] = {"teacher_model": pl.String, **DROPS_SCHEMA}


def deduplicate_generations(
    generations: pl.DataFrame, prompts: pl.DataFrame, *, near_dup: NearDupParams
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Kept generations (with ``cluster_id``) and drops: failed calls, exact and near duplicates.

    Exact duplicates compare the normalized prompt and answer together; near-duplicates run
    MinHash over ``prompt + answer`` so a templated answer to different questions is kept.
    """
    if generations.is_empty():
        return generations.with_columns(pl.lit(None, dtype=pl.String).alias("cluster_id")), pl.DataFrame(
            schema=GENERATION_DROPS_SCHEMA
        )
    teacher_model = generations["teacher_model"][0]
    failed = generations.filter(pl.col("status") != "ok")
    failed_drops = failed.select(
        pl.col("prompt_id"),
        _failure_reason(),
        pl.lit(None, dtype=pl.String).alias("duplicate_of"),
        pl.lit(None, dtype=pl.Float64).alias("similarity"),
        pl.col("error").alias("detail"),
    ).cast(DROPS_SCHEMA)
    ok = generations.filter(pl.col("status") == "ok").join(
        prompts.select("prompt_id", "prompt_text"), on="prompt_id", how="left"
    )
    ok = ok.with_columns(
        (pl.col("prompt_text").fill_null("") + "\n\n" + pl.col("response").fill_null("")).alias("_pair_text")
    )
    ok = ok.with_columns(
        pl.col("_pair_text")
        .map_elements(lambda t: sha256_hex(normalize_text(t)), return_dtype=pl.String)
        .alias("_pair_hash")
    )
    exact = exact_duplicate_drops(ok, id_column="prompt_id", key_column="_pair_hash")
    remaining = ok.filter(~pl.col("prompt_id").is_in(exact["prompt_id"].implode()))
    clusters, near = near_duplicate_drops(remaining, near_dup, id_column="prompt_id", text_column="_pair_text")
    kept = (
        remaining.filter(~pl.col("prompt_id").is_in(near["prompt_id"].implode()))
        .join(clusters.rename({"id": "prompt_id"}), on="prompt_id", how="left")
        .with_columns(pl.col("cluster_id").fill_null(pl.col("prompt_id")))
        .drop("prompt_text", "_pair_text", "_pair_hash")
    )
    drops = pl.concat([failed_drops, exact, near]).with_columns(pl.lit(teacher_model).alias("teacher_model"))
    return kept, drops.select(list(GENERATION_DROPS_SCHEMA))


def _failure_reason() -> pl.Expr:
    """The drop reason of a row whose status is not ``ok``."""
    return (
        # A conversation the budget did not allow is not a failure of the teacher.
        pl.when(pl.col("status") == "skipped")
        .then(pl.lit("skipped_budget"))
        # Best-of-N (distillset.curation.best_of_n): no sample verified correct, or the prompt's
        # pass rate is outside the window; the detail says which samples failed and why.
        .when(pl.col("status") == "unverified")
        .then(pl.lit("no_verified_answer"))
        .when(pl.col("status") == "out_of_window")
        .then(pl.lit("pass_rate_window"))
        .otherwise(pl.lit("failed_generation"))
        .alias("reason")
    )


def deduplicate_generations_in_catalog(
    writer: catalog.ChunkWriter,
    *,
    model: str,
    near_dup: NearDupParams,
    chunk_rows: int,
    source: str = "teacher_generations",
    prompts: str = "prompt_pool",
    kept_table: str = "deduplicated_generations",
    drops_table: str = "generation_drops",
) -> GenerationCounts:
    """``deduplicate_generations`` over one teacher's partition of the catalog, streamed: the same
    kept rows and drops, in the same order.

    Memory holds one chunk of ``chunk_rows`` rows, a 128-bit pair hash and the id of every distinct
    ok pair (the exact-duplicate index), the near-duplicate index (band keys of every answer, then
    signatures and shingle sets of the candidates only, ``near_index.two_pass_clusters``) and the
    drop rows of duplicates (ids, no texts); never all answers. ``source`` is read twice: once
    to find failed calls and duplicates (prompt texts looked up per chunk in ``prompts``), once to
    write the kept rows through ``writer``; in between, the near-duplicate candidates' answers are
    read again by id.

    Returns:
        The rows read, kept and dropped (by reason).
    """
    con = writer.con
    where = f'FROM "{source}" WHERE "{_PARTITION}" = ?'
    schema = _schema_of(con, source) if catalog.table_exists(con, source) else {}
    writer.replace_partition(kept_table, {**schema, "cluster_id": pl.String}, column=_PARTITION, value=model)
    writer.replace_partition(drops_table, GENERATION_DROPS_SCHEMA, column=_PARTITION, value=model)
    counts = GenerationCounts()
    if not schema:
        return counts
    ok_rows = int(con.execute(f"SELECT count(*) {where} AND status = 'ok'", [model]).fetchone()[0])
    index = _ExactIndex()
    exact_parts: list[pl.DataFrame] = []
    # The streamed read and the per-chunk look-ups each need their own cursor: a query on a
    # connection ends the result it was streaming.
    stream, lookup = con.cursor(), con.cursor()
    # The passes only scan (the answers, the pool's texts per chunk): DuckDB would keep the blocks
    # it read cached up to the write limit (256 MB once the tables are that large, at ~1M rows),
    # on top of the index. The kept rows are inserted at the commit, under the write limit again
    # (an error on the way rolls the whole write back, and the connection is closed).
    con.execute(f"SET memory_limit = '{SCAN_MEMORY}'")

    def ok_chunks() -> Iterator[tuple[list[str], list[str]]]:
        sql = f"SELECT prompt_id, status, response, error {where}"
        for chunk in catalog.iter_chunks(stream, sql, [model], chunk_rows=chunk_rows):
            counts.input_rows += chunk.height
            failed = _failed_drops(chunk.filter(pl.col("status") != "ok"), model)
            counts.add(failed)
            writer.append(drops_table, failed)
            ok = _with_pair_text(lookup, chunk.filter(pl.col("status") == "ok"), prompts)
            exact = index.drops(ok["prompt_id"], _pair_keys(ok["_pair_text"]))
            if exact.height:
                exact_parts.append(exact)
                ok = ok.filter(~pl.col("prompt_id").is_in(exact["prompt_id"].implode()))
            yield ok["prompt_id"].to_list(), ok["_pair_text"].to_list()

    def texts_of_ids(wanted: pl.Series) -> Iterator[tuple[list[str], list[str]]]:
        sql = f"SELECT prompt_id, response {where} AND status = 'ok'"
        for chunk in catalog.iter_chunks_of_ids(
            stream, sql, [model], id_column="prompt_id", ids=wanted, chunk_rows=chunk_rows
        ):
            pair = _with_pair_text(lookup, chunk, prompts)
            yield pair["prompt_id"].to_list(), pair["_pair_text"].to_list()

    try:
        # Two streamed passes: band keys of every answer, then the texts of the candidates only.
        clusters = two_pass_clusters(
            ok_chunks(), texts_of_ids, params=near_dup, verification="union-find", capacity=ok_rows
        )
    finally:
        stream.close()
        lookup.close()
    index.clear()
    exact = pl.concat(exact_parts) if exact_parts else pl.DataFrame(schema=DROPS_SCHEMA)
    near = near_drops_of(clusters)
    del clusters
    for part in (exact, near):
        part = part.with_columns(pl.lit(model).alias(_PARTITION)).select(list(GENERATION_DROPS_SCHEMA))
        counts.add(part)
        writer.append(drops_table, part)
    dropped = pl.concat([exact["prompt_id"], near["prompt_id"]]).implode()
    for chunk in catalog.iter_chunks(con, f"SELECT * {where} AND status = 'ok'", [model], chunk_rows=chunk_rows):
        kept = chunk.filter(~pl.col("prompt_id").is_in(dropped))
        # A kept row is its cluster's representative, so its cluster id is its own id
        # (near_duplicate_clusters: cluster_id is the kept row's id).
        writer.append(kept_table, kept.with_columns(pl.col("prompt_id").alias("cluster_id")))
        counts.kept += kept.height
    con.execute(f"SET memory_limit = '{catalog.CHUNKED_WRITE_MEMORY}'")  # for the commit's inserts
    return counts


_PARTITION = "teacher_model"
SCAN_MEMORY = "64MB"
"""DuckDB's memory limit while ``deduplicate_generations_in_catalog`` streams its two passes: scans
and a semi join of one chunk's ids need little, and a lower limit evicts the blocks read."""


@dataclass
class GenerationCounts:
    """What ``deduplicate_generations_in_catalog`` wrote: rows read and kept, drops by reason."""

    input_rows: int = 0
    kept: int = 0
    drops_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return sum(self.drops_by_reason.values())

    def add(self, drops: pl.DataFrame) -> None:
        for reason, n in drops.group_by("reason").len().iter_rows():
            self.drops_by_reason[reason] = self.drops_by_reason.get(reason, 0) + n


def _failed_drops(failed: pl.DataFrame, model: str) -> pl.DataFrame:
    return (
        failed.select(
            pl.lit(model).alias(_PARTITION),
            pl.col("prompt_id"),
            _failure_reason(),
            pl.lit(None, dtype=pl.String).alias("duplicate_of"),
            pl.lit(None, dtype=pl.Float64).alias("similarity"),
            pl.col("error").alias("detail"),
        )
    ).cast(GENERATION_DROPS_SCHEMA)


def _with_pair_text(con: duckdb.DuckDBPyConnection, ok: pl.DataFrame, prompts: str) -> pl.DataFrame:
    """``ok`` (in its order) with ``_pair_text``: the prompt's text (looked up for this chunk's ids)
    and the answer, as ``deduplicate_generations`` compares them."""
    con.register("_ids", ok.select("prompt_id").to_arrow())
    try:
        texts = con.execute(f'SELECT prompt_id, prompt_text FROM "{prompts}" SEMI JOIN _ids USING (prompt_id)').pl()
    finally:
        con.unregister("_ids")
    return ok.join(texts, on="prompt_id", how="left", maintain_order="left").select(
        "prompt_id",
        (pl.col("prompt_text").fill_null("") + "\n\n" + pl.col("response").fill_null("")).alias("_pair_text"),
    )


def _pair_keys(pair_texts: pl.Series) -> np.ndarray:
    """The first 128 bits of ``sha256(normalize_text(pair))`` (the in-memory path's pair hash), as
    ``(n, 2)`` ``uint64``: the exact-duplicate key, 16 bytes per row instead of a hex string."""
    digests = b"".join(hashlib.sha256(normalize_text(t).encode("utf-8")).digest()[:16] for t in pair_texts)
    return np.frombuffer(digests, dtype=np.uint64).reshape(len(pair_texts), 2)


class _ExactIndex:
    """The first id of every pair key seen so far, across chunks (two ``uint64`` and an id per key)."""

    def __init__(self) -> None:
        self._seen = pl.DataFrame(schema={"k0": pl.UInt64, "k1": pl.UInt64, "first": pl.String})

    def clear(self) -> None:
        """Free the index (once the last chunk is read)."""
        self.__init__()

    def drops(self, ids: pl.Series, keys: np.ndarray) -> pl.DataFrame:
        """Exact-duplicate drops of one chunk: rows whose key an earlier row (this chunk or before) had."""
        if not len(ids):
            return pl.DataFrame(schema=DROPS_SCHEMA)
        rows = pl.DataFrame({"prompt_id": ids, "k0": keys[:, 0], "k1": keys[:, 1]})
        firsts = rows.group_by("k0", "k1", maintain_order=True).agg(pl.col("prompt_id").first().alias("first"))
        firsts = firsts.join(self._seen.rename({"first": "seen"}), on=["k0", "k1"], how="left", maintain_order="left")
        new = firsts.filter(pl.col("seen").is_null()).select("k0", "k1", "first")
        self._seen = pl.concat([self._seen, new], rechunk=False)
        return (
            rows.join(
                firsts.select("k0", "k1", pl.coalesce("seen", "first").alias("duplicate_of")),
                on=["k0", "k1"],
                how="left",
                maintain_order="left",
            )
            .filter(pl.col("prompt_id") != pl.col("duplicate_of"))
            .select(
                "prompt_id",
                pl.lit("exact_duplicate").alias("reason"),
                "duplicate_of",
                pl.lit(1.0).alias("similarity"),
                pl.lit(None, dtype=pl.String).alias("detail"),
            )
            .cast(DROPS_SCHEMA)
        )
