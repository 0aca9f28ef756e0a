"""Benchmark: the whole ``distillset run`` at scale, peak RSS and time per stage (issue 19).

N synthetic prompts are built from the shipped data (``data/sample_prompts``, ``data/code_tasks``):
every shipped GSM8K question once (verifiable, so the accuracy gates have work), then prompts that
join two shipped sentences (numbers redrawn) and a short random clause of words from the same
data, so they are distinct; about 3% are exact copies of an earlier prompt (case and spacing
changed) and 3% light edits of one (a word replaced), the duplication ``prompt_pool`` removes.

Each checkout given (``--checkout``, default this one; e.g. ``--checkout /work/main --checkout .``
measures before and after a change on the same prompts, side by side) runs the real CLI,
``<checkout>/.venv/bin/distillset run``, in a subprocess with a fresh ``DISTILLSET_HOME`` in a
temporary folder, against an instant local OpenAI-compatible teacher (aiohttp, its own process,
not measured: answers derived from the prompt, GSM8K ones right). The RSS of the run's whole
process tree (the CLI and its run worker, summed) is sampled from ``/proc`` every 0.2 s; each
stage's time and the peak RSS while it ran come from the Dagster step stats of the run, and its CPU
seconds from the same samples (the tree's user + system time from ``/proc``, at the last sample
before the step's start and end): on a shared box they are less inflated than the wall seconds.

``--prefill`` writes the instant teacher's answer to every prompt into the shared ledger before
the runs (the request hash the teacher stage computes for a single-turn prompt at the default
sampling), so every run reads its answers from the ledger: paying a million answers through the
HTTP teacher took over an hour on the shared 2-core box. Only the scorecard's few requests (at
temperature 0) are paid, by every run: each starts from its own copy of the prefilled ledger, so
a checkout measured second does not read the first one's scorecard answers for free.

``--samples N`` runs best-of-N (``TEACHER_SAMPLES_PER_PROMPT=N``) and ``--judge`` the LLM judge
(``DISTILLSET_JUDGE_ENABLED=true``, the teacher judging on its endpoint). With ``--prefill`` the
ledger then also holds every sample's answer (sample i at its own sampling, seed i: ``TeacherSettings
.sample_params``) and the judge's judgment of every answer (the request ``distillset.quality.judge``
builds: the rubric, the conversation, the reference); the instant teacher answers judge requests
with a JSON judgment the judge parser accepts. Each run prints its summary's "paid / reused" lines,
which show whether the answers came from the ledger.

Usage:
    .venv/bin/python bench/bench_scale.py --sizes 1000000 --prefill --checkout /work/main --checkout .
    .venv/bin/python bench/bench_scale.py --sizes 100000 300000
    .venv/bin/python bench/bench_scale.py --sizes 100000 300000 --checkout /work/main --checkout .
    .venv/bin/python bench/bench_scale.py --sizes 1000000
    .venv/bin/python bench/bench_scale.py --sizes 100000 300000 --prefill --judge
    .venv/bin/python bench/bench_scale.py --sizes 100000 300000 --prefill --samples 4
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
DUPLICATE_SHARE = 0.03
NEAR_DUPLICATE_SHARE = 0.03
_WORD = re.compile(r"[A-Za-z]{3,}")


# ----- the prompts -----
def _shipped(project: Path) -> tuple[list[dict], list[str]]:
    """The shipped GSM8K rows, and every sentence of every shipped prompt."""
    gsm8k = [json.loads(line) for line in (project / "data/sample_prompts/gsm8k_train_sample.jsonl").open()]
    texts = [row["question"] for row in gsm8k]
    for line in (project / "data/sample_prompts/mt_bench_questions.jsonl").open():
        texts += json.loads(line)["turns"]
    for line in (project / "data/code_tasks/mbpp_train_sample.jsonl").open():
        row = json.loads(line)
        texts.append(row.get("text") or row.get("prompt") or "")
    sentences = [s.strip() for text in texts for s in re.split(r"(?<=[.?!])\s+", text) if len(s.split()) >= 5]
    return gsm8k, sentences


def write_prompts(n: int, folder: Path, seed: int = 19) -> dict[str, str]:
    """``n`` prompts as JSONL files under ``folder``; returns the GSM8K answer key (question -> answer)."""
    rng = random.Random(seed)
    gsm8k, sentences = _shipped(PROJECT)
    vocabulary = sorted({w.lower() for s in sentences for w in _WORD.findall(s)})
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "gsm8k.jsonl").open("w") as out:
        for row in gsm8k[:n]:
            out.write(json.dumps({"question": row["question"], "answer": row["answer"]}) + "\n")
    made: list[str] = []
    with (folder / "synthetic.jsonl").open("w") as out:
        for i in range(max(0, n - len(gsm8k))):
            roll = rng.random()
            if made and roll < DUPLICATE_SHARE:
                text = "  ".join(rng.choice(made).upper().split(" "))
            elif made and roll < DUPLICATE_SHARE + NEAR_DUPLICATE_SHARE:
                words = rng.choice(made).split()
                words[rng.randrange(len(words))] = rng.choice(vocabulary)
                text = " ".join(words)
            else:
                first, second = rng.sample(sentences, 2)
                clause = " ".join(rng.choices(vocabulary, k=8))
                text = re.sub(r"\d+", lambda _: str(rng.randint(2, 999)), f"{first} {second} Context: {clause}.")
                if len(made) < 200_000:
                    made.append(text)
                else:
                    made[rng.randrange(len(made))] = text
            out.write(json.dumps({"prompt": text, "id": i}) + "\n")
    return {row["question"]: row["answer"] for row in gsm8k}


def prefill_ledger(
    folder: Path, key: dict[str, str], ledger: Path, *, samples: int = 1, judge: bool = False, batch: int = 20_000
) -> int:
    """Add the instant teacher's answers to every prompt under ``folder`` to ``ledger``; returns the
    answers added.

    Keyed as the teacher stage keys a single-turn prompt: ``samples`` samples at their own sampling
    (``TeacherSettings.sample_params``), and with ``judge`` the judge's judgment of every sample's
    answer, keyed as the judge stage keys it (``distillset.quality.judge``: the rubric as system
    prompt, the conversation and the prompt's reference, the judge's deterministic sampling).
    """
    from datetime import UTC, datetime

    from distillset import ids
    from distillset.quality.judge import JUDGE_RUBRIC, judge_generation_settings, judge_prompt
    from distillset.settings.tree import JudgeSettings, TeacherSettings
    from distillset.teacher.ledger import Ledger, LedgerAnswer

    teacher = TeacherSettings(model=MODEL)
    sample_sampling = [teacher.sample_params(i) for i in range(samples)]
    judging = judge_generation_settings(JudgeSettings().for_teacher(teacher), teacher)
    judge_sampling = judging.sampling_params()
    now = datetime.now(UTC)
    book = Ledger(ledger)
    added, answers = 0, []

    def record(model: str, messages: list[dict], sampling: dict, content: str) -> None:
        answers.append(
            LedgerAnswer(
                request_hash=ids.request_hash(model, messages, sampling),
                model=model,
                messages_json=ids.canonical_json(messages),
                sampling_json=ids.canonical_json(sampling),
                content=content,
                finish_reason="stop",
                prompt_tokens=sum(len(m["content"].split()) for m in messages),
                completion_tokens=len(content.split()),
                latency_ms=0.0,
                attempts=1,
                response_id=None,
                endpoint="bench_scale --prefill",
                simulated=False,
                created_at=now,
                run_id="bench-scale-prefill",
                served_model=model,
            )
        )

    try:
        for file in sorted(folder.glob("*.jsonl")):
            for line in file.open():
                row = json.loads(line)
                text = row["prompt"] if "prompt" in row else row["question"]
                messages = [{"role": "user", "content": text}]
                # The pool's reference of a GSM8K row: the text after its answer's last "####".
                reference = (key[text].rsplit("####", 1)[-1].strip() or None) if text in key else None
                for sampling in sample_sampling:
                    content = _answer(text, key, sampling.get("seed"))
                    record(MODEL, messages, sampling, content)
                    if judge:
                        rated = judge_prompt([*messages, {"role": "assistant", "content": content}], reference)
                        asked = [{"role": "system", "content": JUDGE_RUBRIC}, {"role": "user", "content": rated}]
                        record(judging.model, asked, judge_sampling, _judgment(rated))
                if len(answers) >= batch:
                    added += book.merge(answers, [])[0]
                    answers = []
        added += book.merge(answers, [])[0]
    finally:
        book.close()
    return added


# ----- the instant teacher (its own process, not measured) -----
def _answer(prompt: str, key: dict[str, str], seed: int | None = None) -> str:
    """The instant teacher's answer: GSM8K's own (right), else the prompt's words shuffled, in an
    order of their own for each best-of-N sample's ``seed`` (none: the single-answer request)."""
    if prompt in key:
        return key[prompt]
    words = prompt.split()
    salt = b"" if seed is None else f"\x00{seed}".encode()
    rng = random.Random(hashlib.blake2b(prompt.encode() + salt, digest_size=8).digest())
    rng.shuffle(words)
    return (
        "Here is a careful answer. "
        + " ".join(words)
        + ". In short, each part of the request is addressed in turn, and the result follows from it."
    )


