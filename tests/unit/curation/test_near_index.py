"""The two-pass streamed near-duplicate index (distillset.curation.near_index).

Protects: the same clusters, kept rows, duplicate_of and similarities as the in-memory
``near_duplicate_clusters`` for both verification modes, with candidates in different chunks,
chunks of 7 rows, an empty chunk, None and empty texts, exact copies and a band bucket larger
than ``_MAX_BUCKET_SPAN``; pass 2 asks only for texts in candidate pairs, never for the unique
texts without a near neighbour (unless pass 1's truncated band keys collide, which only adds
candidates); a reader whose texts changed between passes is an error.
"""

from __future__ import annotations

import random

import polars as pl
import pytest

from distillset.curation import near_dedup, near_index
from distillset.curation.near_dedup import NearDupParams, near_duplicate_clusters
from distillset.curation.near_index import two_pass_clusters

_WORDS = [f"w{index}" for index in range(2000)]
_OPTIONS = {"params": NearDupParams(threshold=0.7, chunk_size=7), "verification": "union-find", "capacity": None}


def _corpus(seed: int = 3) -> tuple[list[str], list[str | None]]:
    rng = random.Random(seed)
    base = [" ".join(rng.choices(_WORDS, k=40)) for _ in range(40)]
    texts: list[str | None] = list(base)
    for i in range(60):  # light edits and exact copies of texts far earlier: other chunks
        source = base[rng.randrange(len(base))].split(" ")
        if i % 3:
            source[rng.randrange(len(source))] = f"edit{i}"
        texts.append(" ".join(source).upper() if i % 5 == 0 else " ".join(source))
    boiler = " ".join(rng.choices(_WORDS, k=30))
    texts += [f"{boiler} tail{i}" for i in range(near_dedup._MAX_BUCKET_SPAN + 10)]  # one big bucket
    texts += [" ".join(rng.choices(_WORDS, k=40)) for _ in range(30)]  # no neighbour
    texts += ["", None, "   ", "short"]
    rng.shuffle(texts)
    return [f"r{i}" for i in range(len(texts))], texts


def _chunks(ids: list[str], texts: list, sizes: tuple[int, ...]):
    start, turn = 0, 0
    while start < len(texts):
        size = sizes[turn % len(sizes)]
        turn += 1
        yield ids[start : start + size], texts[start : start + size]
        start += size


def _reader(ids: list[str], texts: list, asked: list[set[str]]):
    text_of = dict(zip(ids, texts, strict=True))

    def texts_of_ids(wanted: pl.Series):
        wanted = list(reversed(wanted.to_list()))  # any order, in chunks of 5
        asked.append(set(wanted))
        for start in range(0, len(wanted), 5):
            part = wanted[start : start + 5]
            yield part, [text_of[i] for i in part]

    return texts_of_ids


@pytest.mark.parametrize("verification", ["union-find", "exhaustive"])
@pytest.mark.parametrize("sizes", [(7,), (7, 0, 3), (1000,)])
def test_two_pass_equals_in_memory_clusters(verification, sizes):
    ids, texts = _corpus()
    params = NearDupParams(threshold=0.7, chunk_size=7)
    expected = near_duplicate_clusters(ids, texts, params=params, verification=verification)
    asked: list[set[str]] = []
    for capacity in (None, len(texts)):
        got = two_pass_clusters(
            _chunks(ids, texts, sizes),
            _reader(ids, texts, asked),
            params=params,
            verification=verification,
            capacity=capacity,
        )
        assert got.equals(expected)
    assert expected["similarity"].drop_nulls().min() < 1.0  # near, not only exact, duplicates
    assert expected["kept"].sum() < len(ids) - 40
    # Pass 2 read every kept text with a near (not exact) duplicate and none of the 30 unrelated.
    near_kept = set(expected.filter(pl.col("similarity") < 1.0)["cluster_id"])
    assert near_kept and near_kept <= asked[0]
    assert len(asked[0]) < len(ids) - 30


def test_colliding_pass_one_keys_only_add_candidates(monkeypatch):
    # Pass 1 keeps 32 bits of each band key: a chance collision makes a text a candidate for
    # nothing, never changes a cluster. With 3 bits nearly every text collides in some band.
    ids, texts = _corpus()
    params = NearDupParams(threshold=0.7, chunk_size=7)
    expected = near_duplicate_clusters(ids, texts, params=params, verification="union-find")
    asked: list[set[str]] = []
    for bits in (32, 3):
        monkeypatch.setattr(near_index, "_CANDIDATE_KEY_BITS", bits)
        chunks, reader = _chunks(ids, texts, (7,)), _reader(ids, texts, asked)
        got = two_pass_clusters(chunks, reader, params=params, verification="union-find", capacity=None)
        assert got.equals(expected)
    assert asked[0] < asked[1]  # more texts read again, the same clusters


def test_two_pass_without_candidates_reads_nothing_again():
    ids = [f"r{i}" for i in range(5)]
    texts = [" ".join(random.Random(i).choices(_WORDS, k=30)) for i in range(5)]
    asked: list[set[str]] = []
    options = {"params": NearDupParams(), "verification": "union-find", "capacity": None}
    got = two_pass_clusters(_chunks(ids, texts, (2,)), _reader(ids, texts, asked), **options)
    assert got["kept"].all() and not asked
    assert two_pass_clusters(iter([]), _reader([], [], asked), **options).is_empty()


def test_texts_changed_between_passes_is_an_error():
    ids, texts = _corpus()
    changed = [None if t is None else t + " more words here now" for t in texts]
    with pytest.raises(ValueError, match="changed between"):
        two_pass_clusters(_chunks(ids, texts, (7,)), _reader(ids, changed, []), **_OPTIONS)


def test_a_reader_missing_ids_is_an_error():
    ids, texts = _corpus()

    def partial(wanted: pl.Series):
        wanted = wanted.to_list()[1:]
        yield wanted, [dict(zip(ids, texts, strict=True))[i] for i in wanted]

    with pytest.raises(ValueError, match="exactly once"):
        two_pass_clusters(_chunks(ids, texts, (7,)), partial, **_OPTIONS)
