"""Vectorized shingle hashing: texts in, one flat ``uint64`` array of n-gram hashes out.

Tokenizing and hashing shingles is most of the cost of MinHash deduplication (60-75% in our
measurements), so nothing here loops over documents in Python: polars (Rust regex, Rust hashing)
splits and hashes the units of a whole chunk at once, and numpy combines ``n`` consecutive unit
hashes into n-gram hashes with a polynomial over the flat array.

Units of a document are either

* **words**: ``\\w+`` runs, plus (when ``keep_punctuation``) every other non-space character as its
  own token, so code keeps its operators (``a(b)`` and ``a[b]`` differ), or
* **characters**: every non-space character (punctuation too, unless not kept), for scripts
  written without spaces.

* **script units** (``mode="scripts"``, near-duplicate detection): one stream per document in
  which each script is split on its own terms. Han, Hiragana, Katakana and Hangul (written
  without spaces, or in Korean with spaces between multi-syllable words) give one unit per
  character; every other run of word characters (Latin, Cyrillic, Greek, digits...) is one unit,
  a word; every other visible character is its own unit (when ``keep_punctuation``). So a Chinese
  instruction wrapped around a SQL query is shingled as characters where it is Chinese and as
  words where it is SQL, and n-grams run across the boundary. A pure English document gets the
  same units as ``words``; a pure Chinese one the same as ``chars``, except that a number or a
  Latin word inside it is one unit instead of one per character.

In the per-document modes (``auto``), a document is CJK when at least ``CJK_SHARE`` of its
non-space characters are Han, Hiragana, Katakana or Hangul; such documents are shingled by
characters, all others by words. A document with fewer units than ``n`` (but at least one) gets a
single shingle made of all its units, so short texts still have a signature; an empty document
gets no shingle at all.

Hashes are deterministic for a given seed and polars version (polars' string hash is the unit
hash), which is why the decontamination index cache is keyed by the polars version.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from distillset import ids as id_rules

CJK_CHARS = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]"
CJK_SHARE = 0.3
"""Mixed texts (a Chinese question with an English formula) are CJK when 30% of their
non-space characters are CJK: word tokens would turn each Chinese run into one huge token."""

WORD_WITH_PUNCT = r"\w+|[^\w\s]"
WORD_ONLY = r"\w+"
_CJK_CLASS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
SCRIPT_UNITS_WITH_PUNCT = rf"[{_CJK_CLASS}]|[^\W{_CJK_CLASS}]+|[^\w\s]"
r"""Script units: one CJK character, a run of other word characters (a word), or one other visible
character. Kana and Hangul are their own scripts here, like Han: split into characters, never
glued to a neighbouring Latin word (``\w+`` would make ``sql语句`` or ``DB에서`` one token)."""
SCRIPT_UNITS_ONLY = rf"[{_CJK_CLASS}]|[^\W{_CJK_CLASS}]+"

_POLY = np.uint64(0x100000001B3)  # FNV-1a 64-bit prime: odd, so the polynomial keeps all bits
_SALT_CHAR = np.uint64(0x9E3779B97F4A7C15)


def normalize(text: str | None) -> str:
    """``ids.normalize_text``, with a fast path for ASCII text (most prompts).

    For ASCII, NFKC is the identity and case folding is ``lower()``, and ``str.split()`` splits
    on exactly the characters ``\\s`` matches, so the result is identical at ~4x the speed; the
    normalization was the largest single cost of deduplicating English text. Non-ASCII text that
    is already in NFKC skips ``unicodedata.normalize`` (the same result, ~3x faster).
    """
    if not text:
        return ""
    if text.isascii():
        return " ".join(text.lower().split())
    # Most non-ASCII prompts (Chinese, accented Latin) are already NFKC: the quick check is ~50x
    # cheaper than normalizing, and ``split``/``join`` is ``ids``' ``\s+`` collapse plus ``strip``.
    if unicodedata.is_normalized("NFKC", text):
        return " ".join(text.split()).casefold()
    return id_rules.normalize_text(text)


_WIDE_FORMS = [chr(code) for code in range(0xFF01, 0xFF5F)] + ["\u3000", "\u2026"]
_WIDE_NFKC = [unicodedata.normalize("NFKC", form) for form in _WIDE_FORMS]
"""Full-width ASCII (``，`` ``（`` ``：``...), the ideographic space and ``…``: the characters that
keep most Chinese text from being NFKC already. Each one's NFKC form is its full compatibility
decomposition and made of starters (ASCII, ``...``), so replacing them first leaves the NFKC of
the whole text, and so ``normalize``, unchanged."""


def normalize_many(texts: Sequence[str | None]) -> list[str]:
    """``[normalize(text) for text in texts]``, faster for Chinese text.

    polars first replaces full-width punctuation by its NFKC form in one vectorized pass (which
    changes no result, see ``_WIDE_FORMS``), so most Chinese texts then pass the quick
    ``is_normalized`` check instead of paying for ``unicodedata.normalize``.
    """
    series = pl.Series("text", texts, dtype=pl.String).fill_null("")
    return [normalize(text) for text in series.str.replace_many(_WIDE_FORMS, _WIDE_NFKC).to_list()]


def splitmix64(values: np.ndarray) -> np.ndarray:
    """A fast, well-mixing bijection on ``uint64`` (Steele et al.'s SplitMix64 finalizer)."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


@dataclass(frozen=True)
class Shingles:
    """The n-gram hashes of a batch of documents.

    Attributes:
        hashes: every document's shingle hashes, concatenated (``uint64``).
        offsets: ``len(docs) + 1`` positions into ``hashes``; document ``i`` owns
            ``hashes[offsets[i]:offsets[i + 1]]``.
        is_cjk: per document, whether it was shingled by characters. Shingle ``k`` of a
            document starts at its unit ``k`` (used to show a matched n-gram).
        unit_counts: per document, its number of units (a document with fewer than ``n`` units
            has one shingle over all of them).
    """

    hashes: np.ndarray
    offsets: np.ndarray
    is_cjk: np.ndarray
    unit_counts: np.ndarray


def cjk_mask(normalized: pl.Series) -> np.ndarray:
    """Per text, whether at least ``CJK_SHARE`` of its non-space characters are CJK."""
    cjk = normalized.str.count_matches(CJK_CHARS).to_numpy()
    if not cjk.any():
        return np.zeros(len(normalized), dtype=bool)
    visible = normalized.str.count_matches(r"\S").to_numpy()
    return (cjk > 0) & (cjk >= CJK_SHARE * np.maximum(visible, 1))


def split_units(normalized: pl.Series, *, chars: bool, keep_punctuation: bool = True) -> pl.Series:
    """A list of units per text: characters (spaces, and punctuation unless kept, dropped) or tokens."""
    if chars:
        dropped = r"\s+" if keep_punctuation else r"[\s\p{P}\p{S}]+"
        return normalized.str.replace_all(dropped, "").str.split("")
    return normalized.str.extract_all(WORD_WITH_PUNCT if keep_punctuation else WORD_ONLY)


def split_script_units(normalized: pl.Series, *, keep_punctuation: bool = True) -> pl.Series:
    """A list of script units per text (see the module docstring): CJK characters and words."""
    return normalized.str.extract_all(SCRIPT_UNITS_WITH_PUNCT if keep_punctuation else SCRIPT_UNITS_ONLY)


def compose_ngrams(unit_hashes: np.ndarray, lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Combine consecutive unit hashes into n-gram hashes, document by document.

    Args:
        unit_hashes: all documents' unit hashes, concatenated.
        lengths: the number of units of each document.
        n: units per shingle.

    Returns:
        ``(hashes, counts)``: the n-gram hashes in document order and the count per document
        (``max(L - n + 1, 1)`` for ``L >= 1`` units, 0 for an empty document).
    """
    lengths = lengths.astype(np.int64)
    total = int(lengths.sum())
    counts = np.where(lengths >= n, lengths - n + 1, np.minimum(lengths, 1))
    out_offsets = np.concatenate(([0], np.cumsum(counts)))
    out = np.empty(int(out_offsets[-1]), dtype=np.uint64)
    if total == 0:
        return out, counts
    ends = np.cumsum(lengths)
    starts = ends - lengths
    long_docs = lengths >= n
    with np.errstate(over="ignore"):
        if total >= n and long_docs.any():
            width = total - n + 1
            grams = np.zeros(width, dtype=np.uint64)
            for j in range(n):
                grams = grams * _POLY + unit_hashes[j : j + width]
            # A window is valid unless it crosses a document end: mask the last n-1 starts of each
            # document (and everything of documents shorter than n), instead of a per-unit index.
            valid = np.ones(width, dtype=bool)
            tails = (ends[:, None] - np.arange(1, n, dtype=np.int64)[None, :]).ravel()
            tails = tails[(tails >= 0) & (tails < width)]
            valid[tails] = False
            short_units = np.repeat(~long_docs, lengths)[:width]
            valid &= ~short_units
            out_long = np.repeat(long_docs, counts)
            out[out_long] = grams[valid]
        short_docs = (lengths > 0) & ~long_docs
        if short_docs.any():
            # Documents shorter than n: one shingle over all their units (same polynomial).
            doc_of_unit = np.repeat(np.arange(len(lengths)), lengths)
            in_short = short_docs[doc_of_unit]
            local = np.flatnonzero(in_short) - starts[doc_of_unit[in_short]]
            exps = lengths[doc_of_unit[in_short]] - 1 - local
            weighted = unit_hashes[in_short] * _power_table(n)[exps]
            sums = np.zeros(len(lengths), dtype=np.uint64)
            np.add.at(sums, doc_of_unit[in_short], weighted)
            out[out_offsets[:-1][short_docs]] = sums[short_docs]
    return splitmix64(out), counts


def _power_table(n: int) -> np.ndarray:
    powers = np.ones(max(n, 1), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(1, n):
            powers[k] = powers[k - 1] * _POLY
    return powers


_NO_SALT = np.uint64(0)


def unit_hashes(units: pl.Series, *, seed: int, salt: np.uint64 = _NO_SALT) -> tuple[np.ndarray, np.ndarray]:
    """Hash every unit of every document: ``(flat uint64 hashes, units per document)``."""
    lengths = units.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = units.explode().drop_nulls()
    hashes = flat.hash(seed=seed).to_numpy()
    if salt:
        hashes = hashes ^ salt
    return hashes, lengths


def shingle_hashes(
    normalized: Sequence[str] | pl.Series,
    *,
    word_ngram: int,
    char_ngram: int,
    seed: int = 0,
    keep_punctuation: bool = True,
    mode: str = "auto",
) -> Shingles:
    """The shingle hashes of already-normalized texts (see ``ids.normalize_text``).

    Args:
        normalized: texts, normalized (NFKC, case-folded, whitespace collapsed).
        word_ngram: words per shingle for space-separated scripts.
        char_ngram: characters per shingle for CJK documents.
        seed: hash seed (the same seed gives the same hashes in one polars version).
        keep_punctuation: keep punctuation characters as tokens (code), or drop them.
        mode: ``scripts`` (script units, see the module docstring; ``char_ngram`` per shingle
            for documents that are at least ``CJK_SHARE`` CJK, ``word_ngram`` for the others),
            ``auto`` (characters for CJK documents, words for the others), ``words`` or
            ``chars`` (every document the same way).

    Returns:
        The flat shingle hashes with per-document offsets.
    """
    series = normalized if isinstance(normalized, pl.Series) else pl.Series("text", list(normalized), dtype=pl.String)
    series = series.fill_null("")
    n_docs = len(series)
    if mode not in ("auto", "words", "chars", "scripts"):
        raise ValueError(f"unknown shingle mode {mode!r}")
    if mode == "scripts":
        return _script_shingles(series, word_ngram, char_ngram, seed, keep_punctuation)
    is_cjk = cjk_mask(series) if mode == "auto" else np.full(n_docs, mode == "chars")
    counts = np.zeros(n_docs, dtype=np.int64)
    unit_counts = np.zeros(n_docs, dtype=np.int64)
    pieces: list[tuple[np.ndarray, np.ndarray]] = []  # (doc indices, hashes in doc order)
    if n_docs == 0:
        return Shingles(np.empty(0, dtype=np.uint64), np.zeros(1, dtype=np.int64), is_cjk, unit_counts)
    for chars, n in ((False, word_ngram), (True, char_ngram)):
        docs = np.flatnonzero(is_cjk == chars)
        if len(docs) == 0:
            continue
        subset = series if len(docs) == n_docs else series.gather(docs)
        units = split_units(subset, chars=chars, keep_punctuation=keep_punctuation)
        hashes, lengths = unit_hashes(units, seed=seed, salt=_SALT_CHAR if chars else np.uint64(0))
        grams, per_doc = compose_ngrams(hashes, lengths, n)
        counts[docs] = per_doc
        unit_counts[docs] = lengths
        pieces.append((docs, grams, per_doc))
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if len(pieces) == 1:
        return Shingles(pieces[0][1], offsets, is_cjk, unit_counts)
    out = np.empty(int(offsets[-1]), dtype=np.uint64)
    for docs, grams, per_doc in pieces:
        src_starts = np.concatenate(([0], np.cumsum(per_doc)[:-1]))
        dst = np.repeat(offsets[docs] - src_starts, per_doc) + np.arange(len(grams))
        out[dst] = grams
    return Shingles(out, offsets, is_cjk, unit_counts)


def _script_shingles(
    series: pl.Series, word_ngram: int, char_ngram: int, seed: int, keep_punctuation: bool
) -> Shingles:
    """``mode="scripts"``: one unit stream per document; the n-gram size by its main script.

    With ``word_ngram == char_ngram`` (the default) every document is one pass and ``is_cjk``
    only says whether a document has any CJK unit; otherwise a document is shingled with
    ``char_ngram`` when it is at least ``CJK_SHARE`` CJK (``is_cjk``), else with ``word_ngram``.
    """
    n_docs = len(series)
    units = split_script_units(series, keep_punctuation=keep_punctuation)
    hashes, lengths = unit_hashes(units, seed=seed)
    if word_ngram == char_ngram:
        is_cjk = series.str.contains(CJK_CHARS).fill_null(False).to_numpy()
        grams, counts = compose_ngrams(hashes, lengths, word_ngram)
        offsets = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return Shingles(grams, offsets, is_cjk, lengths)
    is_cjk = cjk_mask(series)
    unit_offsets = np.concatenate(([0], np.cumsum(lengths)))
    counts = np.zeros(n_docs, dtype=np.int64)
    pieces = []
    for chars, n in ((False, word_ngram), (True, char_ngram)):
        docs = np.flatnonzero(is_cjk == chars)
        if len(docs) == 0:
            continue
        doc_lengths = lengths[docs]
        index = np.repeat(unit_offsets[docs] - np.concatenate(([0], np.cumsum(doc_lengths)[:-1])), doc_lengths)
        grams, per_doc = compose_ngrams(hashes[index + np.arange(len(index))], doc_lengths, n)
        counts[docs] = per_doc
        pieces.append((docs, grams, per_doc))
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint64)
    for docs, grams, per_doc in pieces:
        src_starts = np.concatenate(([0], np.cumsum(per_doc)[:-1]))
        out[np.repeat(offsets[docs] - src_starts, per_doc) + np.arange(len(grams))] = grams
    return Shingles(out, offsets, is_cjk, lengths)
