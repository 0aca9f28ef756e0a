"""``distillset evaluate --model M``: a model's scorecard on the held-out GSM8K test and IFEval sets."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys

from distillset.cli.common import settings_or_exit
from distillset.publish.reader import list_versions, read_manifest
from distillset.scorecards.evaluate import BenchmarkScore
from distillset.scorecards.sets import ALL, BENCHMARKS, benchmark_names
from distillset.scorecards.store import STUDENT, TEACHER, ScorecardStore, parse_student_of
from distillset.settings import Settings, SettingsError
from distillset.settings.env import parse_http_url
from distillset.simulator.accuracy import parse_model_accuracy
from distillset.simulator.endpoint import open_endpoint
from distillset.teacher.ledger import Ledger

NAME = "evaluate"
HELP = (
    "ask a model the held-out GSM8K test and IFEval questions (the decontamination sets), verify the answers "
    "and record its scorecard (accuracy with a 95%% interval); through the ledger at temperature 0, so a repeat "
    "pays nothing"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="M", help="the model id to ask")
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="OpenAI-compatible endpoint ending in /v1 (default: TEACHER_BASE_URL; unset: the embedded simulator)",
    )
    parser.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="read the endpoint's key from this variable (default: TEACHER_API_KEY, sent only to TEACHER_BASE_URL)",
    )
    parser.add_argument(
        "--benchmark", choices=[*BENCHMARKS, ALL], default=ALL, help="which held-out set (default: all)"
    )
    parser.add_argument("--limit", type=int, metavar="N", help="ask only the first N questions of each set")
    parser.add_argument(
        "--student-of",
        metavar="NAME:vNNNN",
        help="the model is a student trained on this training set version (recorded as kind 'student')",
    )
    parser.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _fail(message: str) -> int:
    print(f"distillset {NAME}: error: {message}", file=sys.stderr)
    return 2


def _endpoint_settings(settings: Settings, args: argparse.Namespace):
    teacher = settings.teacher
    base_url = parse_http_url(args.base_url) if args.base_url else teacher.base_url
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env) or None
        if api_key is None:
            raise ValueError(f"environment variable {args.api_key_env} is empty or unset")
    else:
        # TEACHER_API_KEY goes only to the endpoint it was issued for.
        api_key = teacher.api_key if base_url == teacher.base_url else None
    return teacher.with_overrides(base_url=base_url, api_key=api_key)


def _version_teacher(settings: Settings, student_of: str) -> str | None:
    """The teacher model of the version a student was trained on (checked to exist)."""
    name, version = parse_student_of(student_of)
    known = [v.version for v in list_versions(settings.storage_url, name, settings.storage_options())]
    if version not in known:
        raise ValueError(
            f"no published version {version} of {name!r} under {settings.storage_url}"
            + (f" (versions: {', '.join(known)})" if known else "")
        )
    manifest = read_manifest(settings.storage_url, name, version, settings.storage_options())
    return (manifest.get("teacher") or {}).get("model")


def _line(score: BenchmarkScore) -> str:
    extra = "".join(f", {k} {v:.3f}" for k, v in score.metrics.items())
    return (
        f"{score.benchmark:<7} {score.model}  n={score.n}  accuracy {score.accuracy:.3f} "
        f"(95% interval {score.ci_low:.3f}-{score.ci_high:.3f}){extra}; "
        f"{score.requests_paid} calls paid, {score.cache_hits} answers reused from the ledger"
        + (f", {score.failed} unanswered (counted wrong)" if score.failed else "")
        + ("; SIMULATED" if score.simulated else "")
    )


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(NAME)
    if args.limit is not None and args.limit < 1:
        return _fail("--limit must be at least 1")
    try:
        teacher = _endpoint_settings(settings, args)
        version_teacher = _version_teacher(settings, args.student_of) if args.student_of else None
        benchmarks = benchmark_names(args.benchmark)
    except (ValueError, SettingsError) as exc:
        return _fail(str(exc))
    endpoint_factory = functools.partial(
        open_endpoint,
        latency_s=settings.simulator.latency_ms / 1000.0,
        accuracy=settings.simulator.accuracy,
        model_accuracy=parse_model_accuracy(settings.simulator.model_accuracy),
        models=[args.model],
    )
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        ledger = Ledger(settings.ledger_location)
    except RuntimeError as exc:  # a PostgreSQL ledger that does not answer: nothing paid yet
        return _fail(str(exc))

    def progress(benchmark, report) -> None:
        print(f"evaluate {benchmark}: {report}", file=sys.stderr, flush=True)

    from distillset.scorecards.run import evaluate_model

    try:
        scores = evaluate_model(
            args.model,
            benchmarks,
            teacher,
            ledger,
            endpoint_factory,
            limit=args.limit,
            temperature=args.temperature,
            on_progress=progress,
        )
    finally:
        ledger.close()
    store = ScorecardStore(settings.scorecards_path)
    kind = STUDENT if args.student_of else TEACHER
    for score in scores:
        store.record(score, kind=kind, student_of=args.student_of)
    if args.student_of:
        from distillset.scorecards.cards import refresh_version_card

        card = refresh_version_card(
            settings.storage_url, args.student_of, store, version_teacher, settings.storage_options()
        )
        print(f"scorecards of {args.student_of}: {card}", file=sys.stderr)
    if args.json:
        objects = [{**s.as_dict(), "kind": kind, "student_of": args.student_of} for s in scores]
        payload = objects[0] if len(objects) == 1 else {"model": args.model, "benchmarks": objects}
        print(json.dumps(payload, indent=2))
        return 0
    for score in scores:
        print(_line(score))
    return 0