def _judgment(rated: str) -> str:
    """The instant judge's answer to a judge request (its user message ``rated``): a JSON judgment,
    score 3-9 drawn from the request, as ``distillset.quality.judge.parse_judgment`` reads it."""
    score = 3 + hashlib.blake2b(rated.encode(), digest_size=2).digest()[0] % 7
    return json.dumps({"score": score, "rationale": "Addresses the request; the instant bench judge."})


def _serve(key: dict[str, str], port_queue) -> None:
    from aiohttp import web

    from distillset.quality.judge import JUDGE_RUBRIC_MARKER

    counter = 0

    async def chat(request: web.Request) -> web.Response:
        nonlocal counter
        body = await request.json()
        users = [m for m in body["messages"] if m.get("role") == "user"]
        content = users[-1]["content"] if users else ""
        if isinstance(content, list):
            content = " ".join(part.get("text", "") for part in content)
        counter += 1
        system = next((m.get("content") or "" for m in body["messages"] if m.get("role") == "system"), "")
        if JUDGE_RUBRIC_MARKER in system:
            answer = _judgment(content)
        else:
            answer = _answer(content, key, body.get("seed"))
        return web.json_response(
            {
                "id": f"chatcmpl-{counter}",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": body.get("model", MODEL),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(content) // 4, "completion_tokens": len(answer) // 4, "total_tokens": 0},
            }
        )

    async def main() -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


