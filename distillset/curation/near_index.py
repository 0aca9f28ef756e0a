"""The near-duplicate index in two streamed passes: band keys for every text, sketches for few.

``near_dedup.near_duplicate_clusters_chunks`` kept, per unique text, its MinHash signature
(``num_perm`` x 4 bytes) and its exact shingle set (4 bytes per shingle): ~1.1-1.5 KB per answer,
~1.5 GB at a million answers. Most texts have no near duplicate, and for them the signature and
the set are never looked at again once their band keys are known. So:

1. Pass 1 streams the texts: each chunk is normalized, shingled and sketched like before
   (``near_dedup._sketch_chunks``'s threads and slices), but only the LSH band keys, cut to their
   low 32 bits (``bands`` x 4 bytes), the set size and a 128-bit digest of the normalized text
   (the exact-duplicate key) outlive the chunk. After exact duplicates are grouped, a unique text
   is a *candidate* if it shares a (32-bit) band key with another eligible (non-empty) unique text
   in some band.
2. Pass 2 reads again only the candidates' texts, by id (``texts_of_ids``, e.g. a semi join on
   the catalog table), sketches them (signatures and exact sets), and runs the same verification
   (``near_dedup.components``) on that subset.

The result is identical to the one-pass index: a text in no band bucket with another text is in
no candidate pair, so it is alone in its component; every bucket with two or more texts is kept
whole in the subset (two texts with equal 64-bit keys have equal 32-bit ones; a 32-bit collision
only adds a text to the subset, where pass 2's 64-bit keys pair it as the one-pass index does), in
the same (stable, by position) order, so ``band_pairs`` yields the same pairs and the
verification the same components (labels are the smallest member, and the subset
keeps the order of positions). Similarities to the representative only concern texts in
clusters, which are candidates, so their sets were built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from distillset.curation import near_dedup
from distillset.curation.near_dedup import NearDupParams, ShingleSets

_CANDIDATE_KEY_BITS = 32
"""Bits of a band key pass 1 keeps (at most 32, the keys' ``uint32``); fewer only find more
candidates (the tests use a few bits to force collisions)."""

TextsOfIds = Callable[[pl.Series], Iterable[tuple[Sequence[str], Sequence[str | None]]]]
"""Given ids (a ``String`` series), the ``(ids, texts)`` chunks of exactly those rows, any order,
with the texts pass 1 saw for them."""


@dataclass
class BandIndex:
    """What pass 1 keeps: exact groups, and per unique text its band keys and set size.

    Attributes:
        ids: every row's id, in input order.
        first_rows: the first row of each unique normalized text.
        unique_of_row: per row, its unique text.
        keys: ``(unique, bands)`` ``uint32`` band keys, the low half of the 64-bit ones
            (meaningless for an empty set).
        sizes: per unique text, the number of distinct shingles.
    """

    ids: pl.Series
    first_rows: np.ndarray
    unique_of_row: np.ndarray
    keys: np.ndarray
    sizes: np.ndarray

    def candidates(self) -> np.ndarray:
        """The sorted unique texts sharing a band key with another eligible unique text."""
        eligible = np.flatnonzero(self.sizes > 0)
        found = np.zeros(len(self.sizes), dtype=bool)
        for band in range(self.keys.shape[1] if len(eligible) > 1 else 0):
            column = self.keys[eligible, band]
            order = np.argsort(column, kind="stable")
            same = column[order][1:] == column[order][:-1]
            found[eligible[order[1:][same]]] = True
            found[eligible[order[:-1][same]]] = True
        return np.flatnonzero(found)


def band_index_chunks(
    chunks: Iterable[tuple[Sequence[str], Sequence[str | None]]], params: NearDupParams, capacity: int | None
) -> BandIndex:
    """Pass 1: the band keys, set sizes and exact groups of a stream of ``(ids, texts)`` chunks.

    Like ``near_dedup._sketch_chunks`` (both drive ``near_dedup.sketch_in_workers``), the main
    thread normalizes the next chunk while worker threads shingle and sketch the previous one; here
    a worker reduces its slice's signatures to band keys at once, so only ``bands`` x 4 bytes per
    row stay (plus 16 for the text digest): 32 bits are plenty to find the candidates (at a
    million texts, ~120 chance collisions per band, each a text sketched again for nothing) and
    halve the state kept for every text.

    Raises:
        ValueError: a chunk's lengths differ, or more rows come than ``capacity``.
    """
    bands, rows = params.band_layout()
    mask = np.uint64((1 << _CANDIDATE_KEY_BITS) - 1)
    keys = np.zeros((capacity, bands), dtype=np.uint32) if capacity is not None else None
    key_parts: list[np.ndarray] = []
    size_parts: list[np.ndarray] = []
    digest_parts: list[np.ndarray] = []
    id_parts: list[pl.Series] = []

    def work(chunk: pl.Series, start: int) -> tuple[np.ndarray, np.ndarray | None]:
        values, counts = near_dedup._set_values(near_dedup._shingles(chunk, params), len(chunk))
        offsets = np.zeros(len(chunk) + 1, dtype=np.uint64)
        np.cumsum(counts, out=offsets[1:])
        signatures = np.empty((len(chunk), params.num_perm), dtype=np.uint32)
        near_dedup._digest_rows(values, offsets, params, signatures)
        del values
        out = keys[start : start + len(chunk)] if keys is not None else np.empty((len(chunk), bands), np.uint32)
        for band in range(bands):
            # The low bits only; pass 2 compares the candidates' full 64-bit keys.
            out[:, band] = near_dedup._key_of_columns(signatures[:, band * rows : (band + 1) * rows], band) & mask
        return counts.astype(np.int32), None if keys is not None else out

    def collect(result: tuple[np.ndarray, np.ndarray | None]) -> None:
        counts, part = result
        size_parts.append(counts)
        if part is not None:
            key_parts.append(part)

    def texts_of() -> Iterator[Sequence[str | None]]:
        for chunk_ids, chunk_texts in chunks:
            if len(chunk_ids) != len(chunk_texts):
                raise ValueError(f"{len(chunk_ids)} ids for {len(chunk_texts)} texts in a chunk")
            id_parts.append(pl.Series("id", [str(value) for value in chunk_ids], dtype=pl.String))
            yield chunk_texts

    n = near_dedup.sketch_in_workers(
        texts_of(),
        params,
        work,
        collect,
        lambda texts, _normalized: digest_parts.append(near_dedup._text_keys(texts)),
        capacity=capacity,
    )
    if keys is None:
        keys = np.concatenate(key_parts) if key_parts else np.zeros((0, bands), dtype=np.uint32)
        del key_parts
    else:
        keys = keys[:n]
    sizes = np.concatenate(size_parts) if size_parts else np.zeros(0, dtype=np.int32)
    ids = pl.concat(id_parts) if id_parts else pl.Series("id", [], dtype=pl.String)
    digests = np.concatenate(digest_parts) if digest_parts else np.zeros((0, 2), dtype=np.uint64)
    digest_parts.clear()  # (cleared, not deleted: the closures above name them)
    id_parts.clear()
    first_rows, unique_of_row = near_dedup._group_keys(digests)
    del digests
    unique = len(first_rows)
    if unique < n:  # compact to the unique texts in place (first_rows[i] >= i, increasing)
        for start in range(0, unique, 65_536):
            block = slice(start, min(start + 65_536, unique))
            keys[block] = keys[first_rows[block]]
        keys = keys[:unique]
    return BandIndex(ids, first_rows, unique_of_row, keys, sizes[first_rows])


def sketch_candidates(
    index: BandIndex, candidates: np.ndarray, texts_of_ids: TextsOfIds, params: NearDupParams
) -> tuple[np.ndarray, ShingleSets]:
    """Pass 2: signatures and exact sets of the unique texts ``candidates``, read by id.

    Returns:
        ``(signatures, sets)`` indexed by position in ``candidates`` (``sets.slot_of`` maps such a
        position to its set).

    Raises:
        ValueError: the reader returned other ids than asked, or texts that differ from pass 1's
            (another set size, or two candidates with one normalized text).
    """
    wanted = index.ids.gather(index.first_rows[candidates])
    arrived: list[pl.Series] = []

    def texts() -> Iterator[Sequence[str | None]]:
        for chunk_ids, chunk_texts in texts_of_ids(wanted):
            if len(chunk_ids) != len(chunk_texts):
                raise ValueError(f"{len(chunk_ids)} ids for {len(chunk_texts)} texts in a chunk")
            arrived.append(pl.Series("id", [str(value) for value in chunk_ids], dtype=pl.String))
            yield chunk_texts

    sketched = near_dedup._sketch_chunks(texts(), params, keep_normalized=False, capacity=len(candidates))
    arrival = pl.concat(arrived) if arrived else pl.Series("id", [], dtype=pl.String)
    position = (
        pl.DataFrame({"id": wanted})
        .join(pl.DataFrame({"id": arrival, "at": np.arange(len(arrival))}), on="id", how="left", maintain_order="left")
        .get_column("at")
    )
    if len(arrival) != len(wanted) or position.null_count() or len(sketched.first_rows) != len(arrival):
        raise ValueError("the second pass did not return each candidate's text exactly once")
    order = position.to_numpy().astype(np.int64)
    sets = ShingleSets(sketched.sets.values, sketched.sets.offsets, order)
    if not np.array_equal(sets.sizes(), index.sizes[candidates]):
        raise ValueError("texts changed between the two passes of the near-duplicate index")
    return sketched.signatures[order], sets


def two_pass_clusters(
    chunks: Iterable[tuple[Sequence[str], Sequence[str | None]]],
    texts_of_ids: TextsOfIds,
    *,
    params: NearDupParams,
    verification: str,
    capacity: int | None,
) -> pl.DataFrame:
    """``near_duplicate_clusters`` of the concatenated chunks (no priority), in two streamed passes.

    Memory holds ~``bands`` x 4 + 20 bytes and an id per row, then the signatures and sets of the
    candidates only (see the module docstring); ``texts_of_ids`` is called once.
    """
    index = band_index_chunks(chunks, params, capacity)
    near_dedup._check_ids_and_verification(index.ids, verification)
    if index.ids.is_empty():
        return near_dedup._empty_clusters()
    candidates = index.candidates()
    index.keys = np.zeros((0, 0), dtype=np.uint64)  # pass 2 recomputes the candidates' keys
    component_of_unique = np.arange(len(index.first_rows), dtype=np.int64)
    slot_of = np.full(len(index.first_rows), -1, dtype=np.int64)
    values, offsets = np.empty(0, dtype=np.uint32), np.zeros(1, dtype=np.int64)
    if len(candidates):
        signatures, sets = sketch_candidates(index, candidates, texts_of_ids, params)
        # The subset keeps the order of positions, so its smallest member is the global one.
        component_of_unique[candidates] = candidates[near_dedup.components(signatures, sets, params, verification)]
        del signatures
        values, offsets = sets.values, sets.offsets
        slot_of[candidates] = sets.slot_of
    return near_dedup.cluster_frame(
        index.ids, index.unique_of_row, component_of_unique, ShingleSets(values, offsets, slot_of), None
    )
