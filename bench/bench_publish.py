"""Publishing in bounded memory (issue 19): peak RSS and time of publishing N synthetic examples,
main's in-memory publisher against the streaming one, and ``distillset explain``'s wall time.

Each measurement runs in its own process (peak RSS is the child's ``ru_maxrss``):

    uv run --frozen python bench/bench_publish.py --rows 100000 1000000 --main /work/main

``--main`` is a checkout of the previous code with its own ``.venv``: it publishes the frame read
whole from the catalog (what its ``training_set`` asset did); this checkout publishes the same
partition streamed by ``CatalogSource``. Both read the same DuckDB catalog built by SQL here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
TEACHER = "bench/teacher"

_BUILD_SQL = """
CREATE OR REPLACE TABLE training_examples AS
SELECT
    md5('e' || i::VARCHAR)[1:16] AS example_id,
    md5('p' || i::VARCHAR)[1:16] AS prompt_id,
    '{teacher}' AS teacher_model,
    '[{{"role":"user","content":"Question ' || i::VARCHAR || ': what is ' || i::VARCHAR || ' plus '
        || (i % 97)::VARCHAR || '? Explain the steps."}},{{"role":"assistant","content":"Add the numbers: '
        || i::VARCHAR || ' + ' || (i % 97)::VARCHAR || ' = ' || (i + i % 97)::VARCHAR
        || '. The answer is ' || (i + i % 97)::VARCHAR || '."}}]' AS messages_json,
    CASE WHEN hash(i) % 10 = 0 THEN 'validation' ELSE 'train' END AS split,
    'prompts/bench_' || (i % 4)::VARCHAR || '.jsonl' AS source_file,
    i + 1 AS source_line,
    md5('s' || (i % 4)::VARCHAR) || md5('t' || (i % 4)::VARCHAR) AS source_sha256,
    'MIT' AS license,
    md5('r' || i::VARCHAR) || md5('q' || i::VARCHAR) AS request_hash,
    TIMESTAMPTZ '2026-11-01 00:00:00+00' AS generated_at,
    0.5 + (i % 50) / 100.0 AS quality_score,
    'c' || i::VARCHAR AS cluster_id,
    true AS simulated,
    'simulated' AS teacher_origin,
    '{teacher}' AS served_model,
    md5('h' || i::VARCHAR) || md5('k' || i::VARCHAR) AS text_hash,
    'bench-run' AS run_id
