"""Near-duplicate removal: distillset vs datasketch ``MinHashLSH``, side by side in one run.

For each engine a child process loads the same synthetic corpus (``bench/synthetic_corpus.py``),
deduplicates it with the same shingles (word 5-grams over the same tokens), 128 permutations and
threshold 0.8, each with its own verification: datasketch accepts an LSH candidate (12 bands x 10
rows: its FP+FN rule with weights 0.2/0.8) when the ESTIMATED Jaccard reaches 0.8, the usual way
to use it; distillset uses its defaults (18 x 7, laid out for 0.7, then the EXACT Jaccard of the
shingle sets must reach 0.8, see ``distillset/curation/near_dedup.py``). Each child
reports its wall time and peak RSS (``VmHWM`` of that process only, so the engines do not share
a heap; the peak is reset after the corpus is loaded, and the RSS with the corpus loaded, which is
part of both peaks, is reported next to it).

datasketch is slow, so it runs on the first ``--datasketch-docs`` rows of the corpus; distillset
runs on the same subset (the like-for-like row) and on the whole corpus. Quality is measured
against ground truth: a pair is a true duplicate when the exact Jaccard similarity of its two
shingle sets is at least the threshold (computed for every pair inside a generated family).
Recall is the share of true pairs that end up in the same cluster. Two precisions: over the
verified pairs (edges) each engine merged on, and over all pairs that share a cluster (clusters
are connected components for both engines, so two variants of one original that are each close
to it but below 0.8 to each other count against the second). distillset's edges are recomputed
with ``near_duplicate_pairs`` after its timed run.

Each engine runs ``--repeat`` times (interleaved, default 2) and its fastest run is reported, since
the machine is shared.

Run: ``python bench/bench_dedup.py --docs 100000`` (add ``--docs 1000000`` for the large run).
"""

from __future__ import annotations

import argparse
import gc
import json
import re
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

from distillset import ids  # noqa: E402

THRESHOLD, NUM_PERM, NGRAM = 0.8, 128, 5
_TOKEN = re.compile(r"\w+|[^\w\s]")


def shingle_set(text: str) -> set[tuple[str, ...]]:
    """Exact word 5-gram set, with the tokens distillset uses (ground truth and datasketch input)."""
    tokens = _TOKEN.findall(ids.normalize_text(text))
    if len(tokens) < NGRAM:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i : i + NGRAM]) for i in range(len(tokens) - NGRAM + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


# ---- engines (run in a child process) -------------------------------------------------------


def run_distillset(texts: list[str], edges: list) -> np.ndarray:
    from distillset.curation.near_dedup import NearDupParams, near_duplicate_clusters

    frame = near_duplicate_clusters(
        [str(i) for i in range(len(texts))], texts, params=NearDupParams(threshold=THRESHOLD, num_perm=NUM_PERM)
    )
    return frame["cluster_id"].cast(pl.Int64).to_numpy()


def distillset_edges(texts: list[str]) -> np.ndarray:
    """The verified pairs behind distillset's clusters (recomputed outside the timed run)."""
    from distillset.curation.near_dedup import NearDupParams, near_duplicate_pairs

    pairs = near_duplicate_pairs(texts, params=NearDupParams(threshold=THRESHOLD, num_perm=NUM_PERM))
    return pairs.select("left", "right").to_numpy()


def run_datasketch(texts: list[str], edges: list) -> np.ndarray:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, weights=(0.2, 0.8))
    sketches = []
    for i, text in enumerate(texts):
        sketch = MinHash(num_perm=NUM_PERM)
        sketch.update_batch([" ".join(s).encode("utf-8") for s in shingle_set(text)])
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


def _status_mb(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process from /proc, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def child(engine: str, corpus: Path, docs: int, out: Path) -> None:
    texts = pl.scan_parquet(corpus).select("text").head(docs).collect()["text"].to_list()
    gc.collect()
    baseline_mb = _status_mb("VmRSS")
    # Reset the peak (VmHWM) so it measures the engine, not the transient of reading Parquet.
    Path("/proc/self/clear_refs").write_text("5")
    started = time.perf_counter()
    edges: list = []
    labels = (run_distillset if engine == "distillset" else run_datasketch)(texts, edges)
    seconds = time.perf_counter() - started
    peak_mb = _status_mb("VmHWM")
    edge_array = distillset_edges(texts) if engine == "distillset" else np.array(edges, dtype=np.int64).reshape(-1, 2)
    np.save(out, labels)
    np.save(out.with_suffix(".edges.npy"), edge_array)
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "baseline_mb": baseline_mb}))


# ---- evaluation -----------------------------------------------------------------------------