class Teacher:
    def __init__(self, key: dict[str, str]) -> None:
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        self.process = ctx.Process(target=_serve, args=(key, queue), daemon=True)
        self.process.start()
        self.base_url = f"http://127.0.0.1:{queue.get(timeout=60)}/v1"

    def __enter__(self) -> Teacher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.terminate()
        self.process.join(10)


# ----- measuring one run -----
def _tree_rss_bytes(root: int) -> tuple[int, float]:
    """The summed RSS of ``root`` and all its descendants, and their summed CPU seconds (user +
    system, live processes only), from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    cpu: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            statm = Path(f"/proc/{entry}/statm").read_text().split()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(statm[1]) * page
        cpu[int(entry)] = int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    total, ticks, stack = 0, 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        ticks += cpu.get(pid, 0)
        stack += children.get(pid, [])
    return total, ticks / os.sysconf("SC_CLK_TCK")


def _step_stats(python: Path, dagster_home: Path) -> list[tuple[str, float, float]]:
    """``(step, start, end)`` of the run's steps, from its Dagster instance (the checkout's own dagster)."""
    script = (
        "import json, sys\n"
        "from dagster import DagsterInstance\n"
        "instance = DagsterInstance.from_config(sys.argv[1])\n"
        "run = instance.get_runs(limit=1)[0]\n"
        "print(json.dumps([(s.step_key, s.start_time, s.end_time) for s in instance.get_run_step_stats(run.run_id)]))\n"
    )
    out = subprocess.run([str(python), "-c", script, str(dagster_home)], capture_output=True, text=True, check=True)
    return [tuple(row) for row in json.loads(out.stdout.strip().splitlines()[-1])]


def measure(
    checkout: Path, prompts: Path, base_url: str, chunk_rows: int | None, ledger: Path, extra_env: dict[str, str]
) -> dict:
    """One ``distillset run`` of ``checkout`` over ``prompts``: wall time, peak RSS, per-stage times and peaks."""
    checkout = checkout.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as home:
        env = {
            **os.environ,
            "DISTILLSET_HOME": home,
            "DAGSTER_HOME": str(Path(home) / "dagster"),
            "DISTILLSET_PROMPTS_URL": str(prompts),
            "TEACHER_BASE_URL": base_url,
            "TEACHER_API_KEY": "bench",
            "TEACHER_MODEL": MODEL,
            "DISTILLSET_DEFAULT_LICENSE": "MIT",
            "DISTILLSET_LEDGER_URL": str(ledger),
            **extra_env,
        }
        env.pop("VIRTUAL_ENV", None)
        if chunk_rows:
            env["DISTILLSET_CHUNK_ROWS"] = str(chunk_rows)
        samples: list[tuple[float, int, float]] = []
        log = Path(home) / "run.log"
        started = time.time()
        with log.open("w") as out:
            process = subprocess.Popen(
                [str(checkout / ".venv/bin/distillset"), "run"], cwd=checkout, env=env, stdout=out, stderr=out
            )
            done = threading.Event()

            def poll() -> None:
                while not done.is_set():
                    samples.append((time.time(), *_tree_rss_bytes(process.pid)))
                    done.wait(0.2)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            code = process.wait()
            done.set()
            poller.join()
        wall = time.time() - started
        if code not in (0, 4):
            tail = log.read_text()[-3000:]
            raise RuntimeError(f"distillset run exited {code}:\n{tail}")
        steps = []
        for step, start, end in _step_stats(checkout / ".venv/bin/python", Path(home) / "dagster"):
            if start is None or end is None:
                continue
            peak = max((rss for t, rss, _ in samples if start <= t <= end), default=0)
            steps.append(
                {
                    "step": step,
                    "seconds": end - start,
                    "cpu_s": _cpu_at(samples, end) - _cpu_at(samples, start),
                    "peak_mb": peak / 2**20,
                }
            )
        steps.sort(key=lambda s: s["seconds"], reverse=True)
        return {
            "ledger_lines": _paid_lines(log.read_text()),
            "exit_code": code,
            "wall_s": wall,
            "peak_mb": max((rss for _, rss, _ in samples), default=0) / 2**20,
            "steps": steps,
        }


def _cpu_at(samples: list[tuple[float, int, float]], moment: float) -> float:
    """The run tree's CPU seconds at the last sample taken by ``moment`` (samples every 0.2 s)."""
    return max((cpu for t, _, cpu in samples if t <= moment), default=0.0)


