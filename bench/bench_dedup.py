"""Near-duplicate removal: distillset vs datasketch ``MinHashLSH``, side by side in one run.

Two corpora (``--corpus``), each generated once per run:

* ``real`` (``bench/real_corpus.py``): GSM8K and BELLE text (English, Chinese, Chinese mixed with
  SQL, code or English), about 14% unique, the rest light edits in clusters of 5-15 copies, plus
  hard negatives (near-but-different rewrites below the threshold by construction).
* ``synthetic`` (``bench/synthetic_corpus.py``): pseudo-English, 30% variants of an original.

For each engine a child process loads the corpus, deduplicates it and reports its wall time and
peak RSS (``VmHWM`` of that process only; the peak is reset after the corpus is loaded, and the
RSS with the corpus loaded is reported next to it). Both engines get the same shingles, 128
permutations and threshold 0.8: the script-aware 5-grams of ``real_corpus.reference_shingles``
(word 5-grams for Latin script, character 5-grams where the text is CJK; the same units as
distillset's ``shingling="scripts"``, computed in Python for datasketch), each with its own
verification: datasketch accepts an LSH candidate (12 bands x 10 rows, its FP+FN rule with
weights 0.2/0.8) when the ESTIMATED Jaccard reaches 0.8, the usual way to use it; distillset
uses its defaults (18 x 7, laid out for 0.7, then the EXACT Jaccard of the shingle sets must
reach 0.8, checked only for pairs that would join two clusters; see
``distillset/curation/near_dedup.py``). Clusters are connected components for both.

Paths timed (``engine`` rows: texts already in memory, the clustering only; ``command`` rows:
read a JSONL file, cluster, write a JSONL file with the added columns):

* ``datasketch`` / ``datasketch command``: the loop below (command: polars reads and writes).
* ``distillset`` / ``distillset command``: ``near_duplicate_clusters`` / ``distillset dedup``'s
  own ``run`` (``distillset/cli/dedup.py``).
* on ``--variants`` (real corpus): distillset with exhaustive verification (every candidate pair
  checked, the previous algorithm) and with the previous per-document shingling (``auto``).

Quality against ground truth: a pair of one generated family is a true duplicate when its
reference Jaccard is at least the threshold. Recall (per script: ``en``, ``zh``, ``mixed``) is
the share of true pairs that end up in one cluster. Edge precision is over the verified pairs
each engine merged on (distillset's recomputed exhaustively with ``near_duplicate_pairs`` after
the timed run; exact copies left out for both); cluster precision is over all pairs that share a
cluster (``pair precision (clusters)``: two variants each close to their original but below 0.8
to each other count against it). ``hard negatives merged`` counts hard negatives that share a
cluster with the family they rewrite (must be 0).

Each run is repeated ``--repeat`` times (interleaved) and its fastest counts: the machine is shared.

Run: ``python bench/bench_dedup.py --docs 100000`` (both corpora); add ``--docs 1000000
--repeat 1 --skip-eval-full`` for the large run. See bench/DEDUP.md for results.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from real_corpus import reference_shingles  # noqa: E402 - bench/ is put on the path just above

from distillset import ids  # noqa: E402

THRESHOLD, NUM_PERM = 0.8, 128
SCRIPTS = ("en", "zh", "mixed")
_MAX_EVAL_PAIRS = 5_000_000


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


# ---- engines (run in a child process) -------------------------------------------------------


def run_distillset(texts: list[str], edges: list, options: dict) -> np.ndarray:
    from distillset.curation.near_dedup import NearDupParams, near_duplicate_clusters

    params = NearDupParams(threshold=THRESHOLD, num_perm=NUM_PERM, shingling=options["shingling"])
    frame = near_duplicate_clusters(
        [str(i) for i in range(len(texts))], texts, params=params, verification=options["verification"]
    )
    return frame["cluster_id"].cast(pl.Int64).to_numpy()


def distillset_edges(texts: list[str], options: dict) -> np.ndarray:
    """The verified pairs behind distillset's clusters (every candidate checked; outside the timed run)."""
    from distillset.curation.near_dedup import NearDupParams, near_duplicate_pairs

    params = NearDupParams(threshold=THRESHOLD, num_perm=NUM_PERM, shingling=options["shingling"])
    return near_duplicate_pairs(texts, params=params).select("left", "right").to_numpy()


