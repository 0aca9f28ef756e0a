"""Union-find verification of near-duplicate candidates (distillset.curation.near_dedup).

Protects: checking only the candidate pairs that would join two different clusters gives exactly
the clusters, kept rows, ``duplicate_of`` and ``similarity`` of checking every candidate pair
(random small corpora with clusters, chains whose ends are below the threshold, near-but-different
rewrites, the all-at-once fallback round); a cluster of ``k`` copies costs far fewer than
``k (k - 1) / 2`` exact checks and accepts exactly ``k - 1`` pairs (a spanning tree); rewrites
below the threshold are checked, rejected and stay apart; ``similarity`` stays the exact Jaccard
to the kept row; rows sketched before exact grouping (chunk by chunk, on worker threads) give
exactly the signatures and sets of the unique texts.
"""

from __future__ import annotations

import random
import re

import numpy as np
import polars as pl
import pytest

from distillset import ids
from distillset.curation import near_dedup
from distillset.curation.near_dedup import NearDupParams, near_duplicate_clusters

_WORDS = [f"w{index}" for index in range(2000)]


def _document(rng: random.Random, words: int) -> list[str]:
    return [rng.choice(_WORDS) for _ in range(words)]


def _edit(words: list[str], rng: random.Random, edits: int) -> list[str]:
    changed = list(words)
    for _ in range(edits):
        position = rng.randrange(len(changed))
        kind = rng.random()
        if kind < 0.5:
            changed[position] = rng.choice(_WORDS)
        elif kind < 0.75:
            changed.insert(position, rng.choice(_WORDS))
        elif len(changed) > 1:
            del changed[position]
    return changed


def _corpus(seed: int) -> list[str]:
    """Clusters of 2-12 light edits (some chained, some too far), exact copies and singles, shuffled."""
    rng = random.Random(seed)
    texts = []
    for _ in range(rng.randint(5, 12)):
        base = _document(rng, rng.randint(40, 120))
        texts.append(" ".join(base))
        previous = base
        for _ in range(rng.randint(1, 11)):
            source = previous if rng.random() < 0.3 else base  # some chains a -> b -> c
            variant = _edit(source, rng, rng.randint(0, 4))
            texts.append(" ".join(variant).upper() if rng.random() < 0.1 else " ".join(variant))
            previous = variant
    texts += [" ".join(_document(rng, rng.randint(5, 80))) for _ in range(rng.randint(3, 10))]
    rng.shuffle(texts)
    return texts


def _grams(text: str, n: int = 5) -> set:
    tokens = re.findall(r"\w+|[^\w\s]", ids.normalize_text(text))
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)} or {tuple(tokens)}


def _reference_jaccard(a: str, b: str) -> float:
    left, right = _grams(a), _grams(b)
    return len(left & right) / len(left | right)


@pytest.mark.parametrize("seed", range(12))
def test_same_clusters_as_the_exhaustive_check(seed):
    texts = _corpus(seed)
    row_ids = [f"r{i}" for i in range(len(texts))]
    priority = [float(random.Random(seed).random() < 0.5) for _ in texts]
    fast = near_duplicate_clusters(row_ids, texts, priority=priority)
    exhaustive = near_duplicate_clusters(row_ids, texts, priority=priority, verification="exhaustive")
    assert fast.equals(exhaustive)
    assert fast["kept"].sum() < len(texts)  # the corpus really has clusters


def test_partition_equals_connected_components_of_all_verified_pairs(monkeypatch):
    for seed in range(100, 106):
        texts = _corpus(seed)
        params = NearDupParams()
        normalized = pl.Series([ids.normalize_text(text) for text in dict.fromkeys(texts)])
        signatures, sets = near_dedup.sketch(normalized, params)
        pairs, _ = near_dedup.verified_pairs(signatures, np.diff(sets.offsets) > 0, normalized, params, sets)
        expected = near_dedup.connected_components(len(normalized), pairs["left"].to_numpy(), pairs["right"].to_numpy())
        assert np.array_equal(near_dedup.union_find_components(signatures, sets, params), expected)
        # The fallback that checks every crossing pair at once gives the same partition.
        monkeypatch.setattr(near_dedup, "_FULL_ROUNDS", 0)
        assert np.array_equal(near_dedup.union_find_components(signatures, sets, params), expected)
        monkeypatch.setattr(near_dedup, "_FULL_ROUNDS", 4)


