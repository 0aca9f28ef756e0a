"""Near-duplicate clustering (distillset.curation.near_dedup): which rows cluster, which row is kept.

Protects: exact copies and light edits of long texts (one word changed, sentences reordered) are
found; unrelated texts are kept apart; pairs are accepted by their EXACT shingle Jaccard (just
above the threshold in, just below out) and ``similarity`` reports it; the representative is the
highest priority, then the earliest row; ``duplicate_of`` always names the kept row (no chains);
CJK texts are compared by character shingles; code keeps its punctuation; empty and tiny inputs
work; band layout defaults.
"""

from __future__ import annotations

import random
import re

import numpy as np
import polars as pl
import pytest

from distillset import ids
from distillset.curation import near_dedup
from distillset.curation.near_dedup import (
    NearDupParams,
    near_duplicate_clusters,
    near_duplicate_clusters_chunks,
    near_duplicate_pairs,
    optimal_band_layout,
)
from distillset.curation.shingles import normalize, shingle_hashes

_WORDS = [f"w{index}" for index in range(3000)]


def _text(seed: int, sentences: int = 12, words: int = 12) -> str:
    rng = random.Random(seed)
    return " ".join(" ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "." for _ in range(sentences))


def _by_id(frame: pl.DataFrame) -> dict[str, dict]:
    return {row["id"]: row for row in frame.iter_rows(named=True)}


def test_exact_edit_and_reorder_are_found_and_unrelated_kept():
    base = _text(1)
    sentences = base.split(". ")
    one_word = base.split(" ")
    one_word[70] = "changed"
    reordered = ". ".join(sentences[6:] + sentences[:6])
    unrelated = [_text(seed) for seed in range(100, 130)]
    texts = [base, "  " + base.upper() + " ", " ".join(one_word), reordered, *unrelated]
    ids = ["base", "copy", "edit", "reorder", *[f"u{i}" for i in range(len(unrelated))]]

    rows = _by_id(near_duplicate_clusters(ids, texts))

    assert rows["base"]["kept"] and rows["base"]["duplicate_of"] is None and rows["base"]["similarity"] is None
    assert rows["copy"]["duplicate_of"] == "base" and rows["copy"]["similarity"] == 1.0
    assert rows["edit"]["duplicate_of"] == "base" and 0.8 <= rows["edit"]["similarity"] < 1.0
    assert rows["reorder"]["duplicate_of"] == "base" and rows["reorder"]["similarity"] >= 0.8
    for i in range(len(unrelated)):
        assert rows[f"u{i}"]["kept"] and rows[f"u{i}"]["cluster_id"] == f"u{i}"


def test_output_is_one_row_per_input_in_input_order():
    texts = [_text(5), _text(6), _text(5)]
    frame = near_duplicate_clusters(["c", "a", "b"], texts)
    assert frame.columns == ["id", "cluster_id", "kept", "duplicate_of", "similarity"]
    assert frame["id"].to_list() == ["c", "a", "b"]
    assert frame["cluster_id"].to_list() == ["c", "a", "c"]


def test_representative_is_highest_priority_then_earliest():
    text = _text(7)
    ids = ["first", "second", "third", "fourth"]
    texts = [text, text, text, _text(8)]
    by_priority = _by_id(near_duplicate_clusters(ids, texts, priority=[0.1, 0.9, 0.9, 0.0]))
    assert by_priority["second"]["kept"]
    assert by_priority["first"]["duplicate_of"] == "second"
    assert by_priority["third"]["duplicate_of"] == "second"
    assert by_priority["fourth"]["kept"]

    without_priority = _by_id(near_duplicate_clusters(ids, texts))
    assert [without_priority[i]["kept"] for i in ids] == [True, False, False, True]

    nan_priority = _by_id(near_duplicate_clusters(ids, texts, priority=[float("nan"), 0.0, None, 1.0]))
    assert nan_priority["second"]["kept"] and not nan_priority["first"]["kept"]


def test_duplicate_of_never_chains():
    # a ~ b ~ c step by step: each next text changes a few more words of the previous one.
    words = _text(9, sentences=20).split(" ")
    chain = [list(words)]
    for step in range(1, 5):
        changed = list(chain[-1])
        for position in range(step * 7, step * 7 + 3):
            changed[position] = f"edit{step}x{position}"
        chain.append(changed)
    texts = [" ".join(w) for w in chain]
    frame = near_duplicate_clusters([f"v{i}" for i in range(len(texts))], texts)
    kept_ids = set(frame.filter(pl.col("kept"))["id"])
    dropped = frame.filter(~pl.col("kept"))
    assert len(dropped) >= 3
    assert set(dropped["duplicate_of"]) <= kept_ids
    assert (dropped["duplicate_of"] == dropped["cluster_id"]).all()


def test_cjk_near_duplicates_use_character_shingles():
    base = (
        "机器学习是人工智能的一个分支，它使计算机能够在没有明确编程的情况下从数据中学习并改进其性能，"
        "广泛应用于图像识别和自然语言处理等领域。"
    )
    base += "近年来，深度学习的发展使得这些技术在医疗、金融和交通等行业中取得了显著的成果，也带来了新的挑战。"
    edited = base.replace("图像识别", "图片识别")
    different = (
        "今天天气很好，我们一起去公园散步吧，顺便买一些水果和面包，然后回家做晚饭，晚上还可以看一部电影放松一下心情。"
    )
    shingles = shingle_hashes([base], word_ngram=5, char_ngram=5)
    assert shingles.is_cjk.tolist() == [True]
    assert shingles.unit_counts[0] == len(base.replace(" ", ""))

    rows = _by_id(near_duplicate_clusters(["a", "b", "c"], [base, edited, different]))
    assert rows["b"]["duplicate_of"] == "a"
    assert rows["c"]["kept"] and rows["c"]["cluster_id"] == "c"


def test_code_keeps_punctuation():
    body = "\n".join(f"    total_{i} = compute(values[{i}], weight={i}) + offset" for i in range(15))
    first = f"def score(values, offset):\n{body}\n    return total_0"
    renamed = first.replace("return total_0", "return total_1")
    operators = first.replace("(", "[").replace(")", "]")
    rows = _by_id(near_duplicate_clusters(["a", "b", "c"], [first, renamed, operators]))
    assert rows["b"]["duplicate_of"] == "a"
    assert rows["c"]["kept"]


def test_pairs_report_verified_edges():
    base = _text(11)
    edited = base.replace(base.split(" ")[40], "zzz", 1)
    pairs = near_duplicate_pairs([_text(12), base, edited, base])
    assert pairs.select("left", "right").rows() == [(1, 2)]
    assert pairs["similarity"][0] >= 0.8


@pytest.mark.parametrize("texts", [[], ["only one"], [""], ["", ""]])
def test_small_inputs(texts):
    frame = near_duplicate_clusters([str(i) for i in range(len(texts))], texts)
    assert len(frame) == len(texts)
    assert frame["kept"].sum() == min(len(texts), 1)


def test_short_texts_and_custom_bands():
    frame = near_duplicate_clusters(
        ["a", "b", "c"], ["hi there", "Hi  there", "bye now"], params=NearDupParams(bands=16, rows=8)
    )
    assert frame["duplicate_of"].to_list() == [None, "a", None]


def _exact_jaccard(a: str, b: str, n: int = 5) -> float:
    """Reference Jaccard of word 5-gram sets, tokenized independently of distillset.curation.shingles."""

    def grams(text: str) -> set:
        tokens = re.findall(r"\w+|[^\w\s]", ids.normalize_text(text))
        return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}

    left, right = grams(a), grams(b)
    return len(left & right) / len(left | right)


