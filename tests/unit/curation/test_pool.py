"""The engine's pool rules: what goes to the teacher, and the audit of what did not.

Protects: exact duplicates keep their first occurrence and point to it; contaminated prompts are
dropped with the benchmark named; near-duplicates point to their kept representative; the cluster
size histogram shown in the UI counts clusters by size.
"""

from __future__ import annotations

import polars as pl

from distillset import catalog
from distillset.curation.decontam import Benchmark, BenchmarkIndex
from distillset.curation.near_dedup import NearDupParams
from distillset.curation.pool import (
    DROPS_SCHEMA,
    build_prompt_pool,
    build_prompt_pool_in_catalog,
    cluster_size_histogram,
)


def test_pool_histogram_counts_clusters_by_size():
    drops = pl.DataFrame(
        {
            "prompt_id": ["b", "c", "e", "x"],
            "reason": ["exact_duplicate", "near_duplicate", "near_duplicate", "contaminated"],
            "duplicate_of": ["a", "a", "d", None],
            "similarity": [1.0, 0.9, 0.85, None],
            "detail": [None, None, None, "gsm8k_test"],
        },
        schema=DROPS_SCHEMA,
    )
    # kept: a (cluster of 3), d (cluster of 2) and 3 singletons
    assert cluster_size_histogram(5, drops) == {"1": 3, "2": 1, "3": 1}


def test_build_prompt_pool_drops_with_reasons(tmp_path):
    bench = tmp_path / "bench.jsonl"
    leaked = (
        "A farmer has 17 sheep and all but 9 run away; how many sheep does the farmer have left at the end of the day"
    )
    bench.write_text(f'{{"question": "{leaked}"}}\n')
    index = BenchmarkIndex.build([Benchmark("mybench", bench, ("question",), "MIT")])
    long = (
        "Explain in detail how photosynthesis converts light energy into chemical energy in the leaves of green "
        "plants, step by step."
    )
    texts = {
        "p1": long,
        "p2": long,  # exact copy
        "p3": long.replace("in detail", "in great detail"),  # near copy
        "p4": "Please answer: " + leaked + "?",
        "p5": "Write a limerick about a cat who learns to play the piano at midnight.",
    }
    prompts = pl.DataFrame(
        {
            "prompt_id": list(texts),
            "text_hash": [str(hash(t.lower())) for t in texts.values()],
            "prompt_text": list(texts.values()),
        }
    )
    pool, drops = build_prompt_pool(prompts, benchmarks=index, near_dup=NearDupParams(threshold=0.7))
    assert pool["prompt_id"].to_list() == ["p1", "p5"]
    by_id = {row["prompt_id"]: row for row in drops.iter_rows(named=True)}
    assert by_id["p2"]["reason"] == "exact_duplicate" and by_id["p2"]["duplicate_of"] == "p1"
    assert by_id["p3"]["reason"] == "near_duplicate" and by_id["p3"]["duplicate_of"] == "p1"
    assert 0.7 <= by_id["p3"]["similarity"] < 1.0
    assert by_id["p4"]["reason"] == "contaminated" and "mybench" in by_id["p4"]["detail"]
    assert cluster_size_histogram(pool.height, drops) == {"1": 1, "3": 1}


def _catalog_with(tmp_path, prompts: pl.DataFrame):
    path = tmp_path / "catalog.duckdb"
    catalog.replace_table(path, "raw_prompts", prompts)
    return path


def _pool_in_catalog(path, **kwargs):
    with catalog.write_chunks(path) as writer:
        counts = build_prompt_pool_in_catalog(writer, **kwargs)
    return counts, catalog.read_table(path, "prompt_pool"), catalog.read_table(path, "prompt_drops")


def _edited_corpus(n: int, seed: int = 3) -> pl.DataFrame:
    """Prompts with exact copies, light edits (near duplicates), a contaminated one and uniques."""
    import random

    rng = random.Random(seed)
    words = "alpha beta gamma delta river stone cloud paper seven orange quiet market table violin".split()
    bases = [" ".join(rng.choices(words, k=rng.randint(12, 40))) for _ in range(n // 3)]
    texts = []
    for i in range(n):
        base = rng.choice(bases)
        kind = rng.random()
        if kind < 0.2:
            texts.append(base.upper())  # an exact duplicate once normalized
        elif kind < 0.5:
            parts = base.split()
            parts[rng.randrange(len(parts))] = "edited"
            texts.append(" ".join(parts))
        else:
            texts.append(f"{i} " + " ".join(rng.choices(words, k=rng.randint(12, 40))))
    from distillset import ids

    return pl.DataFrame(
        {
            "prompt_id": [f"p{i:04d}" for i in range(n)],
            "text_hash": [ids.sha256_hex(ids.normalize_text(t)) for t in texts],
            "prompt_text": texts,
            "source_line": list(range(1, n + 1)),
        }
    )


def test_the_pool_built_in_the_catalog_in_chunks_equals_the_in_memory_pool(tmp_path):
    # Issue 19: streamed texts (chunks smaller than the input, one of a single row, one larger),
    # the same pool in the same order and the same drops as build_prompt_pool.
    bench = tmp_path / "bench.jsonl"
    leaked = "a farmer has seventeen sheep and all but nine run away so how many sheep does he have left"
    bench.write_text(f'{{"question": "{leaked}"}}\n')
    index = BenchmarkIndex.build([Benchmark("mybench", bench, ("question",), "MIT")])
    prompts = _edited_corpus(300)
    prompts = pl.concat(
        [
            prompts,
            pl.DataFrame(
                {"prompt_id": ["leak"], "text_hash": ["leak"], "prompt_text": [leaked + "?"], "source_line": [301]}
            ),
        ]
    )
    params = NearDupParams(threshold=0.7)
    pool, drops = build_prompt_pool(prompts, benchmarks=index, near_dup=params)
    reasons = set(drops["reason"].to_list())
    assert reasons == {"exact_duplicate", "near_duplicate", "contaminated"}, reasons
    path = _catalog_with(tmp_path, prompts)
    for chunk_rows in (1, 37, 10_000):
        counts, got_pool, got_drops = _pool_in_catalog(path, benchmarks=index, near_dup=params, chunk_rows=chunk_rows)
        assert got_pool.equals(pool), chunk_rows
        assert got_drops.equals(drops), chunk_rows
        assert (counts.input_rows, counts.kept) == (prompts.height, pool.height)


def test_an_empty_raw_table_gives_an_empty_pool(tmp_path):
    index = BenchmarkIndex.build([])
    path = _catalog_with(tmp_path, _edited_corpus(3).head(0))
    counts, got_pool, _ = _pool_in_catalog(path, benchmarks=index, near_dup=NearDupParams(), chunk_rows=5)
    assert (counts.input_rows, counts.kept, counts.drops.height) == (0, 0, 0)
    assert got_pool.is_empty() and got_pool.columns == ["prompt_id", "text_hash", "prompt_text", "source_line"]