FROM range({rows}) t(i)
"""

_FIELDS = {"counts": {"bench": 1}, "dagster_run_id": "bench-run", "teacher_model": TEACHER}

_MAIN_PUBLISH = """
from distillset import catalog
from distillset.publish.protocol import publish_training_set
frame = catalog.read_table({catalog!r}, "training_examples", "WHERE teacher_model = ?", [{teacher!r}])
result = publish_training_set({out!r}, "bench", frame, manifest_fields={fields!r})
print(result.version, result.content_hash)
"""

_STREAM_PUBLISH = """
from distillset.publish.protocol import publish_training_set
from distillset.publish.source import CatalogSource
source = CatalogSource({catalog!r}, partition={teacher!r})
result = publish_training_set({out!r}, "bench", source, manifest_fields={fields!r})
print(result.version, result.content_hash)
"""


def build_catalog(path: Path, rows: int) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    con.execute(_BUILD_SQL.format(rows=rows, teacher=TEACHER))
    con.close()


_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print('PEAK_KB', usage.ru_maxrss, 'CPU_S', usage.ru_utime + usage.ru_stime, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def measured(argv: list[str], cwd: Path, env: dict | None = None) -> dict:
    """Run ``argv`` as a child of a fresh wrapper process; its wall and CPU time, peak RSS (MB) and
    last line of output.

    The wrapper reports its children's ``ru_maxrss``: the peak of this one command alone.
    """
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *argv], cwd=cwd, capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed: {done.stderr[-2000:]}")
    report = done.stderr.rsplit("PEAK_KB", 1)[1].split()
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(float(report[2]), 2),
        "peak_rss_mb": round(int(report[0]) / 1024),
        "stdout": done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "",
    }


def publish(checkout: Path, code: str, catalog: Path, out: Path) -> dict:
    python = checkout / ".venv" / "bin" / "python"
    script = code.format(catalog=str(catalog), teacher=TEACHER, out=str(out), fields=_FIELDS)
    return measured([str(python), "-c", script], checkout)


def explain_time(checkout: Path, ids: list[str], out: Path, catalog: Path, home: Path) -> list[float]:
    python = checkout / ".venv" / "bin" / "python"
    env = {**os.environ, "DISTILLSET_HOME": str(home)}
    times = []
    for id_ in ids:
        argv = [str(python), "-m", "orchestration.cli", "explain", id_, "--storage-url", str(out)]
        argv += ["--catalog", str(catalog)]
        run = measured(argv, checkout, env)
        times.append(f"{run['wall_s']} ({run['cpu_s']} CPU)")
    return times


def sample_ids(catalog: Path) -> list[str]:
    import duckdb

    con = duckdb.connect(str(catalog), read_only=True)
    first, last = con.execute("SELECT min(example_id), max(example_id) FROM training_examples").fetchone()
    middle, prompt = con.execute(
        "SELECT example_id, prompt_id FROM training_examples ORDER BY example_id LIMIT 1 OFFSET "
        "(SELECT count(*) // 2 FROM training_examples)"
    ).fetchone()
    con.close()
    return [first, middle, last, prompt]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--main", type=Path, default=None, help="checkout of the previous code (with .venv)")
    parser.add_argument("--explain-main", action="store_true", help="also time main's explain (a full scan)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-publish-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for rows in sorted(args.rows):
        catalog = work / f"catalog-{rows}.duckdb"
        if not catalog.exists():
            build_catalog(catalog, rows)
        row = {"rows": rows}
        for label, checkout, code in (("main", args.main, _MAIN_PUBLISH), ("stream", HERE, _STREAM_PUBLISH)):
            if checkout is None:
                continue
            out = work / f"sets-{label}-{rows}"
            shutil.rmtree(out, ignore_errors=True)
            row[label] = publish(checkout, code, catalog, out)
            print(json.dumps({"rows": rows, label: row[label]}), flush=True)
        ids = sample_ids(catalog)
        row["explain_stream_s"] = explain_time(HERE, ids, work / f"sets-stream-{rows}", catalog, work / "home")
        print(json.dumps({"rows": rows, "explain_stream_s": row["explain_stream_s"]}), flush=True)
        if args.main is not None and args.explain_main:
            row["explain_main_s"] = explain_time(args.main, ids[:1], work / f"sets-main-{rows}", catalog, work / "home")
            print(json.dumps({"rows": rows, "explain_main_s": row["explain_main_s"]}), flush=True)
        results.append(row)
    print(json.dumps(results, indent=2))
    print(markdown(results))
    return 0


def markdown(results: list[dict]) -> str:
    """The bench/README.md table: one line per size and publisher, then explain's wall times."""
    lines = ["| rows | publisher | wall s | CPU s | peak RSS MB |", "|---:|---|---:|---:|---:|"]
    for row in results:
        for label in ("main", "stream"):
            if label in row:
                run = row[label]
                lines.append(f"| {row['rows']:,} | {label} | {run['wall_s']} | {run['cpu_s']} | {run['peak_rss_mb']} |")
    lines += [
        "",
        "| rows | explain: first, middle, last example id, a prompt id; wall s (CPU s) | main's explain |",
        "|---:|---|---:|",
    ]
    for row in results:
        main_s = ", ".join(str(t) for t in row.get("explain_main_s", [])) or "n/a"
        lines.append(f"| {row['rows']:,} | {', '.join(str(t) for t in row['explain_stream_s'])} | {main_s} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