def run_datasketch(texts: list[str], edges: list, options: dict | None = None) -> np.ndarray:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, weights=(0.2, 0.8))
    sketches = []
    for i, text in enumerate(texts):
        sketch = MinHash(num_perm=NUM_PERM)
        sketch.update_batch([" ".join(s).encode("utf-8") for s in reference_shingles(text)])
        sketches.append(sketch)
        lsh.insert(i, sketch)
    parent = list(range(len(texts)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, sketch in enumerate(sketches):
        for j in lsh.query(sketch):
            # datasketch's usual verification: estimated Jaccard >= threshold (distillset: exact).
            if j != i and sketch.jaccard(sketches[j]) >= THRESHOLD:
                if i < j:
                    edges.append((i, j))
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(len(texts))], dtype=np.int64)


def run_distillset_command(source: Path, out: Path, options: dict) -> np.ndarray:
    from distillset.cli import dedup

    parser = argparse.ArgumentParser()
    dedup.configure(parser)
    code = dedup.run(parser.parse_args([str(source), "--text-field", "text", "--out", str(out)]))
    if code != 0:
        raise SystemExit(code)
    return np.empty(0, dtype=np.int64)


def run_datasketch_command(source: Path, out: Path, options: dict) -> np.ndarray:
    """The same job done with datasketch: read the JSONL, cluster, write the rows plus cluster ids."""
    frame = pl.read_ndjson(source)
    labels = run_datasketch(frame["text"].fill_null("").to_list(), [])
    row_ids = frame["id"].cast(pl.String)
    frame.with_columns(
        cluster_id=row_ids.gather(labels), kept=pl.Series(labels == np.arange(len(labels)))
    ).write_ndjson(out)
    return np.empty(0, dtype=np.int64)


ENGINES = {"distillset": run_distillset, "datasketch": run_datasketch}
COMMANDS = {"distillset command": run_distillset_command, "datasketch command": run_datasketch_command}


def _status_mb(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process from /proc, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def child(engine: str, corpus: Path, docs: int, out: Path, options: dict) -> None:
    command = engine in COMMANDS
    texts = [] if command else pl.scan_parquet(corpus).select("text").head(docs).collect()["text"].to_list()
    if command:
        import distillset.cli.dedup  # noqa: F401  (imports are not what is timed)
    gc.collect()
    baseline_mb = _status_mb("VmRSS")
    # Reset the peak (VmHWM) so it measures the engine, not the transient of reading Parquet.
    Path("/proc/self/clear_refs").write_text("5")
    started = time.perf_counter()
    edges: list = []
    if command:
        labels = COMMANDS[engine](corpus, out.with_suffix(".out.jsonl"), options)
    else:
        labels = ENGINES[engine](texts, edges, options)
    seconds = time.perf_counter() - started
    peak_mb = _status_mb("VmHWM")
    if engine == "distillset" and options.get("edges"):
        edge_array = distillset_edges(texts, options)
    else:
        edge_array = np.array(edges, dtype=np.int64).reshape(-1, 2)
    np.save(out, labels)
    np.save(out.with_suffix(".edges.npy"), edge_array)
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "baseline_mb": baseline_mb}))


# ---- evaluation -----------------------------------------------------------------------------


class Truth:
    """Reference shingle sets (hashed) of a corpus and its true pairs per script."""

    def __init__(self, corpus: pl.DataFrame) -> None:
        self.texts = corpus["text"].to_list()
        self.families = corpus["family"].to_numpy()
        self.scripts = corpus["script"].to_list() if "script" in corpus.columns else ["en"] * len(corpus)
        self.source = (
            corpus["source_family"].to_numpy() if "source_family" in corpus.columns else np.full(len(corpus), -1)
        )
        self.sets = [frozenset(map(hash, reference_shingles(text))) for text in self.texts]
        self.normalized = [ids.normalize_text(text) for text in self.texts]

    def true_pairs(self, docs: int) -> dict[str, set]:
        members = defaultdict(list)
        for i in range(docs):
            members[self.families[i]].append(i)
        truth: dict[str, set] = {script: set() for script in SCRIPTS}
        for group in members.values():
            for a, b in combinations(group, 2):
                if jaccard(self.sets[a], self.sets[b]) >= THRESHOLD:
                    truth[self.scripts[a]].add((a, b))
        return truth