def evaluate(corpus: pl.DataFrame, labels: np.ndarray, edges: np.ndarray) -> dict:
    texts = corpus["text"].to_list()
    families = corpus["family"].to_numpy()
    cache: dict[int, set] = {}

    def sset(i: int) -> set:
        if i not in cache:
            cache[i] = shingle_set(texts[i])
        return cache[i]

    truth, truth_strong = set(), set()
    members = defaultdict(list)
    for i, family in enumerate(families):
        members[family].append(i)
    for group in members.values():
        for a, b in combinations(group, 2):
            similarity = jaccard(sset(a), sset(b))
            if similarity >= THRESHOLD:
                truth.add((a, b))
            if similarity >= THRESHOLD + 0.05:
                truth_strong.add((a, b))
    clusters = defaultdict(list)
    for i, label in enumerate(labels):
        clusters[label].append(i)
    predicted = set()
    for group in clusters.values():
        if len(group) > 1:
            predicted.update(combinations(sorted(group), 2))
    true_predicted = sum(1 for a, b in predicted if (a, b) in truth or jaccard(sset(a), sset(b)) >= THRESHOLD)
    # distillset clusters exact duplicates before MinHash, so they are never its edges; datasketch's
    # exact-copy edges are dropped too, so both are scored on the same kind of (near) pairs.
    near_edges = [(a, b) for a, b in edges.tolist() if ids.normalize_text(texts[a]) != ids.normalize_text(texts[b])]
    edge_true = sum(1 for a, b in near_edges if jaccard(sset(a), sset(b)) >= THRESHOLD)
    return {
        "edge_precision": edge_true / len(near_edges) if near_edges else 1.0,
        "truth_pairs": len(truth),
        "predicted_pairs": len(predicted),
        "precision": true_predicted / len(predicted) if predicted else 1.0,
        "recall": sum(1 for pair in truth if pair in predicted) / len(truth) if truth else 1.0,
        "recall_strong": sum(1 for p in truth_strong if p in predicted) / len(truth_strong) if truth_strong else 1.0,
    }


def spawn(engine: str, corpus_path: Path, docs: int, workdir: Path) -> tuple[dict, np.ndarray]:
    out = workdir / f"{engine}-{docs}.npy"
    completed = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            engine,
            "--corpus",
            str(corpus_path),
            "--docs",
            str(docs),
            "--labels",
            str(out),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    stats = json.loads(completed.stdout.strip().splitlines()[-1])
    return stats, (np.load(out), np.load(out.with_suffix(".edges.npy")))


def main() -> None:
    parser = argparse.ArgumentParser(description="distillset vs datasketch near-duplicate removal")
    parser.add_argument("--docs", type=int, default=100_000, help="corpus size for distillset")
    parser.add_argument("--datasketch-docs", type=int, default=20_000, help="rows datasketch runs on (it is slow)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs per engine, interleaved; the fastest counts (the machine is shared)"
    )
    parser.add_argument("--skip-eval-full", action="store_true", help="skip quality evaluation of the full run")
    parser.add_argument("--child", choices=("distillset", "datasketch"), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--labels", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.corpus, args.docs, args.labels)
        return

    from synthetic_corpus import generate

    subset = min(args.datasketch_docs, args.docs)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        corpus = generate(args.docs, seed=args.seed)
        corpus_path = workdir / "corpus.parquet"
        corpus.write_parquet(corpus_path)
        print(f"corpus: {args.docs} docs (seed {args.seed}) in {time.perf_counter() - started:.0f}s", flush=True)
        runs = [("datasketch", subset), ("distillset", subset), ("distillset", args.docs)]
        best: dict[tuple[str, int], tuple[dict, np.ndarray]] = {}
        for attempt in range(args.repeat):
            for engine, docs in runs:
                stats, labels = spawn(engine, corpus_path, docs, workdir)
                print(f"  run {attempt + 1}: {engine} on {docs} docs: {stats['seconds']:.1f}s", flush=True)
                if (engine, docs) not in best or stats["seconds"] < best[engine, docs][0]["seconds"]:
                    best[engine, docs] = (stats, labels)
        rows = []
        for engine, docs in runs:
            stats, labels = best[engine, docs]
            labels, edges = labels
            quality = (
                {}
                if (args.skip_eval_full and docs == args.docs and docs != subset)
                else evaluate(corpus.head(docs), labels, edges)
            )
            rows.append({"engine": engine, "docs": docs, "docs_per_s": docs / stats["seconds"], **stats, **quality})
    base = rows[0]["docs_per_s"]
    print()
    print(
        "| engine | docs | seconds | docs/s | x datasketch | peak RSS MB (RSS with corpus loaded) | "
        "pair precision (edges) | pair precision (clusters) | recall (J>=0.8) | recall (J>=0.85) | true pairs |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        quality = (
            f"{row['edge_precision']:.3f} | {row['precision']:.3f} | {row['recall']:.3f} | "
            f"{row['recall_strong']:.3f} | {row['truth_pairs']}"
            if "precision" in row
            else "- | - | - | - | -"
        )
        print(
            f"| {row['engine']} | {row['docs']:,} | {row['seconds']:.1f} | {row['docs_per_s']:,.0f} | "
            f"{row['docs_per_s'] / base:.1f} | {row['peak_mb']:,.0f} ({row['baseline_mb']:,.0f}) | {quality} |"
        )


if __name__ == "__main__":
    main()
