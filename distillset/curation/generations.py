"""What survives the teacher: failed calls, exact and near-duplicate (prompt, answer) pairs removed."""

from __future__ import annotations

import polars as pl

from distillset.curation.near_dedup import NearDupParams
from distillset.curation.pool import DROPS_SCHEMA, exact_duplicate_drops, near_duplicate_drops
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
        .alias("reason"),
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