def _paid_lines(log: str) -> list[str]:
    """The run summary's lines saying what was paid and what came from the ledger."""
    return [
        line.strip()
        for line in log.splitlines()
        if " paid" in line and "reused" in line and " - dagster - " not in line  # not the progress log
    ]


def _report(size: int, label: str, result: dict) -> None:
    steps = result["steps"]
    teacher = sum(s["seconds"] for s in steps if s["step"].startswith("teacher_generations"))
    outside = sum(s["seconds"] for s in steps) - teacher
    outside_cpu = sum(s.get("cpu_s", 0.0) for s in steps if not s["step"].startswith("teacher_generations"))
    print(
        f"\n== {size:,} prompts, {label}: exit {result['exit_code']}, wall {result['wall_s']:.1f} s, "
        f"peak RSS {result['peak_mb']:,.0f} MB, steps outside the teacher {outside:.1f} s "
        f"({outside / size * 100_000:.1f} s per 100k; CPU {outside_cpu:.1f} s), teacher {teacher:.1f} s",
        flush=True,
    )
    for line in result.get("ledger_lines", []):
        print(f"   {line}")
    print("| step | seconds | CPU s | peak RSS MB while it ran |\n|---|---:|---:|---:|")
    for step in steps:
        if step["seconds"] >= 0.5:
            print(f"| {step['step']} | {step['seconds']:.1f} | {step.get('cpu_s', 0.0):.1f} | {step['peak_mb']:,.0f} |")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--checkout", type=Path, action="append", help="checkouts to run (default: this one)")
    parser.add_argument("--chunk-rows", type=int, help="DISTILLSET_CHUNK_ROWS (default: the setting's default)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--ledger",
        type=Path,
        help="a teacher ledger (SQLite) to start from, e.g. one an earlier bench run paid (--keep-ledger)",
    )
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE set for every run (e.g. MALLOC_MMAP_THRESHOLD_=262144)"
    )
    parser.add_argument("--keep-ledger", type=Path, help="copy the shared ledger here at the end")
    parser.add_argument(
        "--prefill", action="store_true", help="write the instant teacher's answers to the ledger before the runs"
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=1,
        help="best-of-N: TEACHER_SAMPLES_PER_PROMPT for every run (with --prefill, every sample's answer is prefilled)",
    )
    parser.add_argument(
        "--judge",
        action="store_true",
        help="the LLM judge on: DISTILLSET_JUDGE_ENABLED=true (with --prefill, every answer's judgment is prefilled)",
    )
    args = parser.parse_args()
    if args.samples < 1:
        parser.error("--samples must be at least 1")
    checkouts = args.checkout or [PROJECT]
    stage_env = {}
    if args.samples > 1:
        stage_env["TEACHER_SAMPLES_PER_PROMPT"] = str(args.samples)
    if args.judge:
        stage_env["DISTILLSET_JUDGE_ENABLED"] = "true"
    extra_env = {**stage_env, **dict(item.split("=", 1) for item in args.env)}
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-prompts-") as scratch:
        # One ledger for every run: the first run of a size pays the teacher, the others (and
        # smaller sizes: their prompts are a prefix of the larger ones) read answers from it.
        ledger = Path(scratch) / "ledger.sqlite"
        if args.ledger:
            shutil.copyfile(args.ledger, ledger)
        for size in args.sizes:
            folder = Path(scratch) / str(size)
            key = write_prompts(size, folder)
            if args.prefill:
                added = prefill_ledger(folder, key, ledger, samples=args.samples, judge=args.judge)
                print(f"prefilled {added:,} answers", flush=True)
            with Teacher(key) as teacher:
                for checkout in checkouts:
                    label = " ".join([str(checkout), *(f"{k}={v}" for k, v in stage_env.items()), *args.env])
                    run_ledger = ledger
                    if args.prefill:
                        # Each run on its own copy of the prefilled ledger: the scorecard's
                        # temperature-0 requests are not prefilled, and a shared ledger would
                        # let every checkout after the first read them for free.
                        run_ledger = Path(scratch) / "run-ledger.sqlite"
                        shutil.copyfile(ledger, run_ledger)
                    result = measure(checkout, folder, teacher.base_url, args.chunk_rows, run_ledger, extra_env)
                    _report(size, label, result)
                    results.append({"size": size, "checkout": label, **result})
            for file in folder.iterdir():
                file.unlink()
        if args.keep_ledger:
            shutil.copyfile(ledger, args.keep_ledger)
    print("\n| prompts | checkout | wall s | peak RSS MB | outside the teacher s (per 100k) | its CPU s |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in results:
        teacher = sum(s["seconds"] for s in r["steps"] if s["step"].startswith("teacher_generations"))
        outside = sum(s["seconds"] for s in r["steps"]) - teacher
        cpu = sum(s["cpu_s"] for s in r["steps"] if not s["step"].startswith("teacher_generations"))
        print(
            f"| {r['size']:,} | {r['checkout']} | {r['wall_s']:.0f} | {r['peak_mb']:,.0f} | "
            f"{outside:.0f} ({outside / r['size'] * 100_000:.1f}) | {cpu:.0f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