def _edited(words: list[str], positions: list[int], tag: str) -> str:
    changed = list(words)
    for position in positions:
        changed[position] = f"{tag}{position}"
    return " ".join(changed)


def test_pairs_are_decided_by_exact_jaccard_at_the_threshold():
    # 200 distinct words, so each replaced word (>= 5 apart) removes 5 shingles and adds 5:
    # 4 edits give J = 176/216 ~ 0.815, 5 edits 171/221 ~ 0.774 (both within the MinHash noise).
    words = [f"word{index}" for index in range(200)]
    base = " ".join(words)
    above = _edited(words, [10, 50, 90, 130], "above")
    below = _edited(words, [20, 60, 100, 140, 180], "below")
    assert 0.8 < _exact_jaccard(base, above) < 0.82 and 0.76 < _exact_jaccard(base, below) < 0.8

    pairs = near_duplicate_pairs([base, above, below])
    assert pairs.select("left", "right").rows() == [(0, 1)]
    assert pairs["similarity"][0] == pytest.approx(_exact_jaccard(base, above), abs=1e-12)

    rows = _by_id(near_duplicate_clusters(["base", "above", "below"], [base, above, below]))
    assert rows["above"]["duplicate_of"] == "base"
    assert rows["above"]["similarity"] == pytest.approx(_exact_jaccard(base, above), abs=1e-12)
    assert rows["below"]["kept"]


def test_similarity_to_the_kept_row_is_exact():
    words = [f"token{index}" for index in range(300)]
    texts = [" ".join(words), _edited(words, [10, 40], "a"), _edited(words, [10, 40, 70, 100], "a")]
    frame = near_duplicate_clusters(["x", "y", "z"], texts, priority=[0.0, 1.0, 0.0])
    rows = _by_id(frame)
    assert rows["y"]["kept"]
    for other, text in (("x", texts[0]), ("z", texts[2])):
        assert rows[other]["duplicate_of"] == "y"
        assert rows[other]["similarity"] == pytest.approx(_exact_jaccard(texts[1], text), abs=1e-12)


