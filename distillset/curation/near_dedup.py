"""Near-duplicate clusters with MinHash and LSH banding, in chunks, without an all-pairs step.

How it works:

1. Exact duplicates first: rows with the same ``ids.normalize_text`` are one cluster with
   similarity 1.0 (empty texts are exact duplicates of each other); only one text per group is
   sketched.
2. Shingles (``distillset.curation.shingles``, ``shingling="scripts"``): 5-grams over one stream
   of script units per document: Han, Hiragana, Katakana and Hangul split into characters, every
   other run of word characters (Latin words, numbers) one unit, punctuation kept as units (so
   code works). A Chinese instruction wrapped around SQL, code, a FEN string or an English
   sentence is thus compared as characters where it is Chinese and as words where it is not;
   pure English gets exactly word 5-grams, pure Chinese character 5-grams. Five characters of
   Chinese are about two or three words, so both compare phrases of similar length. Hangul is
   split into syllables like Han (Korean words are long, agglutinated runs: an edited particle
   should cost one syllable, not a whole word, and pure Korean keeps its earlier shingles).
   ``shingling="auto"`` keeps the earlier rule (the whole document by characters when >= 30% CJK,
   else by ``\\w+`` words, which turns each Chinese clause of a mostly-Latin text into one token).
3. Signatures and sets, in one pass (``sketch``): ``chunk_size`` documents at a time, split over
   two threads (polars, numpy and rensa release the GIL), the shingle hashes of a chunk become
   each document's sorted unique 32-bit set (the exact check's input, 4 bytes per shingle, kept
   for every unique text), and rensa's R-MinHash (Rust) sketches those sets. Tokens and 64-bit
   shingles never outlive their chunk. The main thread normalizes the next chunk (Python, GIL)
   while the workers sketch the previous one (``_normalize_and_sketch``); rows that turn out to be
   exact duplicates are sketched too (a few percent of the work) and dropped after grouping.
4. LSH: ``bands`` x ``rows`` of each signature are hashed to one 64-bit key per band; rows whose
   key is equal in a band are candidates (sort + compare neighbours; a band bucket larger than
   ``_MAX_BUCKET_SPAN`` is linked as a chain of near neighbours rather than all pairs, which keeps
   it connected without a quadratic blow-up).
5. Verification by union-find (``union_find_components``), band by band: a candidate pair whose
   two texts are already in one cluster is skipped (it would join nothing), and so is a pair an
   earlier band rejected. The others are filtered by their estimated Jaccard (share of equal
   signature slots; below ``threshold - ESTIMATE_REJECT_MARGIN``, about four standard deviations,
   they are dropped cheaply) and then checked by their EXACT Jaccard in Boruvka rounds: every
   cluster picks its crossing candidate with the highest estimate (so clusters join early, through
   their closest pairs), the picked pairs are intersected in one vectorized batch
   (``ShingleSets.jaccard``), and the accepted ones (exact Jaccard >= ``threshold``) join their
   clusters (a label array kept fully path-compressed). A cluster of ``k`` light edits costs about
   ``k - 1`` exact checks instead of the ``k (k - 1) / 2`` of checking every pair, and the clusters
   are exactly the connected components of all accepted candidate pairs (``verified_pairs``, the
   exhaustive path, which ``near_duplicate_pairs`` and ``verification="exhaustive"`` still use).
6. The representative (kept row) of a cluster is the row with the highest ``priority`` (e.g. a
   quality score; missing or NaN counts as lowest), ties broken by the earliest input position.
   Every other row points to it in ``duplicate_of`` (never to another duplicate) with the EXACT
   Jaccard of the two shingle sets in ``similarity`` (1.0 for an exact duplicate). Because clusters
   are connected components, a member can reach the representative through a chain and show a
   similarity below the threshold.

The streamed stages (``prompt_pool``, ``deduplicated_generations``) build this index in two passes
over the catalog (``distillset.curation.near_index``): band keys for every text, signatures and
sets only for the texts that share a band key with another one; the clusters are the same.

Until 2026-11-29, pairs were accepted, and ``similarity`` reported, by the MinHash ESTIMATE. Its
noise (standard deviation ~0.025-0.035 at J=0.8 with 128 slots) let pairs at 0.75-0.8 in and kept
pairs at 0.8-0.85 out; on bench/synthetic_corpus.py exact verification raised edge precision
from 0.93 to 1.0 and recall at J >= 0.8 from 0.91 to ~0.999. Until 2026-12-01 every candidate pair
was checked exactly and the texts in candidate pairs were shingled a second time; on heavily
duplicated real text (bench/real_corpus.py: 14% unique, clusters of 5-15 light edits) that check
was ~70% of the time, quadratic in the cluster size (bench/DEDUP.md).

Defaults and their trade-off: ``threshold=0.8``, ``num_perm=128``. With ``bands``/``rows`` unset,
they are chosen like datasketch's ``_optimal_param`` (minimise the weighted areas of false
positives, candidate probability below the threshold, and false negatives, miss probability above
it), but for ``threshold - LSH_MARGIN`` and with false negatives weighted 0.8 and false positives
0.2 (``FALSE_NEGATIVE_WEIGHT``): every candidate is verified exactly, so an LSH false positive
only costs a cheap check, while a false negative is a duplicate that stays. For 0.8 and 128 that
gives 18 bands of 7 rows (datasketch's equal weights at 0.8 give 9 x 13, and the estimate-verified
version used 12 x 10). A pair becomes a candidate with probability ~0.40 at Jaccard 0.6, ~0.79 at
0.7, ~0.92 at 0.75, ~0.986 at 0.8 and ~0.999 at 0.85 (textbook S-curve; rensa's R-MinHash slots
are slightly negatively correlated, which makes the real curve a bit steeper). Raise ``bands``
(or ``LSH_MARGIN``) for even more recall, at the price of more candidates to verify.
"""

from __future__ import annotations

import array
import collections
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import polars as pl
import rensa

from distillset.curation.shingles import Shingles, normalize_many, shingle_hashes, splitmix64

