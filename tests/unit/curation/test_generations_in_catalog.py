"""Issue 19: deduplicated generations streamed through the catalog, chunk by chunk, give the
kept rows and drops of the in-memory ``deduplicate_generations``, whatever the chunk size."""

from __future__ import annotations

import random

import polars as pl

from distillset import catalog
from distillset.curation.generations import (
    GENERATION_DROPS_SCHEMA,
    deduplicate_generations,
    deduplicate_generations_in_catalog,
)
from distillset.curation.near_dedup import NearDupParams

MODEL = "teacher-a"
PARAMS = NearDupParams(threshold=0.7)


def _corpus(n: int, seed: int = 5) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A prompt pool and one teacher's generations: failed and skipped calls, exact copies of a
    (prompt, answer) pair (case and spacing differ), light edits of an answer, and unique answers."""
    rng = random.Random(seed)
    words = "alpha beta gamma delta river stone cloud paper seven orange quiet market table violin".split()
    prompt_texts = ["Tell me about rivers.", "tell me  about RIVERS.", "What is a stone?"]
    topics = [" ".join(rng.choices(words, k=6)) for _ in range(n // 6)]
    prompt_texts += [f"question: {topics[i % len(topics)]}" for i in range(n)]
    prompts = pl.DataFrame({"prompt_id": [f"p{i:04d}" for i in range(len(prompt_texts))], "prompt_text": prompt_texts})
    answers = [" ".join(rng.choices(words, k=rng.randint(20, 40))) for _ in topics]
    rows = []
    for i in range(len(prompt_texts)):
        kind = rng.random()
        status, error = "ok", None
        if kind < 0.05:
            status, error = "failed", "HTTP 500"
        elif kind < 0.08:
            status = "skipped"
        # Rows len(topics) apart share a prompt text and the answer they vary.
        base = answers[(i - 3) % len(answers)] if i > 2 else "Rivers flow to the sea."
        if kind < 0.2:
            answer = base.upper()
        elif kind < 0.3:
            answer = base
        elif kind < 0.6:
            parts = base.split()
            parts[rng.randrange(len(parts))] = "edited"
            answer = " ".join(parts)
        else:
            answer = f"{i} " + " ".join(rng.choices(words, k=30))
        rows.append({"prompt_id": f"p{i:04d}", "status": status, "response": answer, "error": error, "n": i})
    generations = pl.DataFrame(rows).with_columns(pl.lit(MODEL).alias("teacher_model"))
    return prompts, generations.select("teacher_model", "prompt_id", "status", "response", "error", "n")


def _catalog(tmp_path, prompts: pl.DataFrame, generations: pl.DataFrame):
    path = tmp_path / "catalog.duckdb"
    catalog.replace_table(path, "prompt_pool", prompts)
    catalog.replace_table(path, "teacher_generations", generations)
    return path


def _streamed(path, chunk_rows: int, model: str = MODEL):
    with catalog.write_chunks(path) as writer:
        counts = deduplicate_generations_in_catalog(writer, model=model, near_dup=PARAMS, chunk_rows=chunk_rows)
    where = "WHERE teacher_model = ?"
    kept = catalog.read_table(path, "deduplicated_generations", where, [model])
    drops = catalog.read_table(path, "generation_drops", where, [model])
    return counts, kept, drops


def test_streamed_generations_equal_the_in_memory_ones_at_any_chunk_size(tmp_path):
    prompts, generations = _corpus(200)
    kept, drops = deduplicate_generations(generations, prompts, near_dup=PARAMS)
    reasons = set(drops["reason"].to_list())
    assert reasons == {"failed_generation", "skipped_budget", "exact_duplicate", "near_duplicate"}, reasons
    path = _catalog(tmp_path, prompts, generations)
    # One row per chunk (every duplicate is in another chunk than its original), an odd size, one chunk.
    for chunk_rows in (1, 7, 10_000):
        counts, got_kept, got_drops = _streamed(path, chunk_rows)
        assert got_kept.equals(kept), chunk_rows
        assert got_drops.equals(drops), chunk_rows
        assert (counts.input_rows, counts.kept, counts.dropped) == (generations.height, kept.height, drops.height)
        assert counts.drops_by_reason == dict(drops.group_by("reason").len().iter_rows())


def test_exact_duplicates_across_chunks_point_to_the_first_row(tmp_path):
    # The same prompt text (two ids in the pool) answered the same way in chunk 1, 2 and 3.
    prompts = pl.DataFrame(
        {"prompt_id": ["a", "b", "c", "d"], "prompt_text": ["Hi there", "hi  THERE", "x", "Hi there"]}
    )
    generations = pl.DataFrame(
        {
            "teacher_model": [MODEL] * 4,
            "prompt_id": ["a", "c", "b", "d"],
            "status": ["ok"] * 4,
            "response": ["Hello!", "unrelated answer", "hello!", "Hello!"],
            "error": [None] * 4,
        }
    )
    path = _catalog(tmp_path, prompts, generations)
    counts, kept, drops = _streamed(path, chunk_rows=2)
    assert kept["prompt_id"].to_list() == ["a", "c"]
    assert kept["cluster_id"].to_list() == ["a", "c"]
    assert drops.select("prompt_id", "reason", "duplicate_of", "similarity").rows() == [
        ("b", "exact_duplicate", "a", 1.0),
        ("d", "exact_duplicate", "a", 1.0),
    ]
    assert counts.kept == 2


def test_other_partitions_are_kept_and_an_empty_partition_writes_nothing(tmp_path):
    prompts, generations = _corpus(40)
    other = generations.with_columns(pl.lit("teacher-b").alias("teacher_model"))
    path = _catalog(tmp_path, prompts, pl.concat([generations, other]))
    _streamed(path, chunk_rows=9, model="teacher-b")
    counts, kept, drops = _streamed(path, chunk_rows=9)
    _, kept_b, drops_b = _streamed(path, chunk_rows=9, model="teacher-b")
    assert kept_b.drop("teacher_model").equals(kept.drop("teacher_model"))
    assert drops_b.drop("teacher_model").equals(drops.drop("teacher_model"))
    counts, kept, drops = _streamed(path, chunk_rows=9, model="teacher-none")
    assert (counts.input_rows, counts.kept, counts.dropped) == (0, 0, 0)
    assert kept.is_empty() and drops.is_empty()
    assert catalog.table_columns(path, "generation_drops") == list(GENERATION_DROPS_SCHEMA)
    assert catalog.table_columns(path, "deduplicated_generations") == [*generations.columns, "cluster_id"]


def test_only_failed_calls_give_no_kept_rows(tmp_path):
    prompts, generations = _corpus(20)
    generations = generations.with_columns(pl.lit("failed").alias("status"), pl.lit("boom").alias("error"))
    path = _catalog(tmp_path, prompts, generations)
    counts, kept, drops = _streamed(path, chunk_rows=4)
    assert counts.kept == 0 and kept.is_empty()
    assert counts.drops_by_reason == {"failed_generation": generations.height}
    assert drops["detail"].unique().to_list() == ["boom"]
