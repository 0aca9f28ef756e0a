"""Benchmark decontamination: find prompts that share an n-gram with a held-out test set.

**What counts as contamination.** A text is contaminated by a benchmark item when they share one
word 13-gram (``DecontamParams.word_ngram``, the GPT-3 paper's choice), after both are normalized
like ``ids.normalize_text`` (NFKC, case-folded, whitespace collapsed) and split into ``\\w+``
tokens (punctuation stripped, so "3 apples, 2 pears" and "3 apples 2 pears" match).

**CJK.** Chinese, Japanese and Korean have no spaces, so a benchmark item whose non-space
characters are at least 30% CJK (``shingles.CJK_SHARE``) is indexed by character 20-grams
(``char_ngram``) over its text with spaces and punctuation removed. Twenty characters are roughly
8-13 Chinese words, the same span as 13 English words. An input is checked against the character
index whenever it contains any CJK character (an English prompt can quote a Chinese question), and
always against the word index (a Chinese prompt can quote an English question).

**Short items.** A benchmark item with fewer than ``n`` units (words, or characters for CJK items)
has no n-gram; it matches when its whole normalized token sequence appears in the input (token
boundaries respected: "add 2" does not match "add 25"). Very short items can therefore match many
inputs; of the shipped ones, only two IFEval prompts (lines 110 and 503, 10-11 words) are short.

**Benchmarks.** ``data/benchmarks/benchmarks.json`` lists the shipped sets (GSM8K test,
IFEval). Users add theirs with ``DISTILLSET_BENCHMARKS`` (or ``--benchmark`` on the command line),
a comma-separated list of entries, each one of::

    path/to/file.jsonl                    name = file stem, text field detected
    name=path/to/file.jsonl               text field detected
    name=path/to/file.jsonl:field         one text field
    name=path/to/file.jsonl:field1+field2 several text fields (each indexed on its own)

Files are local JSONL (one object per line) or Parquet. A field is taken after the last ``:``
only when that part contains no ``/`` or ``\\``, so ``C:/data/x.jsonl`` keeps its drive. The
detected field is the first of ``prompt``, ``question``, ``instruction``, ``text``, ``input``
present in the first row. User benchmarks have license ``unknown``. A field holding a list of
strings (multi-turn items) is indexed as its elements joined by blank lines.

**Index and cache.** Per mode (words, characters) the index is a sorted ``uint64`` array of
n-gram hashes with the benchmark and 1-based row (line) of the first item that has each one;
lookups are one ``searchsorted`` per input n-gram. It is saved as ``.npz`` under ``cache_dir``,
keyed by the sha256 of every benchmark file, the names and fields, the parameters, the polars
version (its string hash is the unit hash) and ``INDEX_VERSION``; a later build with the same
key loads it instead of re-reading the benchmarks.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from distillset import ids as id_rules
from distillset.curation.shingles import CJK_CHARS, cjk_mask, normalize, shingle_hashes, split_units
from distillset.jsonl import iter_json_objects
from distillset.settings.paths import DATA_DIR

BENCHMARKS_DIR = DATA_DIR / "benchmarks"
REGISTRY_PATH = BENCHMARKS_DIR / "benchmarks.json"
INDEX_VERSION = 1
_HASH_SEED = 1309
_FILTER_SIZE = 1 << 24
_DETECTED_FIELDS = ("prompt", "question", "instruction", "text", "input")
_RESULT_SCHEMA = {"id": pl.String, "benchmark": pl.String, "matched_ngram": pl.String, "benchmark_row": pl.Int64}


@dataclass(frozen=True)
class DecontamParams:
    """N-gram sizes of the overlap test.

    Attributes:
        word_ngram: words per n-gram (13 as in the GPT-3 paper).
        char_ngram: characters per n-gram for CJK benchmark items (20, about 8-13 Chinese words).
    """

    word_ngram: int = 13
    char_ngram: int = 20

    def __post_init__(self) -> None:
        if self.word_ngram < 1 or self.char_ngram < 1:
            raise ValueError("word_ngram and char_ngram must be at least 1")


@dataclass(frozen=True)
class Benchmark:
    """A held-out test set: where it is, which fields hold the text, under which license."""

    name: str
    path: Path
    text_fields: tuple[str, ...]
    license: str


def _detect_field(path: Path) -> str:
    first = read_benchmark_rows(path, None).head(1)
    for field in _DETECTED_FIELDS:
        if field in first.columns:
            return field
    raise ValueError(
        f"benchmark {path}: no text field given and none of {', '.join(_DETECTED_FIELDS)} found; "
        "write it as name=path:field"
    )


def parse_benchmark_spec(spec: str) -> list[Benchmark]:
    """Benchmarks from a ``DISTILLSET_BENCHMARKS``-style string (syntax in the module docstring).

    Raises:
        ValueError: a file that does not exist, or no field given and none detected.
    """
    benchmarks = []
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        name, _, location = entry.partition("=") if "=" in entry else ("", "", entry)
        fields: tuple[str, ...] = ()
        head, sep, tail = location.rpartition(":")
        if sep and head and "/" not in tail and "\\" not in tail:
            location = head
            fields = tuple(field for field in tail.split("+") if field)
        path = Path(location).expanduser()
        if not path.is_file():
            raise ValueError(f"benchmark file not found: {path} (from {entry!r})")
        name = name.strip() or path.stem
        benchmarks.append(Benchmark(name, path, fields or (_detect_field(path),), "unknown"))
    return benchmarks


def default_benchmarks(extra: str | None = None) -> list[Benchmark]:
    """The shipped benchmarks (``data/benchmarks/benchmarks.json``) plus the ``extra`` spec.

    Args:
        extra: a ``DISTILLSET_BENCHMARKS``-style spec (``settings.curation.benchmarks``), or None.
    """
    registry = json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))
    benchmarks = [
        Benchmark(name, BENCHMARKS_DIR / entry["file"], tuple(entry["text_fields"]), entry["license"])
        for name, entry in registry.items()
    ]
    return benchmarks + parse_benchmark_spec(extra or "")


def read_benchmark_rows(path: Path, fields: Sequence[str] | None) -> pl.DataFrame:
    """A benchmark file's rows with a 1-based ``__row`` column (JSONL line or Parquet row)."""
    path = Path(path)
    if path.suffix == ".parquet":
        frame = pl.read_parquet(path)
        frame = frame.with_row_index("__row", offset=1)
    else:
        records, lines = [], []
        for line_number, record in iter_json_objects(path):
            records.append({key: record.get(key) for key in fields} if fields else record)
            lines.append(line_number)
        frame = pl.DataFrame(records, infer_schema_length=None) if records else pl.DataFrame()
        frame = frame.with_columns(pl.Series("__row", lines, dtype=pl.Int64))
    if fields:
        missing = [field for field in fields if field not in frame.columns]
        if missing:
            raise ValueError(f"benchmark {path}: no field {', '.join(missing)}")
    return frame


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _joined(units: pl.Series) -> list[str]:
    """Units joined with spaces and padded, so containment respects unit boundaries."""
    return (" " + units.list.join(" ") + " ").to_list()