_MAX_BUCKET_SPAN = 16
"""Within a band bucket, each row is paired with at most this many following rows (sorted order).
Small buckets get all their pairs; a huge bucket (thousands of near-identical boilerplate rows)
becomes a connected band of pairs instead of millions."""

_SLICE_DOCS = 2_000
"""Documents per worker slice in the streamed sketch (``_sketch_chunks``): 25k long answers (prompt
and answer, ~130 shingles each) held ~160 MB of transient shingle arrays per thread, 5k ~32 MB
(measured: 879 MB peak for 200k such texts at 25k per slice, 642 MB at 5k); 2k lowered pass 1 of
the two-pass index over 300k answers by another ~40 MB at the same speed (69 s vs 68 s)."""
_VERIFY_BATCH = 50_000
"""Candidate pairs per batch of estimates: two 512-byte signature rows per pair (~50 MB)."""
_WORKERS = min(2, os.cpu_count() or 1)
"""Threads for shingling and sketching (see ``_in_worker_threads``); the target machine has 2 cores."""
T = TypeVar("T")
_VERIFY_ELEMENTS = 250_000
"""Set elements per batch of exact verification: small enough for the binary searches to stay in
cache (4M elements per batch measured ~1.6x slower)."""
LSH_MARGIN = 0.1
"""With unset ``bands``/``rows``, the banding is laid out for ``threshold - LSH_MARGIN``."""
ESTIMATE_REJECT_MARGIN = 0.15
"""Candidates estimated below ``threshold - ESTIMATE_REJECT_MARGIN`` skip the exact check: 0.15 is
~4 standard deviations of a 128-slot estimate at J=0.8, so this drops ~no true pair."""
FALSE_POSITIVE_WEIGHT = 0.2
FALSE_NEGATIVE_WEIGHT = 0.8
SHINGLINGS = ("scripts", "auto")
VERIFICATIONS = ("union-find", "exhaustive")
_FULL_ROUNDS = 4
"""Boruvka rounds per band; the candidates still crossing two clusters after them are checked
all at once (a guard against many rounds when most of a band's candidates fail the check)."""


