"""``distillset simulator``: serve the embedded OpenAI-compatible teacher simulator in the foreground."""

from __future__ import annotations

import argparse
import os
import signal
import threading

from distillset.simulator.accuracy import parse_model_accuracy
from distillset.simulator.faults import SimulatorFaults
from distillset.simulator.server import DEFAULT_MODELS, TeacherSimulator

NAME = "simulator"
HELP = "serve the deterministic OpenAI-compatible teacher simulator on loopback until Ctrl-C"

_FAULT_FLAGS = {
    "rate_429": "fraction of requests answered 429 with Retry-After",
    "rate_500": "fraction answered 500",
    "rate_503": "fraction answered 503",
    "rate_slow": "fraction answered only after --slow-s extra seconds",
    "rate_drop": "fraction whose connection is closed without a response",
    "rate_invalid_json": "fraction answered 200 with an invalid JSON body",
    "rate_empty": "fraction answered 200 with empty content",
    "rate_truncate": "fraction cut short with finish_reason=length",
}


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a fault rate must be in [0, 1], got {text}")
    return value


def _sample_references() -> dict[str, str]:
    from distillset.jsonl import iter_json_objects
    from distillset.settings.paths import DATA_DIR
    from distillset.verify.extract import reference_answer

    path = DATA_DIR / "sample_prompts" / "gsm8k_train_sample.jsonl"
    return {r["question"]: reference_answer(r["answer"]) or "" for _, r in iter_json_objects(path)}


def _accuracies(text: str) -> dict[str, float]:
    try:
        return parse_model_accuracy(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="MODEL",
        help=f"a served model id (repeatable; default: {', '.join(DEFAULT_MODELS)})",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency of every completion, in milliseconds")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="extra random latency up to this, in milliseconds")
    for name, help_text in _FAULT_FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=_rate, default=0.0, help=help_text)
    parser.add_argument("--retry-after-s", type=float, default=0.05, help="Retry-After sent with 429s")
    parser.add_argument("--slow-s", type=float, default=5.0, help="extra seconds of a slow response")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the fault draws")
    parser.add_argument(
        "--model-accuracy",
        type=_accuracies,
        default={},
        metavar="M=ACC,...",
        help="share of known word problems each model answers right, e.g. meta-llama/A=0.9,meta-llama/B=0.55",
    )
    parser.add_argument(
        "--know-benchmarks",
        action="store_true",
        help="know the GSM8K test and sample-prompt references, so evaluations and the demo measure --model-accuracy",
    )
    parser.add_argument(
        "--require-api-key-env",
        metavar="VAR",
        help=(
            "require 'Authorization: Bearer <value of VAR>' (the key is read from the environment, never the "
            "command line)"
        ),
    )


def run(args: argparse.Namespace) -> int:
    faults = SimulatorFaults(
        **{name: getattr(args, name) for name in _FAULT_FLAGS},
        retry_after_s=args.retry_after_s,
        slow_s=args.slow_s,
        seed=args.fault_seed,
    )
    api_key = None
    if args.require_api_key_env:
        api_key = os.environ.get(args.require_api_key_env)
        if not api_key:
            print(f"error: environment variable {args.require_api_key_env} is empty or unset")
            return 2
    answer_key = None
    if args.know_benchmarks:
        from distillset.scorecards.sets import answer_key as benchmark_answers
        from distillset.scorecards.sets import load_questions

        answer_key = {**_sample_references(), **benchmark_answers(load_questions("gsm8k"))}
    simulator = TeacherSimulator(
        args.models or None,
        model_accuracy=args.model_accuracy,
        answer_key=answer_key,
        latency_s=args.latency_ms / 1000.0,
        jitter_s=args.jitter_ms / 1000.0,
        faults=faults,
        api_key=api_key,
        host=args.host,
        port=args.port,
    )
    # Explicit handlers, installed before the banner: a shell that starts us in the background
    # ignores SIGINT, and Python then never raises KeyboardInterrupt.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        simulator.start()
    except RuntimeError as exc:
        print(f"error: {exc}")
        return 1
    try:
        print(
            f"teacher simulator serving {', '.join(simulator.models)} at {simulator.base_url} (Ctrl-C to stop)",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        simulator.stop()
    return 0
