"""A reproducible synthetic near-duplicate corpus with ground truth, at any size.

Each document is a few sentences of pseudo-words drawn from a Zipf-like vocabulary (so common
words repeat like in real text). A share of the documents (``--dup-fraction``) are variants of an
original, made by one of:

* ``exact``: a copy, sometimes with different case and spacing (same ``normalize_text``),
* ``word_edit``: 1-3 words replaced,
* ``insertion``: 1-3 words inserted,
* ``deletion``: 1-3 words deleted,
* ``reorder``: two sentences swapped.

Ground truth columns: ``family`` (the original's index; originals are their own family) and
``kind`` (``original`` or the edit). Whether a pair is really above a similarity threshold is
decided by the benchmark from the exact Jaccard of the shingle sets, not assumed here.

Run ``python bench/synthetic_corpus.py --docs 100000 --out corpus.parquet`` to write one.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

KINDS = ("exact", "word_edit", "insertion", "deletion", "reorder")
_SYLLABLES = [c + v for c in "bcdfghjklmnprstvz" for v in "aeiou"]


def vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    """``size`` distinct pseudo-words of 1-4 syllables."""
    words: set[str] = set()
    while len(words) < size:
        lengths = rng.integers(1, 5, size=size)
        picks = rng.integers(0, len(_SYLLABLES), size=(size, 4))
        for length, row in zip(lengths, picks, strict=True):
            words.add("".join(_SYLLABLES[k] for k in row[:length]))
    return [str(word) for word in rng.permutation(sorted(words))[:size]]


def _sentences(rng: np.random.Generator, vocab: np.ndarray, probabilities: np.ndarray, count: int) -> list[list[str]]:
    """``count`` documents, each a list of sentences (strings)."""
    n_sentences = rng.integers(4, 10, size=count)
    sentence_lengths = rng.integers(8, 20, size=int(n_sentences.sum()))
    words = vocab[rng.choice(len(vocab), size=int(sentence_lengths.sum()), p=probabilities)]
    docs, word_at, sentence_at = [], 0, 0
    for n in n_sentences:
        sentences = []
        for length in sentence_lengths[sentence_at : sentence_at + n]:
            sentence = " ".join(words[word_at : word_at + length])
            sentences.append(sentence[:1].upper() + sentence[1:] + ".")
            word_at += length
        sentence_at += n
        docs.append(sentences)
    return docs


def _variant(sentences: list[str], kind: str, rng: np.random.Generator, vocab: np.ndarray) -> str:
    if kind == "exact":
        text = " ".join(sentences)
        return text.upper() if rng.random() < 0.3 else text.replace(" ", "  ", 3)
    if kind == "reorder":
        swapped = list(sentences)
        i, j = rng.choice(len(swapped), size=2, replace=False)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        return " ".join(swapped)
    words = " ".join(sentences).split(" ")
    edits = int(rng.integers(1, 4))
    for _ in range(edits):
        position = int(rng.integers(0, len(words)))
        if kind == "word_edit":
            words[position] = str(vocab[rng.integers(0, len(vocab))])
        elif kind == "insertion":
            words.insert(position, str(vocab[rng.integers(0, len(vocab))]))
        elif len(words) > 1:
            del words[position]
    return " ".join(words)


def generate(docs: int, *, seed: int = 0, dup_fraction: float = 0.3, vocab_size: int = 20_000) -> pl.DataFrame:
    """A shuffled corpus of ``docs`` rows: ``id``, ``text``, ``family``, ``kind``.

    Args:
        docs: number of rows.
        seed: the random seed (same seed, same corpus).
        dup_fraction: share of rows that are variants of an original.
        vocab_size: pseudo-words in the vocabulary.
    """
    rng = np.random.default_rng(seed)
    vocab = np.array(vocabulary(vocab_size, rng))
    ranks = np.arange(1, len(vocab) + 1, dtype=np.float64)
    probabilities = 1.0 / ranks**1.05
    probabilities /= probabilities.sum()
    n_variants = int(docs * dup_fraction)
    n_originals = docs - n_variants
    originals = _sentences(rng, vocab, probabilities, n_originals)
    texts = [" ".join(sentences) for sentences in originals]
    families = list(range(n_originals))
    kinds = ["original"] * n_originals
    parents = rng.integers(0, max(n_originals, 1), size=n_variants)
    variant_kinds = rng.choice(len(KINDS), size=n_variants)
    for parent, kind_index in zip(parents, variant_kinds, strict=True):
        kind = KINDS[kind_index]
        texts.append(_variant(originals[parent], kind, rng, vocab))
        families.append(int(parent))
        kinds.append(kind)
    order = rng.permutation(docs)
    return pl.DataFrame(
        {
            "id": [f"doc{i:08d}" for i in range(docs)],
            "text": [texts[i] for i in order],
            "family": np.asarray(families, dtype=np.int64)[order],
            "kind": [kinds[i] for i in order],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000, help="rows (e.g. 100000 or 1000000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dup-fraction", type=float, default=0.3)
    parser.add_argument("--out", type=Path, required=True, help="a .parquet or .jsonl file")
    args = parser.parse_args()
    started = time.perf_counter()
    corpus = generate(args.docs, seed=args.seed, dup_fraction=args.dup_fraction)
    if args.out.suffix == ".parquet":
        corpus.write_parquet(args.out)
    else:
        corpus.write_ndjson(args.out)
    print(f"wrote {len(corpus)} rows to {args.out} in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