def test_exact_jaccard_is_independent_of_the_batch_size(monkeypatch):
    texts = [_text(seed, sentences=3) for seed in range(40)]
    normalized = pl.Series([normalize(text) for text in texts])
    params = NearDupParams()
    sets = near_dedup.shingle_sets(normalized, np.arange(len(texts)), params)
    rng = np.random.default_rng(0)
    left, right = rng.integers(0, len(texts), 300), rng.integers(0, len(texts), 300)
    whole = sets.jaccard(left, right)
    monkeypatch.setattr(near_dedup, "_VERIFY_ELEMENTS", 50)  # forces many batches, some of one pair
    assert np.array_equal(sets.jaccard(left, right), whole)
    assert np.all(whole[left == right] == 1.0)
    for a, b, value in list(zip(left, right, whole, strict=True))[:20]:
        assert value == pytest.approx(_exact_jaccard(texts[a], texts[b]), abs=1e-12)


def test_band_layout_defaults_and_validation():
    assert optimal_band_layout(0.8, 128) == (9, 13)  # datasketch's equal weights
    # Exact verification removes LSH false positives, so the default banding favours recall:
    # it is laid out for threshold - LSH_MARGIN and catches almost every pair at the threshold.
    bands, rows = NearDupParams().band_layout()
    assert (bands, rows) == optimal_band_layout(0.8 - near_dedup.LSH_MARGIN, 128, 0.2, 0.8)
    assert 1 - (1 - 0.8**rows) ** bands > 0.98
    assert NearDupParams(bands=20).band_layout() == (20, 6)
    with pytest.raises(ValueError):
        NearDupParams(bands=20, rows=20)
    with pytest.raises(ValueError):
        near_duplicate_clusters(["a", "a"], ["x", "y"])


@pytest.mark.parametrize(
    "text",
    [
        "  Hello\tWORLD \n again ",
        "a\x1cb\x1fc\x0bd\x0ce",
        "",
        "   ",
        "Straße ＡＢＣ ﬁne",
        "ΣΑΣ σας",
        "x\u00a0y\u3000z",
        "MiXeD 123 !?",
    ],
)
def test_fast_normalize_equals_ids_normalize_text(text):
    assert normalize(text) == ids.normalize_text(text)


@pytest.mark.parametrize("chunk_sizes", [(1,), (7, 0, 3), (1000,)])
def test_clusters_of_streamed_chunks_equal_the_in_memory_clusters(chunk_sizes):
    # Issue 19: the streamed path keeps no text (a digest per normalized text), with chunks of
    # any size, empty ones included, and gives exactly the in-memory result.
    rng = random.Random(11)
    base = [" ".join(rng.choices(["sun", "moon", "tree", "lake", "hill", "road", "wind"], k=30)) for _ in range(20)]
    texts = [rng.choice(base) if rng.random() < 0.4 else rng.choice(base) + f" extra {i}" for i in range(120)]
    texts += [t.upper() for t in texts[:10]] + ["", None]
    row_ids = [f"r{i}" for i in range(len(texts))]
    params = NearDupParams(threshold=0.7, chunk_size=16)
    expected = near_duplicate_clusters(row_ids, texts, params=params)

    def chunks():
        start, turn = 0, 0
        while start < len(texts):
            size = chunk_sizes[turn % len(chunk_sizes)]
            turn += 1
            yield row_ids[start : start + size], texts[start : start + size]
            start += size

    for capacity in (None, len(texts)):
        got = near_duplicate_clusters_chunks(chunks(), params=params, capacity=capacity)
        assert got.equals(expected)
    assert not expected["kept"].all()
    assert near_duplicate_clusters_chunks(iter([]), params=params).is_empty()


def test_signatures_digested_in_batches_equal_one_rensa_call():
    # rensa is called _DIGEST_ROWS documents at a time (its rows come back as Python lists):
    # batch edges must not shift a signature, empty sets included.
    import rensa

    rng = np.random.default_rng(7)
    n = 2 * near_dedup._DIGEST_ROWS + 37
    counts = rng.integers(0, 40, size=n)
    counts[[0, near_dedup._DIGEST_ROWS - 1, near_dedup._DIGEST_ROWS, n - 1]] = 0
    offsets = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum(counts, out=offsets[1:])
    values = rng.integers(0, 2**32, size=int(offsets[-1]), dtype=np.uint64).astype(np.uint32)
    params = NearDupParams()
    got = np.zeros((n, params.num_perm), dtype=np.uint32)
    near_dedup._digest_rows(values, offsets, params, got)
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
        values.astype(np.uint64), offsets, params.num_perm, params.seed
    )
    assert np.array_equal(got, near_dedup._matrix_array(matrix, n, params.num_perm))
