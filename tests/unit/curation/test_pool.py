"""The engine's pool rules: what goes to the teacher, and the audit of what did not.

Protects: exact duplicates keep their first occurrence and point to it; contaminated prompts are
dropped with the benchmark named; near-duplicates point to their kept representative; the cluster
size histogram shown in the UI counts clusters by size.
"""

from __future__ import annotations

import polars as pl

from distillset.curation.decontam import Benchmark, BenchmarkIndex
from distillset.curation.near_dedup import NearDupParams
from distillset.curation.pool import DROPS_SCHEMA, build_prompt_pool, cluster_size_histogram


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
