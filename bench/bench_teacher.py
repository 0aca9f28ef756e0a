"""Benchmark: teacher generation (``distillset.teacher.generate.generate``) against a bare OpenAI SDK loop.

Everything is measured in one run against a minimal local OpenAI-compatible aiohttp server that
runs in its own process (a fixed answer, no parsing, so the client side is what is measured; on a
2-core machine server and client share the CPU):

1. instant server, 64 in flight: raw ``AsyncOpenAI`` (aiohttp transport) tight loop vs ``generate``
   with a fresh ledger in a temporary folder; ratio (goal: >= 0.9x).
2. 200 ms server latency at 64 and 256 in flight: the same two, ratio.
3. peak memory (RSS, in a fresh subprocess each) of ``generate`` over a streamed input at two sizes.

Usage:
    python bench/bench_teacher.py          # quick (3-4 minutes on 2 shared cores): 5,000 prompts instant,
                                           # 2,000 at 200 ms, memory at 10k vs 30k prompts
    python bench/bench_teacher.py --full   # 5,000 prompts at 200 ms too, memory at 10k vs 100k prompts
    python bench/bench_teacher.py --prompts 20000 --latency-prompts 10000 --memory-sizes 10000 100000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
# After PYTHONPATH, not before it: the side-by-side benchmarks (``--trees``) import another checkout's
# distillset through PYTHONPATH, and inserting this checkout first made them all measure this one.
_GIVEN = {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
_AFTER_GIVEN = max((i + 1 for i, p in enumerate(sys.path) if p and os.path.abspath(p) in _GIVEN), default=0)
sys.path.insert(_AFTER_GIVEN, str(PROJECT))

MODEL = "meta-llama/Llama-3.1-405B-Instruct"
ANSWER = (
    "Mountains form where tectonic plates collide and push the crust upward over millions of years. "
    "Erosion by wind, water and ice then shapes the peaks and valleys we see today."
)


# ----- the bench server (its own process) -----
def _serve(latency_s: float, port_queue) -> None:
    from aiohttp import web

    counter = 0
    prefix = json.dumps(
        {
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 40, "total_tokens": 60},
        }
    )[:-1]

    async def chat(request: web.Request) -> web.Response:
        nonlocal counter
        await request.read()
        if latency_s:
            await asyncio.sleep(latency_s)
        counter += 1
        return web.Response(body=f'{prefix}, "id": "chatcmpl-{counter}"}}'.encode(), content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


class BenchServer:
    def __init__(self, latency_s: float) -> None:
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        self.process = ctx.Process(target=_serve, args=(latency_s, queue), daemon=True)
        self.process.start()
        self.base_url = f"http://127.0.0.1:{queue.get(timeout=30)}/v1"

    def __enter__(self) -> BenchServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.terminate()
        self.process.join(timeout=10)


# ----- the two clients -----
def prompt_text(i: int) -> str:
    return f"Tell me about mountain range number {i} and how it formed."


async def _raw_sdk(base_url: str, n: int, concurrency: int) -> None:
    from openai import AsyncOpenAI, DefaultAioHttpClient

    async with AsyncOpenAI(
        base_url=base_url, api_key="not-needed", max_retries=0, timeout=120, http_client=DefaultAioHttpClient()
    ) as client:
        numbers = iter(range(n))

        async def worker() -> None:
            for i in numbers:
                response = await client.chat.completions.create(
                    model=MODEL,
                    messages=[{"role": "user", "content": prompt_text(i)}],
                    temperature=0.7,
                    top_p=0.95,
                    max_tokens=1024,
                )
                assert response.choices[0].message.content

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this (client) process
    return usage.ru_utime + usage.ru_stime


def run_raw(base_url: str, n: int, concurrency: int) -> tuple[float, float]:
    """Requests per second and client CPU milliseconds per request."""
    started, cpu = time.perf_counter(), _cpu_s()
    asyncio.run(_raw_sdk(base_url, n, concurrency))
    return n / (time.perf_counter() - started), (_cpu_s() - cpu) * 1000 / n


def conversations(n: int):
    from distillset.teacher.rows import Conversation

    for i in range(n):
        yield Conversation(prompt_id=f"p{i}", system=None, turns=[prompt_text(i)])


def run_generate(base_url: str, n: int, concurrency: int) -> tuple[float, float]:
    """Requests per second and client CPU milliseconds per request (ledger writes included)."""
    from distillset.settings import TeacherSettings
    from distillset.teacher.endpoints import TeacherEndpoint
    from distillset.teacher.generate import generate
    from distillset.teacher.ledger import Ledger

    settings = TeacherSettings(base_url=base_url, max_concurrency=concurrency)
    endpoint = TeacherEndpoint(base_url=base_url, api_key=None, simulated=False)
    with tempfile.TemporaryDirectory() as tmp:
        started, cpu = time.perf_counter(), _cpu_s()
        result = generate(conversations(n), settings, endpoint, Ledger(Path(tmp) / "ledger.sqlite"))
        elapsed, cpu_ms = time.perf_counter() - started, (_cpu_s() - cpu) * 1000 / n
    assert result.stats.requests_paid == n, result.stats
    return n / elapsed, cpu_ms


# ----- memory (a fresh process per size, so peaks do not mix) -----
def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_child(base_url: str, n: int) -> None:
    import threading

    from distillset.settings import TeacherSettings
    from distillset.teacher.endpoints import TeacherEndpoint
    from distillset.teacher.generate import generate
    from distillset.teacher.ledger import Ledger

    settings = TeacherSettings(base_url=base_url, max_concurrency=64)
    endpoint = TeacherEndpoint(base_url=base_url, api_key=None, simulated=False)
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up run so lazy imports and the connection pool are in the baseline, not the growth.
        generate(conversations(200), settings, endpoint, Ledger(Path(tmp) / "warmup.sqlite"))
    baseline = _rss_mb()
    peak = baseline
    running = True

    def sample() -> None:  # RSS sampled every 20 ms: ru_maxrss would include import-time peaks
        nonlocal peak
        while running:
            peak = max(peak, _rss_mb())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        result = generate(conversations(n), settings, endpoint, Ledger(Path(tmp) / "ledger.sqlite"))
    running = False
    sampler.join()
    peak = max(peak, _rss_mb())
    frame_mb = result.generations.estimated_size("mb")
    print(
        json.dumps({"baseline_mb": baseline, "peak_mb": peak, "frame_mb": frame_mb, "paid": result.stats.requests_paid})
    )


def run_memory(base_url: str, n: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(n), "--base-url", base_url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


# ----- report -----
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=5000, help="prompts for the instant-server comparison")
    parser.add_argument("--latency-prompts", type=int, default=2000, help="prompts for the 200 ms comparisons")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions of each comparison")
    parser.add_argument("--memory-sizes", type=int, nargs=2, default=None, metavar=("SMALL", "LARGE"))
    parser.add_argument("--full", action="store_true", help="memory at 10k vs 100k prompts")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.base_url, args.memory_child)
        return
    memory_sizes = args.memory_sizes or ([10_000, 100_000] if args.full else [10_000, 30_000])
    if args.full and args.latency_prompts == parser.get_default("latency_prompts"):
        args.latency_prompts = 5000

    print(f"machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    print(f"each pair is measured {args.rounds} times, interleaved (raw, generate, raw, ...); best and median reported")
    rows = []

    def compare(name: str, base_url: str, n: int, concurrency: int) -> None:
        raws, gens = [], []
        for _ in range(args.rounds):
            raws.append(run_raw(base_url, n, concurrency))
            gens.append(run_generate(base_url, n, concurrency))
        raw_rates, raw_cpu = zip(*raws, strict=True)
        gen_rates, gen_cpu = zip(*gens, strict=True)
        rows.append(
            (
                name,
                concurrency,
                n,
                max(raw_rates),
                max(gen_rates),
                statistics.median(raw_rates),
                statistics.median(gen_rates),
                min(raw_cpu),
                min(gen_cpu),
            )
        )

    with BenchServer(0.0) as server:
        run_raw(server.base_url, 500, 64)  # warm-up: imports and the server's first connections
        run_generate(server.base_url, 500, 64)
        compare("instant", server.base_url, args.prompts, 64)
    with BenchServer(0.2) as server:
        run_raw(server.base_url, 500, 64)
        for concurrency in (64, 256):
            compare("200 ms latency", server.base_url, args.latency_prompts, concurrency)

    print()
    print(
        "| server | in flight | prompts | raw SDK req/s (best) | generate req/s (best) | ratio of bests | ratio of "
        "medians "
        "| raw CPU ms/req | generate CPU ms/req | CPU ratio raw/generate |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, concurrency, n, raw, gen, raw_med, gen_med, raw_cpu, gen_cpu in rows:
        print(
            f"| {name} | {concurrency} | {n:,} | {raw:,.0f} | {gen:,.0f} | {gen / raw:.2f}x | {gen_med / raw_med:.2f}x "
            f"| {raw_cpu:.2f} | {gen_cpu:.2f} | {raw_cpu / gen_cpu:.2f}x |"
        )
    print(
        "(CPU ms/req is the client process's CPU time per request, best of the rounds: it is what the machine's "
        "noise disturbs least)"
    )

    if not args.skip_memory:
        with BenchServer(0.0) as server:
            small, large = (run_memory(server.base_url, n) for n in memory_sizes)
        print()
        print(
            "| prompts | baseline RSS MB | peak RSS MB | growth MB | returned frame MB (estimated) | growth per 1k "
            "prompts MB |"
        )
        print("|---:|---:|---:|---:|---:|---:|")
        for n, m in zip(memory_sizes, (small, large), strict=True):
            growth = m["peak_mb"] - m["baseline_mb"]
            print(
                f"| {n:,} | {m['baseline_mb']:.0f} | {m['peak_mb']:.0f} | {growth:.0f} | {m['frame_mb']:.1f} | "
                f"{growth / n * 1000:.2f} |"
            )
        print(
            "\n(the returned frame holds one row per prompt, so it grows with the input by contract; "
            "the rest of generate's memory is bounded by max_concurrency and the 1,024-row frame chunks)"
        )


if __name__ == "__main__":
    main()