@dataclass(frozen=True)
class NearDupParams:
    """Parameters of near-duplicate detection (see the module docstring for the trade-offs).

    Attributes:
        threshold: minimum exact Jaccard similarity of shingle sets to call two rows duplicates.
        num_perm: MinHash signature length.
        bands: LSH bands; with ``rows`` unset both are chosen to minimise weighted FP+FN at
            ``threshold - LSH_MARGIN`` (recall-leaning: every candidate is checked exactly).
        rows: signature slots per band.
        word_ngram: words per shingle (space-separated scripts and code).
        char_ngram: characters per shingle (CJK documents).
        seed: seeds both the shingle hashes and the MinHash permutations.
        chunk_size: documents sketched per call (bounds the memory of shingles).
        shingling: ``scripts`` (each script on its own terms: CJK characters and words in one
            stream, see ``distillset.curation.shingles``) or ``auto`` (the earlier rule: the whole
            document by characters when it is at least 30% CJK, else by words).
    """

    threshold: float = 0.8
    num_perm: int = 128
    bands: int | None = None
    rows: int | None = None
    word_ngram: int = 5
    char_ngram: int = 5
    seed: int = 1
    chunk_size: int = 50_000
    shingling: str = "scripts"

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.num_perm < 2:
            raise ValueError(f"num_perm must be at least 2, got {self.num_perm}")
        if self.word_ngram < 1 or self.char_ngram < 1:
            raise ValueError("word_ngram and char_ngram must be at least 1")
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        if self.shingling not in SHINGLINGS:
            raise ValueError(f"shingling must be one of {SHINGLINGS}, got {self.shingling!r}")
        bands, rows = self.bands, self.rows
        if bands is not None and bands < 1 or rows is not None and rows < 1:
            raise ValueError("bands and rows must be at least 1")
        if bands is not None and rows is not None and bands * rows > self.num_perm:
            raise ValueError(f"bands*rows ({bands}*{rows}) exceeds num_perm ({self.num_perm})")

    def band_layout(self) -> tuple[int, int]:
        """``(bands, rows)``: the given ones, or the FP+FN-optimal pair for the threshold."""
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        if self.bands is not None:
            return self.bands, max(1, self.num_perm // self.bands)
        if self.rows is not None:
            return max(1, self.num_perm // self.rows), self.rows
        return optimal_band_layout(
            max(self.threshold - LSH_MARGIN, 0.05), self.num_perm, FALSE_POSITIVE_WEIGHT, FALSE_NEGATIVE_WEIGHT
        )


def optimal_band_layout(
    threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """The ``(bands, rows)`` minimising the weighted false positive + false negative areas.

    The same criterion as datasketch's ``MinHashLSH`` (integrals of the S-curve
    ``1 - (1 - s^r)^b`` below and of its complement above the threshold), computed with numpy.

    Args:
        threshold: the Jaccard similarity that separates duplicates from non-duplicates.
        num_perm: the signature length (``bands * rows <= num_perm``).
        false_positive_weight: weight of the false-positive area.
        false_negative_weight: weight of the false-negative area.

    Returns:
        ``(bands, rows)``.
    """
    below = np.linspace(0.0, threshold, 201)
    above = np.linspace(threshold, 1.0, 201)
    best, best_error = (1, num_perm), float("inf")
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = np.trapezoid(1 - (1 - below**rows) ** bands, below)
            fn = np.trapezoid((1 - above**rows) ** bands, above)
            error = false_positive_weight * fp + false_negative_weight * fn
            if error < best_error:
                best, best_error = (bands, rows), error
    return best


def _shingles(texts: pl.Series, params: NearDupParams) -> Shingles:
    return shingle_hashes(
        texts, word_ngram=params.word_ngram, char_ngram=params.char_ngram, seed=params.seed, mode=params.shingling
    )


def _set_values(shingles: Shingles, n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """Each document's sorted unique shingle hashes (top 32 bits), concatenated, and their counts."""
    local = np.repeat(np.arange(n_docs, dtype=np.uint64), np.diff(shingles.offsets))
    keys = _sorted_unique((local << np.uint64(32)) | (shingles.hashes >> np.uint64(32)))
    counts = np.bincount((keys >> np.uint64(32)).astype(np.int64), minlength=n_docs)
    return (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32), counts


def _matrix_array(matrix: rensa.RMinHashDigestMatrix, n_rows: int, num_perm: int) -> np.ndarray:
    """rensa's digest matrix as a ``(n_rows, num_perm)`` ``uint32`` array.

    rensa 0.5 exports rows only as Python lists; ``array.extend`` row by row is ~1.7x faster
    than ``np.asarray`` of the nested lists."""
    buffer = array.array("I")
    for row in matrix.to_rows():
        buffer.extend(row)
    return np.frombuffer(buffer, dtype=np.uint32).reshape(n_rows, num_perm)


_DIGEST_ROWS = 2048
"""Documents per rensa call: its rows come back as Python lists (~36 bytes per slot), so a whole
worker slice at once (25k documents) held ~115 MB of ints per thread at the peak."""


def _digest_rows(values: np.ndarray, offsets: np.ndarray, params: NearDupParams, out: np.ndarray) -> None:
    """The MinHash signatures of the sets ``values[offsets[i]:offsets[i + 1]]`` into ``out``,
    ``_DIGEST_ROWS`` documents per rensa call (a document's signature depends on its set only)."""
    for start in range(0, len(offsets) - 1, _DIGEST_ROWS):
        stop = min(start + _DIGEST_ROWS, len(offsets) - 1)
        low, high = int(offsets[start]), int(offsets[stop])
        matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
            values[low:high].astype(np.uint64), offsets[start : stop + 1] - np.uint64(low), params.num_perm, params.seed
        )
        out[start:stop] = _matrix_array(matrix, stop - start, params.num_perm)


def sketch(normalized: pl.Series, params: NearDupParams) -> tuple[np.ndarray, ShingleSets]:
    """MinHash signatures and exact shingle sets of normalized texts, ``chunk_size`` rows at a time.

    One shingling serves both: each chunk's shingle hashes become sorted unique 32-bit sets (the
    exact check's input, 4 bytes per shingle), and rensa sketches those sets. Only the sets and
    the signatures outlive a chunk, never the tokens.

    Returns:
        ``(signatures, sets)``: a ``(len, num_perm)`` ``uint32`` matrix and every text's set
        (a text without shingles has an empty set and a meaningless signature).
    """
    n = len(normalized)
    signatures = np.zeros((n, params.num_perm), dtype=np.uint32)
    counts = np.zeros(n, dtype=np.int64)

    def work(start: int, stop: int) -> np.ndarray:
        values, local_counts = _set_values(_shingles(normalized[start:stop], params), stop - start)
        counts[start:stop] = local_counts
        offsets = np.zeros(stop - start + 1, dtype=np.uint64)
        np.cumsum(local_counts, out=offsets[1:])
        # rensa sketches the chunk in Rust from one flat buffer: no Python object per row.
        _digest_rows(values, offsets, params, signatures[start:stop])
        return values

    parts = _in_worker_threads(work, n, params.chunk_size)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    # Copy the chunks' sets into one buffer, freeing each chunk as it is copied (np.concatenate
    # would hold every chunk and the result at once: twice the sets' memory at the peak).
    values = np.empty(int(offsets[-1]), dtype=np.uint32)
    parts.reverse()
    position = 0
    while parts:
        part = parts.pop()
        values[position : position + len(part)] = part
        position += len(part)
    return signatures, ShingleSets(values, offsets, np.arange(n, dtype=np.int64))


def minhash_signatures(normalized: Sequence[str] | pl.Series, params: NearDupParams) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures of normalized texts (see ``sketch``).

    Returns:
        ``(signatures, has_shingles)``: a ``(len, num_perm)`` ``uint32`` matrix, and per row
        whether it had any shingle (an empty text has a meaningless signature).
    """
    series = (
        normalized if isinstance(normalized, pl.Series) else pl.Series("normalized", list(normalized), dtype=pl.String)
    )
    signatures, sets = sketch(series, params)
    return signatures, np.diff(sets.offsets) > 0


def _in_worker_threads(task: Callable[[int, int], T], n: int, chunk_size: int) -> list[T]:
    """``task(start, stop)`` over ``range(n)`` in slices, on ``_WORKERS`` threads, results in order.

    Threads rather than processes: polars (tokenizing, hashing), rensa and numpy's sorts release
    the GIL, which measured 1.25-1.6x faster on 2 cores, without copying texts to another process.
    Each thread works on ``chunk_size / _WORKERS`` documents, so the memory in flight stays that of
    one ``chunk_size`` chunk.
    """
    step = max(1, chunk_size // _WORKERS)
    bounds = [(start, min(start + step, n)) for start in range(0, n, step)]
    if _WORKERS == 1 or len(bounds) <= 1:
        return [task(start, stop) for start, stop in bounds]
    with ThreadPoolExecutor(_WORKERS) as pool:
        return list(pool.map(lambda bound: task(*bound), bounds))


def band_key(signatures: np.ndarray, band: int, rows: int) -> np.ndarray:
    """One 64-bit key per row for one band (``uint64``)."""
    return _key_of_columns(signatures[:, band * rows : (band + 1) * rows], band)


def _key_of_columns(columns: np.ndarray, band: int) -> np.ndarray:
    key = np.full(len(columns), band, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in range(columns.shape[1]):
            key = splitmix64(key ^ columns[:, col].astype(np.uint64))
    return key


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per row and band: ``(len, bands)`` ``uint64``."""
    keys = np.zeros((len(signatures), bands), dtype=np.uint64)
    for band in range(bands):
        keys[:, band] = band_key(signatures, band, rows)
    return keys


def band_pairs(column: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Pairs ``(a, b)``, ``a < b``, of ``rows`` whose key in one band (``column``) is equal.

    Rows are sorted by key (stable); each row is paired with the next ``_MAX_BUCKET_SPAN`` rows
    of its bucket. Every pair occurs once.
    """
    order = np.argsort(column, kind="stable")
    sorted_keys = column[order]
    sorted_rows = rows[order]
    found = []
    for span in range(1, _MAX_BUCKET_SPAN + 1):
        same = sorted_keys[span:] == sorted_keys[:-span]
        if not same.any():
            break
        found.append(np.stack((sorted_rows[:-span][same], sorted_rows[span:][same]), axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    return np.sort(np.concatenate(found), axis=1).astype(np.int64)


def candidate_pairs(keys: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Row pairs ``(a, b)`` with ``a < b`` sharing a key in at least one band, as ``(k, 2)`` int64."""
    rows = np.flatnonzero(eligible)
    found = [band_pairs(keys[rows, band], rows) for band in range(keys.shape[1])]
    found = [pairs for pairs in found if len(pairs)]
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(found), axis=0)


def estimated_jaccard(signatures: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Share of equal signature slots for each ``(left[i], right[i])`` pair."""
    out = np.empty(len(left), dtype=np.float64)
    for start in range(0, len(left), _VERIFY_BATCH):
        stop = start + _VERIFY_BATCH
        out[start:stop] = (signatures[left[start:stop]] == signatures[right[start:stop]]).mean(axis=1)
    return out


def connected_components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Component label (the smallest member index) of each of ``n`` nodes, given edges.

    Min-label propagation with pointer jumping in numpy, instead of a Python union-find loop:
    a handful of vectorized passes even for millions of edges.
    """
    labels = np.arange(n, dtype=np.int64)
    if len(left) == 0:
        return labels
    while True:
        before = labels.copy()
        low = np.minimum(labels[left], labels[right])
        np.minimum.at(labels, left, low)
        np.minimum.at(labels, right, low)
        labels = labels[labels]
        labels = labels[labels]
        if np.array_equal(labels, before):
            return labels


def _union(root: np.ndarray, left_roots: np.ndarray, right_roots: np.ndarray) -> None:
    """Join the clusters of each ``(left_roots[i], right_roots[i])`` in ``root`` (in place).

    ``root`` is kept fully compressed (every node points at its cluster's root, the smallest
    member), which is path compression done for all nodes at once: each find is one gather.
    """
    if len(left_roots) == 0:
        return
    nodes = _sorted_unique(np.concatenate((left_roots, right_roots)))
    local = connected_components(len(nodes), np.searchsorted(nodes, left_roots), np.searchsorted(nodes, right_roots))
    root[nodes] = nodes[local]  # ``nodes`` is sorted: the smallest local label is the smallest root
    root[:] = root[root]


def _known(table: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per key, whether it is in the sorted ``table``."""
    if len(table) == 0 or len(keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    position = np.minimum(np.searchsorted(table, keys), len(table) - 1)
    return table[position] == keys


def union_find_components(
    signatures: np.ndarray, sets: ShingleSets, params: NearDupParams, stats: dict | None = None
) -> np.ndarray:
    """Component label (the smallest member) of each text: the same partition as checking every
    candidate pair exactly (``verified_pairs`` + ``connected_components``), with far fewer checks.

    Band by band, the band's candidate pairs whose texts are already in one cluster are skipped
    (they would join nothing), and so are pairs already rejected in an earlier band. The rest
    are checked in Boruvka rounds: each cluster picks its best crossing candidate (highest
    estimated Jaccard, so clusters join early and through their closest pairs); the picked pairs
    are checked exactly in one vectorized batch, the accepted ones joined, and the round repeats
    on the pairs still crossing two clusters (after ``_FULL_ROUNDS`` rounds, all of them at once).
    A cluster of ``k`` copies thus costs about ``k - 1`` exact checks instead of ``k (k - 1) / 2``.

    Every candidate is either checked like in the exhaustive path or skipped because its two
    texts are already joined by accepted pairs, so the connected components are the same.

    Args:
        stats: if given, receives counts: ``candidates`` (pairs met, with repeats across bands),
            ``skipped``, ``estimate_rejected``, ``checked``, ``accepted``, ``rounds``.
    """
    n = len(signatures)
    root = np.arange(n, dtype=np.int64)
    counters = dict.fromkeys(("candidates", "skipped", "estimate_rejected", "checked", "accepted", "rounds"), 0)
    eligible = np.flatnonzero(sets.sizes() > 0)
    bands, rows = params.band_layout()
    rejected = np.empty(0, dtype=np.int64)  # sorted ``a * n + b`` of pairs that failed a check
    floor = params.threshold - ESTIMATE_REJECT_MARGIN
    for band in range(bands if len(eligible) > 1 else 0):
        columns = signatures[eligible, band * rows : (band + 1) * rows]
        pairs = band_pairs(_key_of_columns(columns, band), eligible)
        counters["candidates"] += len(pairs)
        pairs = pairs[root[pairs[:, 0]] != root[pairs[:, 1]]]
        pairs = pairs[~_known(rejected, pairs[:, 0] * n + pairs[:, 1])]
        if len(pairs) == 0:
            continue
        estimate = estimated_jaccard(signatures, pairs[:, 0], pairs[:, 1])
        low = estimate < floor
        counters["estimate_rejected"] += int(low.sum())
        failed = [pairs[low, 0] * n + pairs[low, 1]]
        pairs = pairs[~low][np.argsort(-estimate[~low], kind="stable")]
        for round_number in range(len(pairs)):
            left_root, right_root = root[pairs[:, 0]], root[pairs[:, 1]]
            crossing = left_root != right_root
            pairs, left_root, right_root = pairs[crossing], left_root[crossing], right_root[crossing]
            if len(pairs) == 0:
                break
            counters["rounds"] += 1
            if round_number < _FULL_ROUNDS:
                # Boruvka: each cluster's first (best) crossing pair; at most one per cluster.
                best = np.full(n, len(pairs), dtype=np.int64)
                position = np.arange(len(pairs), dtype=np.int64)
                np.minimum.at(best, left_root, position)
                np.minimum.at(best, right_root, position)
                chosen = np.zeros(len(pairs), dtype=bool)
                chosen[best[best < len(pairs)]] = True
            else:
                chosen = np.ones(len(pairs), dtype=bool)
            similarity = sets.jaccard(pairs[chosen, 0], pairs[chosen, 1])
            accepted = similarity >= params.threshold
            counters["checked"] += len(similarity)
            counters["accepted"] += int(accepted.sum())
            _union(root, left_root[chosen][accepted], right_root[chosen][accepted])
            failed.append(pairs[chosen][~accepted, 0] * n + pairs[chosen][~accepted, 1])
            pairs = pairs[~chosen]
        rejected = np.sort(np.concatenate([rejected, *failed]))
    counters["skipped"] = counters["candidates"] - counters["estimate_rejected"] - counters["checked"]
    if stats is not None:
        stats.update(counters)
    return root


@dataclass(frozen=True)
class ShingleSets:
    """Exact shingle sets of some documents, as sorted unique ``uint32`` hashes in one flat buffer.

    Attributes:
        values: every document's sorted unique shingle hashes (top 32 bits), concatenated.
        offsets: ``len(docs) + 1`` positions into ``values``.
        slot_of: per unique text, its position in ``offsets`` (-1 if its set was not built).
    """

    values: np.ndarray
    offsets: np.ndarray
    slot_of: np.ndarray

    def sizes(self) -> np.ndarray:
        """The set size of every text (``slot_of``'s index; -1 where no set was built)."""
        return np.where(self.slot_of >= 0, np.diff(self.offsets)[np.maximum(self.slot_of, 0)], -1)

    def jaccard(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Exact Jaccard of the shingle sets of each ``(left[i], right[i])`` pair of unique texts.

        Pairs are processed in batches of about ``_VERIFY_ELEMENTS`` set elements: each batch's
        elements are keyed ``pair << 32 | hash``, which makes both sides globally sorted, so one
        ``searchsorted`` counts every intersection (no Python loop per pair).
        """
        out = np.empty(len(left), dtype=np.float64)
        if len(left) == 0:
            return out
        lengths = np.diff(self.offsets)
        slot_left, slot_right = self.slot_of[left], self.slot_of[right]
        if (slot_left < 0).any() or (slot_right < 0).any():
            raise ValueError("a pair refers to a text whose shingle set was not built")
        size_left, size_right = lengths[slot_left], lengths[slot_right]
        cumulative = np.cumsum(size_left + size_right)
        # Batches of at most _VERIFY_ELEMENTS elements, shared by the worker threads (numpy's
        # searchsorted releases the GIL).
        bounds, start = [], 0
        while start < len(left):
            limit = (cumulative[start - 1] if start else 0) + _VERIFY_ELEMENTS
            stop = max(start + 1, int(np.searchsorted(cumulative, limit, side="right")))
            bounds.append((start, stop))
            start = stop

        def run(bound: tuple[int, int]) -> None:
            start, stop = bound
            batch = slice(start, stop)
            keys_left = self._keys(slot_left[batch], size_left[batch])
            keys_right = self._keys(slot_right[batch], size_right[batch])
            found = np.searchsorted(keys_right, keys_left)
            found[found == len(keys_right)] = 0
            hit = keys_right[found] == keys_left
            pair_of_hit = (keys_left[hit] >> np.uint64(32)).astype(np.int64)
            intersection = np.bincount(pair_of_hit, minlength=stop - start)
            union = size_left[batch] + size_right[batch] - intersection
            out[batch] = intersection / np.maximum(union, 1)

        if _WORKERS == 1 or len(bounds) == 1:
            for bound in bounds:
                run(bound)
        else:
            with ThreadPoolExecutor(_WORKERS) as pool:
                list(pool.map(run, bounds))
        return out

    def _keys(self, slots: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """``pair << 32 | hash`` for every element of the sets at ``slots`` (pair = batch position)."""
        total = int(sizes.sum())
        firsts = np.cumsum(sizes) - sizes
        index = np.repeat(self.offsets[slots] - firsts, sizes) + np.arange(total)
        pair = np.repeat(np.arange(len(slots), dtype=np.uint64), sizes)
        return (pair << np.uint64(32)) | self.values[index].astype(np.uint64)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` by sort + neighbour mask: numpy 2.4's hash-based ``np.unique`` was ~100x slower
    on millions of 64-bit integers in our measurements."""
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def shingle_sets(normalized: pl.Series, docs: np.ndarray, params: NearDupParams) -> ShingleSets:
    """The exact shingle sets of the unique texts ``docs`` (shingled again, ``chunk_size`` at a time).

    ``sketch`` builds the sets of every text in its single pass; this builds them for some texts
    only. Hashes are cut to their top 32 bits: two different shingles collide with probability
    ~2^-32, which moves a Jaccard by far less than the 1/|union| resolution of any real text.
    """

    def build(start: int, stop: int) -> np.ndarray:
        values, local_counts = _set_values(_shingles(normalized.gather(docs[start:stop]), params), stop - start)
        counts[start:stop] = local_counts
        return values

    counts = np.zeros(len(docs), dtype=np.int64)
    values_parts = _in_worker_threads(build, len(docs), params.chunk_size)
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    slot_of = np.full(len(normalized), -1, dtype=np.int64)
    slot_of[docs] = np.arange(len(docs))
    values = np.concatenate(values_parts) if values_parts else np.empty(0, dtype=np.uint32)
    return ShingleSets(values, offsets, slot_of)


def verified_pairs(
    signatures: np.ndarray,
    has_shingles: np.ndarray,
    normalized: pl.Series,
    params: NearDupParams,
    sets: ShingleSets | None = None,
) -> tuple[pl.DataFrame, ShingleSets]:
    """EVERY candidate pair whose exact Jaccard reaches the threshold, and the sets that checked them.

    The exhaustive check (each candidate pair is checked, also inside a cluster that other pairs
    already joined): the reference for ``union_find_components`` and the source of
    ``near_duplicate_pairs``. Given ``sets`` (e.g. from ``sketch``), texts are not shingled again.

    Returns:
        ``(pairs, sets)``: columns ``left, right, similarity`` (exact Jaccard), and the shingle
        sets of every text in a surviving candidate pair (reused for similarities to the kept row).
    """
    bands, rows = params.band_layout()
    keys = band_keys(signatures, bands, rows)
    pairs = candidate_pairs(keys, has_shingles)
    del keys
    # The estimate is ~4 standard deviations from the truth at this margin: it discards the many
    # clearly dissimilar candidates of the permissive banding before the exact (costlier) check.
    estimate = estimated_jaccard(signatures, pairs[:, 0], pairs[:, 1])
    pairs = pairs[estimate >= params.threshold - ESTIMATE_REJECT_MARGIN]
    if sets is None:
        sets = shingle_sets(normalized, _sorted_unique(pairs.ravel()), params)
    similarity = sets.jaccard(pairs[:, 0], pairs[:, 1])
    keep = similarity >= params.threshold
    frame = pl.DataFrame(
        {"left": pairs[keep, 0], "right": pairs[keep, 1], "similarity": similarity[keep]},
        schema={"left": pl.Int64, "right": pl.Int64, "similarity": pl.Float64},
    )
    return frame, sets


def near_duplicate_pairs(texts: Sequence[str], *, params: NearDupParams = NearDupParams()) -> pl.DataFrame:
    """Verified near-duplicate pairs by input position (exact duplicates not included).

    Useful to inspect or evaluate the edges behind the clusters of ``near_duplicate_clusters``:
    this checks every candidate pair (``verified_pairs``), so it costs what the clustering's
    union-find avoids, quadratic in the size of a cluster. Rows with equal normalized text are
    collapsed first; a pair is reported between the first rows of two groups.

    Returns:
        Columns ``left``, ``right`` (0-based input positions, ``left < right``) and ``similarity``.
    """
    first_rows, _, normalized, signatures, sets = _normalize_and_sketch(texts, params)
    pairs, _ = verified_pairs(signatures, sets.sizes() > 0, normalized.gather(first_rows), params, sets)
    return pairs.with_columns(
        pl.Series("left", first_rows[pairs["left"].to_numpy()]),
        pl.Series("right", first_rows[pairs["right"].to_numpy()]),
    )


def _group_normalized(normalized: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(first input row of each unique normalized text, unique index per row)``.

    The unique index follows the order of first occurrence. A window over the text column finds
    each row's first occurrence without copying the unique texts out (a ``group_by`` would: a
    second copy of most of the corpus at 1M documents).
    """
    frame = normalized.to_frame("normalized").with_row_index("row")
    first = frame.select(pl.col("row").first().over("normalized"))["row"].to_numpy().astype(np.int64)
    first_rows = np.flatnonzero(first == np.arange(len(first)))
    return first_rows, np.searchsorted(first_rows, first)


def _normalize_and_sketch(
    texts: Sequence[str], params: NearDupParams
) -> tuple[np.ndarray, np.ndarray, pl.Series, np.ndarray, ShingleSets]:
    """Exact groups, signatures and sets of the unique texts, normalizing and sketching at once.

    ``_sketch_chunks`` over ``texts`` in ``chunk_size`` slices, keeping the normalized texts
    (exact groups by text equality).

    Returns:
        ``(first_rows, unique_of_row, normalized, signatures, sets)``: ``normalized`` has every
        row (``normalized.gather(first_rows)`` are the unique texts), signatures and sets are
        indexed by unique text.
    """
    chunks = (texts[start : start + params.chunk_size] for start in range(0, len(texts), params.chunk_size))
    sketched = _sketch_chunks(chunks, params, keep_normalized=True, capacity=len(texts))
    return sketched.first_rows, sketched.unique_of_row, sketched.normalized, sketched.signatures, sketched.sets


@dataclass
class _Sketched:
    first_rows: np.ndarray
    unique_of_row: np.ndarray
    normalized: pl.Series | None
    signatures: np.ndarray
    sets: ShingleSets


def _text_keys(normalized: list[str]) -> np.ndarray:
    """A 128-bit BLAKE2b digest per normalized text, as ``(n, 2)`` ``uint64``: the exact-duplicate
    key of the streamed path, where the texts themselves are not kept (a collision is ~2^-128)."""
    digests = b"".join(
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest() for text in normalized
    )
    return np.frombuffer(digests, dtype=np.uint64).reshape(len(normalized), 2)


def _group_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_group_normalized`` over ``_text_keys`` instead of the texts."""
    frame = pl.DataFrame({"a": keys[:, 0], "b": keys[:, 1]}).with_row_index("row")
    first = frame.select(pl.col("row").first().over("a", "b"))["row"].to_numpy().astype(np.int64)
    first_rows = np.flatnonzero(first == np.arange(len(first)))
    return first_rows, np.searchsorted(first_rows, first)


def sketch_in_workers(
    chunks: Iterable[Sequence[str | None]],
    params: NearDupParams,
    work: Callable[[pl.Series, int], T],
    collect: Callable[[T], None],
    keep: Callable[[list[str], pl.Series], None],
    *,
    capacity: int | None,
) -> int:
    """Normalize a stream of text chunks here and sketch them in worker threads; the row count.

    Normalization is Python (it holds the GIL) and sketching mostly is not, so the main thread
    normalizes the next ``params.chunk_size`` piece while the workers run ``work(slice, first_row)``
    on the previous one, at most about one chunk ahead (a fast producer cannot pile texts up);
    ``collect`` gets each result in row order, ``keep(texts, normalized)`` each piece as it is
    normalized. A worker's slice is at most ``_SLICE_DOCS`` documents: its shingles' transient
    arrays (~50 bytes per shingle) are what a streamed index's peak is made of, not the chunk.

    Raises:
        ValueError: more rows come than ``capacity``.
    """
    step = max(1, min(params.chunk_size // _WORKERS, _SLICE_DOCS))
    # One chunk's slices queued behind the ones running: enough for the workers never to wait on
    # the main thread's normalizing, and each queued slice holds its normalized texts.
    in_flight = max(_WORKERS, 1) * -(-params.chunk_size // (step * max(_WORKERS, 1)))
    pending: collections.deque = collections.deque()
    n = 0
    with ThreadPoolExecutor(max(_WORKERS, 1)) as pool:
        for chunk in chunks:
            for piece_start in range(0, len(chunk), params.chunk_size):
                texts = normalize_many(chunk[piece_start : piece_start + params.chunk_size])
                normalized = pl.Series("normalized", texts, dtype=pl.String)
                keep(texts, normalized)
                del texts
                if capacity is not None and n + len(normalized) > capacity:
                    raise ValueError(f"more than the announced {capacity} texts")
                for offset in range(0, len(normalized), step):
                    pending.append(pool.submit(work, normalized[offset : offset + step], n + offset))
                n += len(normalized)
                while len(pending) > in_flight:
                    collect(pending.popleft().result())
        while pending:
            collect(pending.popleft().result())
    return n


def _sketch_chunks(
    chunks: Iterable[Sequence[str | None]], params: NearDupParams, *, keep_normalized: bool, capacity: int | None
) -> _Sketched:
    """Exact groups, signatures and sets of the unique texts of a stream of text chunks.

    Normalization is Python (it holds the GIL) and sketching mostly is not, so the main thread
    normalizes chunk ``k + 1`` while the worker threads sketch chunk ``k`` (at most one chunk
    ahead, so a fast producer cannot pile texts up). Every row is sketched (rows that turn out to
    be exact duplicates too, a few percent of the work), then signatures are compacted to the
    unique texts in place and the sets indexed through ``slot_of``.

    With ``keep_normalized`` the normalized texts are kept and grouped by equality (the in-memory
    path); without, only a 128-bit digest of each is (``_text_keys``), so memory holds the
    signatures, the sets and 16 bytes per row, never the documents. ``capacity`` (the number of
    rows, when known) lets the signatures be allocated once.
    """
    signature_parts: list[np.ndarray] = []
    count_parts: list[np.ndarray] = []
    normalized_parts: list[pl.Series] = []
    key_parts: list[np.ndarray] = []
    signatures = np.zeros((capacity, params.num_perm), dtype=np.uint32) if capacity is not None else None

    def work(chunk: pl.Series, start: int) -> tuple[np.ndarray, np.ndarray]:
        values, local_counts = _set_values(_shingles(chunk, params), len(chunk))
        offsets = np.zeros(len(chunk) + 1, dtype=np.uint64)
        np.cumsum(local_counts, out=offsets[1:])
        if signatures is not None:
            _digest_rows(values, offsets, params, signatures[start : start + len(chunk)])
            return values, local_counts, None
        rows = np.empty((len(chunk), params.num_perm), dtype=np.uint32)
        _digest_rows(values, offsets, params, rows)
        return values, local_counts, rows

    value_parts: list[np.ndarray] = []

    def collect(result) -> None:
        values, local_counts, rows = result
        value_parts.append(values)
        count_parts.append(local_counts)
        if rows is not None:
            signature_parts.append(rows)

    def keep(texts: list[str], normalized: pl.Series) -> None:
        if keep_normalized:
            normalized_parts.append(normalized)
        else:
            key_parts.append(_text_keys(texts))

    n = sketch_in_workers(chunks, params, work, collect, keep, capacity=capacity)
    if signatures is None:
        signatures = (
            np.concatenate(signature_parts) if signature_parts else np.zeros((0, params.num_perm), dtype=np.uint32)
        )
        del signature_parts
    else:
        signatures = signatures[:n]
    counts = np.concatenate(count_parts) if count_parts else np.zeros(0, dtype=np.int64)
    if keep_normalized:
        normalized = (
            pl.concat(normalized_parts, rechunk=False)
            if normalized_parts
            else pl.Series("normalized", [], dtype=pl.String)
        )
        del normalized_parts
        first_rows, unique_of_row = _group_normalized(normalized)
    else:
        normalized = None
        keys = np.concatenate(key_parts) if key_parts else np.zeros((0, 2), dtype=np.uint64)
        del key_parts
        first_rows, unique_of_row = _group_keys(keys)
        del keys
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    values = np.empty(int(offsets[-1]), dtype=np.uint32)
    value_parts.reverse()
    position = 0
    while value_parts:  # one buffer, freeing each chunk as it is copied
        part = value_parts.pop()
        values[position : position + len(part)] = part
        position += len(part)
    # Compact the signatures to the unique texts in place: first_rows is increasing with
    # first_rows[i] >= i, so a block never reads a row an earlier block overwrote.
    unique = len(first_rows)
    if unique < n:
        for start in range(0, unique, 65_536):
            block = slice(start, min(start + 65_536, unique))
            signatures[block] = signatures[first_rows[block]]
        signatures = signatures[:unique]
    return _Sketched(first_rows, unique_of_row, normalized, signatures, ShingleSets(values, offsets, first_rows))


def near_duplicate_clusters(
    ids: Sequence[str],
    texts: Sequence[str],
    *,
    params: NearDupParams = NearDupParams(),
    priority: Sequence[float] | None = None,
    verification: str = "union-find",
) -> pl.DataFrame:
    """Cluster exact and near-duplicate rows and pick one row to keep per cluster.

    Args:
        ids: one id per row (unique).
        texts: the text compared, one per row (``None`` counts as empty).
        params: shingling, MinHash and LSH parameters.
        priority: optional score per row; the highest is kept (ties: earliest row; None and NaN
            rank lowest).
        verification: ``union-find`` (check only candidates that would join two clusters) or
            ``exhaustive`` (check every candidate pair); both give the same result.

    Returns:
        One row per input, in input order: ``id``, ``cluster_id`` (the kept row's id), ``kept``,
        ``duplicate_of`` (the kept row's id, null when kept) and ``similarity`` (exact Jaccard of
        the shingle sets with the kept row, 1.0 for an exact duplicate, null when kept).

    Raises:
        ValueError: if the lengths differ or ids repeat.
    """
    n = len(texts)
    if len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} texts")
    if priority is not None and len(priority) != n:
        raise ValueError(f"{len(priority)} priorities for {n} texts")
    id_series = pl.Series("id", [str(value) for value in ids], dtype=pl.String)
    _check_ids_and_verification(id_series, verification)
    if n == 0:
        return _empty_clusters()
    first_rows, unique_of_row, normalized, signatures, sets = _normalize_and_sketch(texts, params)
    del normalized  # the sets and signatures are all that verification needs
    return _clusters(id_series, first_rows, unique_of_row, signatures, sets, params, priority, verification)


def near_duplicate_clusters_chunks(
    chunks: Iterable[tuple[Sequence[str], Sequence[str | None]]],
    *,
    params: NearDupParams = NearDupParams(),
    verification: str = "union-find",
    capacity: int | None = None,
) -> pl.DataFrame:
    """``near_duplicate_clusters`` over a stream of ``(ids, texts)`` chunks, without keeping the texts.

    Each chunk is normalized and sketched as it comes and dropped; what stays is the ids, the
    signatures, the shingle sets and a 128-bit digest per normalized text (the exact-duplicate
    key), so memory does not hold the documents (e.g. texts streamed from the catalog). The
    result is the one ``near_duplicate_clusters`` gives for the concatenated chunks (no
    ``priority``: the earliest row of a cluster is kept).

    Args:
        chunks: ``(ids, texts)`` pairs of equal length, in input order; any chunk sizes.
        params, verification: as ``near_duplicate_clusters``.
        capacity: the number of rows, when known (signatures are allocated once).

    Raises:
        ValueError: a chunk's lengths differ, ids repeat, or more rows come than ``capacity``.
    """
    if verification not in VERIFICATIONS:
        raise ValueError(f"verification must be one of {VERIFICATIONS}, got {verification!r}")
    id_parts: list[pl.Series] = []

    def texts_of() -> Iterator[Sequence[str | None]]:
        for chunk_ids, chunk_texts in chunks:
            if len(chunk_ids) != len(chunk_texts):
                raise ValueError(f"{len(chunk_ids)} ids for {len(chunk_texts)} texts in a chunk")
            id_parts.append(pl.Series("id", [str(value) for value in chunk_ids], dtype=pl.String))
            yield chunk_texts

    sketched = _sketch_chunks(texts_of(), params, keep_normalized=False, capacity=capacity)
    id_series = pl.concat(id_parts) if id_parts else pl.Series("id", [], dtype=pl.String)
    id_parts.clear()
    _check_ids_and_verification(id_series, verification)
    if id_series.is_empty():
        return _empty_clusters()
    return _clusters(
        id_series,
        sketched.first_rows,
        sketched.unique_of_row,
        sketched.signatures,
        sketched.sets,
        params,
        None,
        verification,
    )


def _check_ids_and_verification(id_series: pl.Series, verification: str) -> None:
    if id_series.n_unique() != len(id_series):
        raise ValueError("ids must be unique")
    if verification not in VERIFICATIONS:
        raise ValueError(f"verification must be one of {VERIFICATIONS}, got {verification!r}")


def _empty_clusters() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "id": pl.String,
            "cluster_id": pl.String,
            "kept": pl.Boolean,
            "duplicate_of": pl.String,
            "similarity": pl.Float64,
        }
    )


def _clusters(
    id_series: pl.Series,
    first_rows: np.ndarray,
    unique_of_row: np.ndarray,
    signatures: np.ndarray,
    sets: ShingleSets,
    params: NearDupParams,
    priority: Sequence[float] | None,
    verification: str,
) -> pl.DataFrame:
    """Clusters and representatives from the exact groups, signatures and sets of the unique texts."""
    component_of_unique = components(signatures, sets, params, verification)
    del signatures
    return cluster_frame(id_series, unique_of_row, component_of_unique, sets, priority)


def components(signatures: np.ndarray, sets: ShingleSets, params: NearDupParams, verification: str) -> np.ndarray:
    """Component label (the smallest member) of each text given its signature and shingle set,
    by ``union_find_components`` or, for ``verification="exhaustive"``, by checking every pair."""
    if verification == "exhaustive":
        # Given the sets, verified_pairs never shingles again: it needs no texts.
        pairs, _ = verified_pairs(signatures, sets.sizes() > 0, pl.Series([], dtype=pl.String), params, sets)
        return connected_components(len(signatures), pairs["left"].to_numpy(), pairs["right"].to_numpy())
    return union_find_components(signatures, sets, params)


def cluster_frame(
    id_series: pl.Series,
    unique_of_row: np.ndarray,
    component_of_unique: np.ndarray,
    sets: ShingleSets,
    priority: Sequence[float] | None,
) -> pl.DataFrame:
    """The clusters frame (``near_duplicate_clusters``'s result) from the component of each unique
    text: representatives by priority then input order, and the exact Jaccard of every near (not
    exact) duplicate with its representative (``sets`` needs only the texts in clusters of two or
    more unique texts)."""
    n = len(id_series)
    n_unique = len(component_of_unique)
    component = component_of_unique[unique_of_row]

    if priority is None:
        score = np.full(n, -np.inf)
    else:
        score = pl.Series(list(priority), dtype=pl.Float64, strict=False).fill_null(np.nan).to_numpy()
        score = np.where(np.isnan(score), -np.inf, score)
    rows = np.arange(n)
    # Lexsort: last key is primary -> by component, then highest score, then earliest row.
    order = np.lexsort((rows, -score, component))
    is_first = np.ones(n, dtype=bool)
    is_first[1:] = component[order][1:] != component[order][:-1]
    rep_rows = order[is_first]
    representative_of_component = np.zeros(n_unique, dtype=np.int64)
    representative_of_component[component[rep_rows]] = rep_rows
    representative = representative_of_component[component]

    kept = representative == rows
    similarity = np.ones(n, dtype=np.float64)
    # Only near (not exact) duplicates need a Jaccard (``sketch`` built every text's set).
    near = unique_of_row != unique_of_row[representative]
    similarity[near] = sets.jaccard(unique_of_row[near], unique_of_row[representative[near]])
    frame = pl.DataFrame(
        {"id": id_series, "cluster_id": id_series.gather(representative), "kept": kept, "similarity": similarity}
    )
    return frame.select(
        "id",
        "cluster_id",
        "kept",
        pl.when(~pl.col("kept")).then(pl.col("cluster_id")).alias("duplicate_of"),
        pl.when(~pl.col("kept")).then(pl.col("similarity")).alias("similarity"),
    )
