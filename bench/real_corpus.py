"""A reproducible, heavily duplicated near-duplicate corpus of REAL text, with ground truth.

Built from the files in ``bench/data/`` (GSM8K train questions and worked solutions, BELLE Chinese
seed tasks) and the project's MT-Bench questions (``data/sample_prompts/``). It imitates a scraped
or synthetic prompt set: only ``--unique`` (default 14%) of the documents are distinct families;
most families are clusters of 5-15 copies (the original plus light edits of it), the rest single
documents, and a few hard negatives. Three scripts (when a script needs more originals than the
sources hold, e.g. at 1M documents, real pieces of similar length are joined: two, or three or
four when the pairs run out):

* ``en``: a GSM8K question, a GSM8K question with its worked solution, or an MT-Bench question.
* ``zh``: a BELLE task (instruction, input, output) written in Chinese only.
* ``mixed``: Chinese with Latin script: the BELLE tasks that contain SQL, Python code, HTML, a
  chess FEN string, e-mail addresses or English sentences, and BELLE Chinese instructions put
  before an English GSM8K question.

**Light edits.** A copy is its family's original with ``max(1, round(rate * units))`` edits,
``rate`` drawn uniformly from 1-3%, where units are words for Latin script and characters for
CJK (``script_units``). An edit substitutes, inserts or deletes one unit (a word of the corpus's
own vocabulary, or a CJK character of BELLE's), inserts, deletes or changes a punctuation mark, or
changes a word's case (which normalization undoes: such a copy is an exact duplicate).

**Hard negatives.** ``hard_negatives`` (default 2%) of the documents are near-but-different
rewrites of another family's original: the same template with other numbers and other entities
(names in English, runs of characters in Chinese), rewritten until their reference Jaccard to
the original and to each of its copies is below ``HARD_NEGATIVE_MAX`` (0.75): below the 0.8
threshold by construction. Each is its own family (at most one per source), and must never share a
cluster with its source (column ``source_family``).

**Ground truth.** ``family`` (the cluster a document was made in), ``kind`` (``original``,
``copy``, ``single``, ``hard_negative``), ``script`` and ``source_family`` (the family a hard
negative rewrites, else -1). Whether two documents of a family are really duplicates is decided
by the benchmark from ``reference_jaccard`` (exact Jaccard of the script-aware 5-gram sets defined
here, independently of distillset's code), not assumed.

Run ``python bench/real_corpus.py --docs 100000 --out real.jsonl`` to write one.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl
import regex

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
GSM8K = DATA / "gsm8k_train.jsonl"
BELLE = DATA / "belle_zh_seed_tasks.jsonl"
MT_BENCH = ROOT / "data" / "sample_prompts" / "mt_bench_questions.jsonl"

NGRAM = 5
HARD_NEGATIVE_MAX = 0.75
CLUSTER_SIZES = (5, 15)
SCRIPT_SHARES = {"en": 0.8, "zh": 0.1, "mixed": 0.1}
"""Share of families per script (English dominates a prompt set; enough of each for recall)."""

_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
# A reference unit: one CJK character, a run of other word characters (a Latin word or a number),
# or one other visible character (punctuation, operators, brackets).
_UNIT = regex.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")
_WORD_UNIT = regex.compile(rf"([{_CJK}])|[^\W{_CJK}]+")
_LATIN_WORD = regex.compile(rf"[^\W\d_{_CJK}]+")
_CJK_RUN = regex.compile(rf"[{_CJK}]+")
_NUMBER = regex.compile(r"\d+")
_PUNCT_EN = list(",.;:!?-")
_PUNCT_ZH = list("，。、；：！？")
_NAMES = [
    "Alice",
    "Bob",
    "Carmen",
    "Dmitri",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemal",
    "Lena",
    "Marta",
    "Nikhil",
    "Olga",
    "Pedro",
    "Quinn",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Viktor",
]


def _normalize(text: str) -> str:
    from distillset import ids

    return ids.normalize_text(text)


def reference_shingles(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    """Script-aware n-grams of a text: CJK characters and Latin words are the units of one stream.

    Independent of ``distillset.curation.shingles`` (Python's ``regex`` instead of polars): the
    ground truth of the benchmark and datasketch's input. A text with fewer than ``n`` units has
    one shingle of all of them.
    """
    units = _UNIT.findall(_normalize(text))
    if len(units) < n:
        return {tuple(units)} if units else set()
    return {tuple(units[i : i + n]) for i in range(len(units) - n + 1)}


def reference_jaccard(a: str | set, b: str | set) -> float:
    left = a if isinstance(a, set) else reference_shingles(a)
    right = b if isinstance(b, set) else reference_shingles(b)
    return len(left & right) / len(left | right) if left or right else 1.0


def script_units(text: str) -> list[tuple[int, int, bool]]:
    """``(start, end, is_cjk)`` of every word or CJK character (the units light edits count)."""
    return [(m.start(), m.end(), m.group(1) is not None) for m in _WORD_UNIT.finditer(text)]


def _load_sources() -> dict[str, list[str]]:
    gsm = [json.loads(line) for line in GSM8K.read_text(encoding="utf-8").splitlines()]
    belle = [json.loads(line) for line in BELLE.read_text(encoding="utf-8").splitlines()]
    mt = [json.loads(line) for line in MT_BENCH.read_text(encoding="utf-8").splitlines()]
    # One GSM8K row in five is kept for the mixed-script originals only, so that no English
    # original is a mixed one without its Chinese instruction (that pair would be ~0.8 similar).
    questions = [row["question"] for k, row in enumerate(gsm) if k % 5]
    solved = [row["question"] + "\n" + row["answer"] for k, row in enumerate(gsm) if k % 5]
    mixed_questions = [row["question"] for k, row in enumerate(gsm) if k % 5 == 0]
    mt_turns = [turn for row in mt for turn in row["turns"]]
    zh, mixed, wrappers = [], [], []
    for task in belle:
        instance = task["instances"][0]
        text = "\n".join(part for part in (task["instruction"], instance["input"], instance["output"]) if part)
        latin = sum(len(word) for word in _LATIN_WORD.findall(text))
        if latin >= 10:
            mixed.append(text)
        else:
            zh.append(text)
            wrappers.append(task["instruction"])
    return {
        "questions": questions,
        "solved": solved,
        "mt": mt_turns,
        "zh": zh,
        "mixed": mixed,
        "wrappers": wrappers,
        "mixed_questions": mixed_questions,
    }


def _originals(script: str, count: int, sources: dict, rng: np.random.Generator) -> list[str]:
    """``count`` distinct originals of one script (real text first, then real pieces joined)."""
    if script == "en":
        pool = sources["mt"] + sources["questions"] + sources["solved"]
        base = [pool[i] for i in rng.permutation(len(pool))]
        pieces = sources["questions"]
    elif script == "zh":
        base = list(sources["zh"])
        pieces = sources["zh"]
    else:
        base = list(sources["mixed"])
        # A Chinese instruction put before an English GSM8K question (a translation or "solve
        # this" prompt): the most common mixed-script prompt shape. Only the (short) instruction
        # is shared between originals, so two of them are far apart.
        wrappers, questions = sources["wrappers"], sources["mixed_questions"]
        picks_w = rng.integers(0, len(wrappers), size=len(questions))
        base += [
            wrappers[w] + "\n" + questions[q] for w, q in zip(picks_w, rng.permutation(len(questions)), strict=True)
        ]
        pieces = questions
    out, seen = [], set()
    for text in base:
        if len(out) == count:
            return out
        if text not in seen:
            seen.add(text)
            out.append(text)
    # More originals than the sources hold: join two real pieces of similar length (at most 2x
    # apart; each unordered pair once), so that two joins sharing one piece stay below ~0.5.
    # When the pairs run out (BELLE has 153 Chinese-only tasks), join three pieces, then four.
    lengths = np.array([len(piece) for piece in pieces])
    joined: set[tuple[int, ...]] = set()
    width, misses = 2, 0
    while len(out) < count:
        if width == 2:
            picks = tuple(sorted(int(k) for k in rng.integers(0, len(pieces), size=2)))
        else:
            picks = tuple(sorted(int(k) for k in rng.choice(len(pieces), size=width, replace=False)))
        chosen = lengths[list(picks)]
        if len(set(picks)) < width or picks in joined or chosen.max() > 2 * chosen.min():
            misses += 1
            if misses > 2000:
                width, misses = width + 1, 0
            continue
        misses = 0
        joined.add(picks)
        text = "\n\n".join(pieces[k] for k in picks)
        if script == "mixed":
            text = sources["wrappers"][int(rng.integers(len(sources["wrappers"])))] + "\n" + text
        out.append(text)
    return out


def light_edit(text: str, rng: np.random.Generator, vocab_en: list[str], vocab_zh: list[str]) -> str:
    """``max(1, round(rate * units))`` edits with ``rate`` in [1%, 3%] (see the module docstring)."""
    units = script_units(text)
    if not units:
        return text + "."
    edits = max(1, round(float(rng.uniform(0.01, 0.03)) * len(units)))
    chosen = sorted(rng.choice(len(units), size=min(edits, len(units)), replace=False), reverse=True)
    for index in chosen:  # back to front, so earlier spans stay valid
        start, end, cjk = units[index]
        word = text[start:end]
        kind = rng.choice(["substitute", "insert", "delete", "punctuation", "case"], p=[0.35, 0.2, 0.2, 0.15, 0.1])
        if kind == "case" and cjk:
            kind = "substitute"
        if kind == "substitute":
            new = vocab_zh[rng.integers(len(vocab_zh))] if cjk else vocab_en[rng.integers(len(vocab_en))]
            text = text[:start] + new + text[end:]
        elif kind == "insert":
            new = vocab_zh[rng.integers(len(vocab_zh))] if cjk else " " + vocab_en[rng.integers(len(vocab_en))]
            text = text[:end] + new + text[end:]
        elif kind == "delete":
            text = text[:start] + text[end:]
        elif kind == "punctuation":
            marks = _PUNCT_ZH if cjk else _PUNCT_EN
            following = text[end : end + 1]
            if following and not following.isalnum() and not following.isspace():
                text = text[:end] + text[end + 1 :]  # drop the mark after the unit
            else:
                text = text[:end] + marks[rng.integers(len(marks))] + text[end:]
        else:
            text = text[:start] + (word.upper() if word.islower() else word.lower()) + text[end:]
    return text


def hard_negative(text: str, rng: np.random.Generator, vocab_zh: list[str], family: list[str]) -> str | None:
    """The same template with other numbers and entities, just below ``HARD_NEGATIVE_MAX``.

    Numbers, capitalized names (English) and CJK characters are changed one at a time, in random
    order, until the reference Jaccard to ``text`` drops below ``HARD_NEGATIVE_MAX``: a rewrite as
    close to the original as it can be while staying below the threshold by construction. It is
    kept only if it is below ``HARD_NEGATIVE_MAX`` to every copy in ``family`` too.
    """
    original = reference_shingles(text)
    members = [reference_shingles(member) for member in family]
    spots = [(m.start(), m.end(), "number") for m in _NUMBER.finditer(text)]
    spots += [(m.start(), m.end(), "name") for m in regex.finditer(r"\b[A-Z][a-z]+\b", text)]
    spots += [(start, end, "cjk") for start, end, cjk in script_units(text) if cjk]
    if not spots:
        return None
    spots = [spots[i] for i in rng.permutation(len(spots))]
    changes: dict[int, tuple[int, str]] = {}
    for step, (start, end, kind) in enumerate(spots):
        old = text[start:end]
        if kind == "number":
            new = str(int(old) + int(rng.integers(1, 9)) * 10 ** max(len(old) - 1, 0))
        elif kind == "name":
            new = _NAMES[rng.integers(len(_NAMES))]
        else:
            new = vocab_zh[rng.integers(len(vocab_zh))]
        if new == old:
            continue
        changes[start] = (end, new)
        if step % 2 and step + 1 < len(spots):
            continue  # check every second change: the similarity is costly to compute
        rewritten, cursor = [], 0
        for position in sorted(changes):
            stop, replacement = changes[position]
            rewritten.append(text[cursor:position] + replacement)
            cursor = stop
        rewritten.append(text[cursor:])
        candidate = "".join(rewritten)
        if reference_jaccard(original, candidate) < HARD_NEGATIVE_MAX:
            rewritten_set = reference_shingles(candidate)
            if all(reference_jaccard(member, rewritten_set) < HARD_NEGATIVE_MAX for member in members):
                return candidate
            return None
    return None


def generate(docs: int, *, seed: int = 0, unique: float = 0.14, hard_negatives: float = 0.02) -> pl.DataFrame:
    """A shuffled corpus of ``docs`` rows: ``id``, ``text``, ``family``, ``kind``, ``script``, ``source_family``.

    Args:
        docs: number of rows.
        seed: the random seed (same seed and data files, same corpus).
        unique: share of distinct families (clusters, single documents and hard negatives).
        hard_negatives: share of rows that are hard negatives.
    """
    rng = np.random.default_rng(seed)
    sources = _load_sources()
    vocab_en = sorted({w for text in sources["questions"][:2000] for w in _LATIN_WORD.findall(text) if len(w) > 2})
    vocab_zh = sorted({c for text in sources["zh"] for run in _CJK_RUN.findall(text) for c in run})
    n_hard = int(docs * hard_negatives)
    n_families = max(1, int(docs * unique) - n_hard)
    low, high = CLUSTER_SIZES
    mean_size = (low + high) / 2
    n_clusters = min(n_families, max(0, int((docs - n_hard - n_families) / (mean_size - 1))))
    sizes = rng.integers(low, high + 1, size=n_clusters)
    # Trim or pad the cluster sizes so the row count is exact.
    surplus = int(sizes.sum()) + (n_families - n_clusters) + n_hard - docs
    while surplus > 0 and len(sizes):
        k = int(rng.integers(len(sizes)))
        if sizes[k] > low:
            sizes[k] -= 1
            surplus -= 1
    n_singles = n_families - n_clusters - surplus if surplus < 0 else n_families - n_clusters
    scripts = rng.choice(list(SCRIPT_SHARES), size=n_clusters + n_singles, p=list(SCRIPT_SHARES.values()))
    spare = {"en": n_hard}  # English originals for singles, should too few hard negatives be made
    pools = {s: iter(_originals(s, int((scripts == s).sum()) + spare.get(s, 0), sources, rng)) for s in SCRIPT_SHARES}
    texts, families, kinds, script_of, source_of = [], [], [], [], []
    family_originals: list[tuple[str, str, int]] = []
    for family, script in enumerate(scripts):
        original = next(pools[script])
        family_originals.append((original, script, len(texts)))
        size = int(sizes[family]) if family < n_clusters else 1
        texts.append(original)
        kinds.append("original" if size > 1 else "single")
        for _ in range(size - 1):
            texts.append(light_edit(original, rng, vocab_en, vocab_zh))
            kinds.append("copy")
        families.extend([family] * size)
        script_of.extend([str(script)] * size)
        source_of.extend([-1] * size)
    family = len(family_originals)
    # Each source family gets at most one hard negative (two rewrites of one original could be
    # closer to each other than to it).
    for source in rng.permutation(len(family_originals)):
        if len(texts) >= docs:
            break
        original, script, first = family_originals[source]
        size = int(sizes[source]) if source < n_clusters else 1
        rewrite = hard_negative(original, rng, vocab_zh, texts[first + 1 : first + size])
        if rewrite is None:
            continue
        texts.append(rewrite)
        families.append(family)
        kinds.append("hard_negative")
        script_of.append(str(script))
        source_of.append(int(source))
        family += 1
    while len(texts) < docs:  # too few rewritable originals: fill with single documents
        original = next(pools["en"])
        texts.append(original)
        families.append(family)
        kinds.append("single")
        script_of.append("en")
        source_of.append(-1)
        family += 1
    order = rng.permutation(len(texts))
    return pl.DataFrame(
        {
            "id": [f"doc{i:08d}" for i in range(len(texts))],
            "text": [texts[i] for i in order],
            "family": np.asarray(families, dtype=np.int64)[order],
            "kind": [kinds[i] for i in order],
            "script": [script_of[i] for i in order],
            "source_family": np.asarray(source_of, dtype=np.int64)[order],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--unique", type=float, default=0.14)
    parser.add_argument("--out", type=Path, required=True, help="a .parquet or .jsonl file")
    args = parser.parse_args()
    started = time.perf_counter()
    corpus = generate(args.docs, seed=args.seed, unique=args.unique)
    if args.out.suffix == ".parquet":
        corpus.write_parquet(args.out)
    else:
        corpus.write_ndjson(args.out)
    print(f"wrote {len(corpus)} rows to {args.out} in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