def test_a_large_cluster_costs_a_spanning_tree_of_checks():
    rng = random.Random(7)
    base = _document(rng, 200)
    copies = 40
    texts = [" ".join(base)] + [" ".join(_edit(base, rng, 1)) for _ in range(copies - 1)]
    texts += [" ".join(_document(rng, 150)) for _ in range(20)]
    params = NearDupParams()
    normalized = pl.Series([ids.normalize_text(text) for text in texts])
    signatures, sets = near_dedup.sketch(normalized, params)
    stats: dict = {}
    labels = near_dedup.union_find_components(signatures, sets, params, stats)
    assert (labels[:copies] == 0).all() and len(set(labels[copies:].tolist())) == 20
    assert stats["accepted"] == copies - 1  # every accepted pair joined two clusters
    exhaustive, _ = near_dedup.verified_pairs(signatures, np.diff(sets.offsets) > 0, normalized, params, sets)
    assert len(exhaustive) > 600  # nearly all 780 pairs of the cluster are candidates and pass
    assert stats["checked"] < 2 * copies
    assert stats["skipped"] > 10 * copies


def test_rewrites_below_the_threshold_are_checked_and_stay_apart():
    # 200 distinct words: each replaced word (>= 5 apart) removes 5 shingles and adds 5.
    words = [f"word{index}" for index in range(200)]
    original = " ".join(words)
    copies = [" ".join(words[:k] + [f"copy{k}"] + words[k + 1 :]) for k in (30, 90, 150)]
    rewrite_words = list(words)
    for position in (10, 40, 70, 100, 130, 160):  # J ~ 0.74 to the original, a likely LSH candidate
        rewrite_words[position] = f"other{position}"
    rewrite = " ".join(rewrite_words)
    assert 0.7 < _reference_jaccard(original, rewrite) < 0.8
    texts = [original, *copies, rewrite]
    params = NearDupParams()
    normalized = pl.Series([ids.normalize_text(text) for text in texts])
    signatures, sets = near_dedup.sketch(normalized, params)
    stats: dict = {}
    labels = near_dedup.union_find_components(signatures, sets, params, stats)
    assert labels.tolist() == [0, 0, 0, 0, 4]
    assert stats["checked"] > stats["accepted"]  # the rewrite was checked and rejected
    frame = near_duplicate_clusters(["o", "a", "b", "c", "r"], texts)
    assert frame.filter(pl.col("id") == "r")["kept"].item()


def test_similarity_is_the_exact_jaccard_to_the_kept_row():
    texts = _corpus(3)
    frame = near_duplicate_clusters([str(i) for i in range(len(texts))], texts)
    dropped = frame.filter(~pl.col("kept"))
    assert len(dropped) > 5
    for row in dropped.iter_rows(named=True):
        kept_text = texts[int(row["duplicate_of"])]
        text = texts[int(row["id"])]
        expected = (
            1.0 if ids.normalize_text(text) == ids.normalize_text(kept_text) else _reference_jaccard(text, kept_text)
        )
        assert row["similarity"] == pytest.approx(expected, abs=1e-12)


def test_unknown_verification_is_rejected():
    with pytest.raises(ValueError):
        near_duplicate_clusters(["a"], ["x"], verification="sometimes")


def test_rows_sketched_before_grouping_match_the_unique_texts(monkeypatch):
    # Many exact duplicates (case and spacing), chunks smaller than the input: the signatures
    # compacted to the unique texts and the sets found through ``slot_of`` are those of the texts.
    monkeypatch.setattr(near_dedup, "_WORKERS", 2)
    rng = random.Random(5)
    bases = [" ".join(_document(rng, rng.randint(3, 60))) for _ in range(40)]
    texts = [rng.choice(bases).upper() if rng.random() < 0.3 else rng.choice(bases) + "  " for _ in range(300)]
    params = NearDupParams(chunk_size=64)
    first_rows, unique_of_row, normalized, signatures, sets = near_dedup._normalize_and_sketch(texts, params)
    unique = normalized.gather(first_rows)
    assert len(first_rows) == len(set(unique.to_list())) < 50
    assert unique.gather(unique_of_row).to_list() == [ids.normalize_text(text) for text in texts]
    expected_signatures, expected_sets = near_dedup.sketch(unique, params)
    assert np.array_equal(signatures, expected_signatures)
    assert np.array_equal(sets.sizes(), expected_sets.sizes())
    left, right = np.repeat(np.arange(len(first_rows)), 3), np.tile(np.arange(3), len(first_rows))
    assert np.array_equal(sets.jaccard(left, right), expected_sets.jaccard(left, right))