class BenchmarkIndex:
    """N-gram hash sets of a group of benchmarks, for fast contamination lookups.

    Build with ``BenchmarkIndex.build``; ``loaded_from_cache`` says whether it came from disk.
    """

    def __init__(
        self,
        names: list[str],
        params: DecontamParams,
        tables: dict[str, np.ndarray],
        short_items: dict[str, list[tuple[str, int, int]]],
        *,
        loaded_from_cache: bool = False,
    ):
        self.names = names
        self.params = params
        self._tables = tables
        self._short = short_items
        self._filters: dict[str, np.ndarray] = {}
        self.loaded_from_cache = loaded_from_cache

    @property
    def size(self) -> int:
        """Number of distinct n-grams indexed (both modes)."""
        return sum(len(self._tables[f"{mode}_hash"]) for mode in ("word", "char"))

    @classmethod
    def build(
        cls,
        benchmarks: Sequence[Benchmark],
        *,
        params: DecontamParams = DecontamParams(),
        cache_dir: Path | None = None,
    ) -> BenchmarkIndex:
        """Index ``benchmarks`` (or load the index saved for the same files and parameters).

        Args:
            benchmarks: the test sets to protect.
            params: n-gram sizes.
            cache_dir: where indexes are saved and looked up (e.g.
                ``$DISTILLSET_HOME/cache/decontam``); ``None`` disables the cache.

        Raises:
            ValueError: a benchmark file is missing, unreadable or lacks its text field.
        """
        for benchmark in benchmarks:
            if not Path(benchmark.path).is_file():
                raise ValueError(f"benchmark {benchmark.name}: file not found: {benchmark.path}")
        key_source = {
            "version": INDEX_VERSION,
            "polars": pl.__version__,
            "params": [params.word_ngram, params.char_ngram],
            "benchmarks": [[b.name, list(b.text_fields), _file_sha256(b.path)] for b in benchmarks],
        }
        key = id_rules.sha256_hex(id_rules.canonical_json(key_source))[:32]
        cache_path = Path(cache_dir) / f"benchmarks-{key}.npz" if cache_dir is not None else None
        names = [benchmark.name for benchmark in benchmarks]
        if cache_path is not None and cache_path.is_file():
            return cls._load(cache_path, names, params)
        index = cls._index(benchmarks, params)
        if cache_path is not None:
            index._save(cache_path)
        return index

    @classmethod
    def _index(cls, benchmarks: Sequence[Benchmark], params: DecontamParams) -> BenchmarkIndex:
        texts, bench_of_item, row_of_item = [], [], []
        for bench_number, benchmark in enumerate(benchmarks):
            frame = read_benchmark_rows(benchmark.path, benchmark.text_fields)
            for field in benchmark.text_fields:
                values = pl.col(field)
                if isinstance(frame.schema[field], pl.List):
                    # Multi-turn items (a list of turns): each turn joined, like prompt_text.
                    values = values.list.eval(pl.element().cast(pl.String, strict=False)).list.join("\n\n")
                column = frame.select(values.cast(pl.String, strict=False), "__row").drop_nulls(field)
                texts.extend(column[field].to_list())
                row_of_item.extend(column["__row"].to_list())
                bench_of_item.extend([bench_number] * len(column))
        normalized = pl.Series([normalize(text) for text in texts], dtype=pl.String)
        bench_of_item = np.asarray(bench_of_item, dtype=np.int32)
        row_of_item = np.asarray(row_of_item, dtype=np.int64)
        is_cjk = cjk_mask(normalized) if len(normalized) else np.zeros(0, dtype=bool)
        tables: dict[str, np.ndarray] = {}
        short: dict[str, list[tuple[str, int, int]]] = {}
        for mode, chars, n in (("word", False, params.word_ngram), ("char", True, params.char_ngram)):
            items = np.flatnonzero(is_cjk == chars)
            subset = normalized.gather(items)
            shingles = shingle_hashes(
                subset,
                word_ngram=n,
                char_ngram=n,
                seed=_HASH_SEED,
                keep_punctuation=False,
                mode="chars" if chars else "words",
            )
            long_items = shingles.unit_counts >= n
            per_item = np.diff(shingles.offsets)
            gram_owner = np.repeat(np.arange(len(items)), per_item)
            keep = long_items[gram_owner]
            hashes = shingles.hashes[keep]
            owner = items[gram_owner[keep]]
            # Stable sort + first occurrence: an n-gram shared by several items maps to the earliest.
            order = np.argsort(hashes, kind="stable")
            hashes, owner = hashes[order], owner[order]
            first = np.ones(len(hashes), dtype=bool)
            first[1:] = hashes[1:] != hashes[:-1]
            tables[f"{mode}_hash"] = hashes[first]
            tables[f"{mode}_bench"] = bench_of_item[owner[first]]
            tables[f"{mode}_row"] = row_of_item[owner[first]]
            short_items = items[(shingles.unit_counts > 0) & ~long_items]
            if len(short_items):
                units = split_units(normalized.gather(short_items), chars=chars, keep_punctuation=False)
                patterns = _joined(units)
                short[mode] = [
                    (pattern, int(bench_of_item[item]), int(row_of_item[item]))
                    for pattern, item in zip(patterns, short_items, strict=True)
                ]
            else:
                short[mode] = []
        return cls([b.name for b in benchmarks], params, tables, short)

    def _save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        short_json = json.dumps(self._short, ensure_ascii=False)
        # Write then rename: a crash mid-write never leaves a truncated index to load later.
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        with os.fdopen(handle, "wb") as out:
            np.savez(out, short_json=np.array(short_json), **self._tables)
        os.replace(temporary, path)

    @classmethod
    def _load(cls, path: Path, names: list[str], params: DecontamParams) -> BenchmarkIndex:
        with np.load(path, allow_pickle=False) as data:
            tables = {key: data[key] for key in data.files if key != "short_json"}
            short = {
                mode: [tuple(item) for item in items] for mode, items in json.loads(str(data["short_json"])).items()
            }
        return cls(names, params, tables, short, loaded_from_cache=True)

    def find(self, ids: Sequence[str], texts: Sequence[str]) -> pl.DataFrame:
        """The contaminated inputs.

        Args:
            ids: one id per text.
            texts: the texts to check (``None`` counts as empty).

        Returns:
            One row per contaminated input, in input order: ``id``, ``benchmark``, ``matched_ngram``
            (the first matching n-gram of the input, as normalized units joined by spaces; the
            whole item for a short item) and ``benchmark_row`` (1-based line of the item).
        """
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        n_docs = len(texts)
        if n_docs == 0:
            return pl.DataFrame(schema=_RESULT_SCHEMA)
        normalized = pl.Series([normalize(text) for text in texts], dtype=pl.String)
        found_bench = np.full(n_docs, -1, dtype=np.int64)
        found_row = np.zeros(n_docs, dtype=np.int64)
        found_text: list[str | None] = [None] * n_docs
        has_cjk = normalized.str.count_matches(CJK_CHARS).to_numpy() > 0
        for mode, chars, n in (("word", False, self.params.word_ngram), ("char", True, self.params.char_ngram)):
            docs = np.arange(n_docs) if not chars else np.flatnonzero(has_cjk)
            if len(docs) == 0:
                continue
            subset = normalized.gather(docs)
            self._match_ngrams(mode, chars, n, docs, subset, found_bench, found_row, found_text)
            self._match_short(mode, chars, docs, subset, found_bench, found_row, found_text)
        hit = np.flatnonzero(found_bench >= 0)
        id_list = list(ids)
        return pl.DataFrame(
            {
                "id": [str(id_list[i]) for i in hit],
                "benchmark": [self.names[found_bench[i]] for i in hit],
                "matched_ngram": [found_text[i] for i in hit],
                "benchmark_row": found_row[hit],
            },
            schema=_RESULT_SCHEMA,
        )

    def _match_ngrams(self, mode, chars, n, docs, subset, found_bench, found_row, found_text) -> None:
        table = self._tables[f"{mode}_hash"]
        if len(table) == 0:
            return
        shingles = shingle_hashes(
            subset,
            word_ngram=n,
            char_ngram=n,
            seed=_HASH_SEED,
            keep_punctuation=False,
            mode="chars" if chars else "words",
        )
        # A 16M-bit filter on the low hash bits rejects almost every input n-gram with one gather;
        # only the survivors pay for the binary search.
        filter_bits = self._filters.get(mode)
        if filter_bits is None:
            filter_bits = np.zeros(_FILTER_SIZE, dtype=bool)
            filter_bits[(table & np.uint64(_FILTER_SIZE - 1)).astype(np.int64)] = True
            self._filters[mode] = filter_bits
        maybe = np.flatnonzero(filter_bits[(shingles.hashes & np.uint64(_FILTER_SIZE - 1)).astype(np.int64)])
        positions = np.zeros(len(shingles.hashes), dtype=np.int64)
        positions[maybe] = np.minimum(np.searchsorted(table, shingles.hashes[maybe]), len(table) - 1)
        matched = np.zeros(len(shingles.hashes), dtype=bool)
        matched[maybe] = table[positions[maybe]] == shingles.hashes[maybe]
        per_doc = np.diff(shingles.offsets)
        local_doc = np.repeat(np.arange(len(docs)), per_doc)
        # Inputs shorter than n have one whole-text shingle, which is no n-gram of any item.
        matched &= (shingles.unit_counts >= n)[local_doc]
        matched_grams = np.flatnonzero(matched)
        if len(matched_grams) == 0:
            return
        first_docs, first_at = np.unique(local_doc[matched_grams], return_index=True)
        grams = matched_grams[first_at]
        new = found_bench[docs[first_docs]] < 0
        first_docs, grams = first_docs[new], grams[new]
        if len(first_docs) == 0:
            return
        units = split_units(subset.gather(first_docs), chars=chars, keep_punctuation=False).to_list()
        joiner = "" if chars else " "
        for local, gram, doc_units in zip(first_docs, grams, units, strict=True):
            doc = docs[local]
            start = int(gram - shingles.offsets[local])
            found_bench[doc] = self._tables[f"{mode}_bench"][positions[gram]]
            found_row[doc] = self._tables[f"{mode}_row"][positions[gram]]
            found_text[doc] = joiner.join(doc_units[start : start + n])

    def _match_short(self, mode, chars, docs, subset, found_bench, found_row, found_text) -> None:
        items = self._short.get(mode) or []
        pending = np.flatnonzero(found_bench[docs] < 0)
        if not items or len(pending) == 0:
            return
        patterns = [pattern for pattern, _, _ in items]
        if not chars:
            # Cheap prefilter: an input can only contain an item if it contains the item's longest
            # word as a substring; only those inputs are tokenized again.
            longest = sorted({max(pattern.split(), key=len) for pattern in patterns})
            pending = pending[subset.gather(pending).str.contains_any(longest).to_numpy()]
            if len(pending) == 0:
                return
        haystack = pl.Series(_joined(split_units(subset.gather(pending), chars=chars, keep_punctuation=False)))
        first_item = {}
        for pattern, bench, row in items:
            first_item.setdefault(pattern, (bench, row))
        # Aho-Corasick over all short items at once (polars), not one scan per item.
        matches = haystack.str.extract_many(patterns, leftmost=True).to_list()
        joiner = "" if chars else " "
        for local, found in zip(pending, matches, strict=True):
            if not found:
                continue
            doc = docs[local]
            bench, row = first_item[found[0]]
            found_bench[doc] = bench
            found_row[doc] = row
            found_text[doc] = joiner.join(found[0].split(" ")).strip()