def evaluate(truth: Truth, docs: int, labels: np.ndarray, edges: np.ndarray) -> dict:
    true_pairs = truth.true_pairs(docs)
    clusters = defaultdict(list)
    for i, label in enumerate(labels[:docs]):
        clusters[label].append(i)
    groups = [group for group in clusters.values() if len(group) > 1]
    n_predicted = sum(len(g) * (len(g) - 1) // 2 for g in groups)
    rng = np.random.default_rng(0)
    keep = min(1.0, _MAX_EVAL_PAIRS / max(n_predicted, 1))  # sample when clusters are huge
    predicted, checked, good, same_family = set(), 0, 0, 0
    for group in groups:
        for a, b in combinations(sorted(group), 2):
            predicted.add((a, b))
            if keep < 1.0 and rng.random() > keep:
                continue
            checked += 1
            similar = jaccard(truth.sets[a], truth.sets[b]) >= THRESHOLD
            good += similar
            same_family += similar or truth.families[a] == truth.families[b]
    near_edges = [(a, b) for a, b in edges.tolist() if truth.normalized[a] != truth.normalized[b]]
    edge_good = sum(1 for a, b in near_edges if jaccard(truth.sets[a], truth.sets[b]) >= THRESHOLD)
    family_label = defaultdict(set)
    for i in range(docs):
        family_label[truth.families[i]].add(labels[i])
    hard = [i for i in range(docs) if truth.source[i] >= 0]
    merged = sum(1 for i in hard if labels[i] in family_label.get(truth.source[i], ()))
    result = {
        "edge_precision": edge_good / len(near_edges) if near_edges else 1.0,
        "precision": good / checked if checked else 1.0,
        "family_precision": same_family / checked if checked else 1.0,
        "predicted_pairs": n_predicted,
        "hard_negatives": len(hard),
        "hard_merged": merged,
    }
    every = set().union(*true_pairs.values())
    sizes = np.bincount(np.unique(truth.families[:docs], return_inverse=True)[1])
    family_pairs = int((sizes * (sizes - 1) // 2).sum())
    # The cluster precision of the generated families themselves: light edits of one original
    # are each close to it but not always to each other, so even a perfect clustering stays below 1.
    result["ceiling"] = len(every) / family_pairs if family_pairs else 1.0
    result["truth_pairs"] = len(every)
    result["recall"] = sum(1 for p in every if p in predicted) / len(every) if every else 1.0
    for script, pairs in true_pairs.items():
        result[f"recall_{script}"] = sum(1 for p in pairs if p in predicted) / len(pairs) if pairs else float("nan")
        result[f"pairs_{script}"] = len(pairs)
    return result


# ---- driver ---------------------------------------------------------------------------------


def spawn(engine: str, corpus_path: Path, docs: int, workdir: Path, options: dict) -> tuple[dict, tuple]:
    tag = f"{engine}-{options.get('shingling')}-{options.get('verification')}-{docs}".replace(" ", "_")
    out = workdir / f"{tag}.npy"
    completed = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            engine,
            "--corpus-path",
            str(corpus_path),
            "--docs",
            str(docs),
            "--labels",
            str(out),
            "--options",
            json.dumps(options),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{engine} failed:\n{completed.stderr[-3000:]}")
    stats = json.loads(completed.stdout.strip().splitlines()[-1])
    return stats, (np.load(out), np.load(out.with_suffix(".edges.npy")))


def bench_corpus(name: str, corpus: pl.DataFrame, args: argparse.Namespace, workdir: Path) -> None:
    docs = len(corpus)
    subset = docs if args.datasketch_docs <= 0 else min(args.datasketch_docs, docs)
    parquet = workdir / f"{name}.parquet"
    corpus.write_parquet(parquet)
    jsonl = {size: workdir / f"{name}-{size}.jsonl" for size in {subset, docs}}
    for size, path in jsonl.items():
        corpus.head(size).select("id", "text").write_ndjson(path)
    main = {"shingling": "scripts", "verification": "union-find"}
    runs = [
        ("datasketch", "engine", subset, {}),
        ("distillset", "engine", subset, {**main, "edges": True}),
        ("datasketch command", "command", subset, {}),
        ("distillset command", "command", subset, {}),
    ]
    if subset != docs:
        runs += [
            ("distillset", "engine", docs, {**main, "edges": not args.skip_eval_full}),
            ("distillset command", "command", docs, {}),
        ]
    if args.variants:
        runs += [
            ("distillset", "engine", docs, {"shingling": "scripts", "verification": "exhaustive"}),
            ("distillset", "engine", docs, {"shingling": "auto", "verification": "union-find", "edges": True}),
        ]
    best: dict[int, tuple[dict, tuple]] = {}
    for attempt in range(args.repeat):
        for index, (engine, kind, size, options) in enumerate(runs):
            source = jsonl[size] if kind == "command" else parquet
            stats, result = spawn(engine, source, size, workdir, options)
            label = _label(engine, options)
            print(
                f"  {name} run {attempt + 1}: {label} on {size} docs: {stats['seconds']:.1f}s "
                f"(peak {stats['peak_mb']:,.0f} MB)",
                flush=True,
            )
            if index not in best or stats["seconds"] < best[index][0]["seconds"]:
                best[index] = (stats, result)
    started = time.perf_counter()
    truth = Truth(corpus) if not (args.skip_eval_full and subset != docs) else Truth(corpus.head(subset))
    rows = []
    for index, (engine, kind, size, options) in enumerate(runs):
        stats, (labels, edges) = best[index]
        quality = {}
        if (
            kind == "engine"
            and not (args.skip_eval_full and size != subset)
            and options.get("verification") != "exhaustive"
        ):
            quality = evaluate(truth, size, labels, edges)
        rows.append(
            {
                "engine": _label(engine, options),
                "kind": kind,
                "docs": size,
                "docs_per_s": size / stats["seconds"],
                **stats,
                **quality,
            }
        )
    print(f"  ({name}: evaluation took {time.perf_counter() - started:.0f}s)", flush=True)
    base = {
        kind: next(r["docs_per_s"] for r in rows if r["kind"] == kind and r["engine"].startswith("datasketch"))
        for kind in ("engine", "command")
    }
    print(f"\n### {name} corpus: {docs:,} documents, {corpus['family'].n_unique():,} families\n")
    print(
        "| path | engine | docs | seconds | docs/s | x datasketch (same path) | peak RSS MB (RSS with input loaded) |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['kind']} | {row['engine']} | {row['docs']:,} | {row['seconds']:.1f} | {row['docs_per_s']:,.0f} | "
            f"{row['docs_per_s'] / base[row['kind']]:.1f} | {row['peak_mb']:,.0f} ({row['baseline_mb']:,.0f}) |"
        )
    print(
        "\n| engine | docs | recall en | recall zh | recall mixed | recall all | edge precision | "
        "cluster precision (families' own) | same family or J>=0.8 | hard negatives merged | "
        "true pairs (en / zh / mixed) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "recall" not in row:
            continue
        print(
            f"| {row['engine']} | {row['docs']:,} | "
            + " | ".join(f"{row[f'recall_{s}']:.3f}" for s in SCRIPTS)
            + f" | {row['recall']:.3f} | {row['edge_precision']:.3f} | {row['precision']:.3f} ({row['ceiling']:.3f}) | "
            f"{row['family_precision']:.3f} | {row['hard_merged']} of {row['hard_negatives']} | "
            + " / ".join(f"{row[f'pairs_{s}']:,}" for s in SCRIPTS)
            + " |"
        )
    print(flush=True)


def _label(engine: str, options: dict) -> str:
    extra = []
    if options.get("verification") == "exhaustive":
        extra.append("exhaustive verification")
    if options.get("shingling") == "auto":
        extra.append("per-document shingling")
    return engine + (f" ({', '.join(extra)})" if extra else "")


def main() -> None:
    parser = argparse.ArgumentParser(description="distillset vs datasketch near-duplicate removal")
    parser.add_argument("--docs", type=int, default=100_000, help="corpus size")
    parser.add_argument("--corpus", choices=("real", "synthetic", "both"), default="both")
    parser.add_argument(
        "--datasketch-docs",
        type=int,
        default=None,
        help="rows datasketch runs on (0 = all; default: all for real up to 100k, else 20,000)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs per engine, interleaved; the fastest counts (the machine is shared)"
    )
    parser.add_argument("--skip-eval-full", action="store_true", help="skip quality evaluation of the full run")
    parser.add_argument(
        "--variants",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time exhaustive verification and per-document shingling (default: on up to 100k)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--corpus-path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--labels", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.corpus_path, args.docs, args.labels, json.loads(args.options))
        return
    if args.variants is None:
        args.variants = args.docs <= 100_000
    import real_corpus
    import synthetic_corpus

    corpora = ("real", "synthetic") if args.corpus == "both" else (args.corpus,)
    with tempfile.TemporaryDirectory() as tmp:
        for name in corpora:
            if args.datasketch_docs is None:
                chosen = 0 if (name == "real" and args.docs <= 100_000) else 20_000
            else:
                chosen = args.datasketch_docs
            run_args = argparse.Namespace(
                **{**vars(args), "datasketch_docs": chosen, "variants": args.variants and name == "real"}
            )
            started = time.perf_counter()
            generate = real_corpus.generate if name == "real" else synthetic_corpus.generate
            corpus = generate(args.docs, seed=args.seed)
            print(
                f"{name} corpus: {args.docs} docs (seed {args.seed}) in {time.perf_counter() - started:.0f}s",
                flush=True,
            )
            bench_corpus(name, corpus, run_args, Path(tmp))
            del corpus
            gc.collect()


if __name__ == "__main__":
    main()
