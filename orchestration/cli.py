"""The ``distillset`` command line.

``run`` drives Dagster (it lives here, in the orchestration layer); the other subcommands run
engine code alone (``distillset/cli/``), so each step can be used outside Dagster.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from orchestration.run import DEFAULT_WAIT_TIMEOUT_S

# Engine-only subcommands (distillset/cli/<module>.py), in the order --help lists them.
ENGINE_COMMANDS: list[str] = [
    "versions",
    "diff",
    "explain",
    "evaluate",
    "scorecards",
    "dedup",
    "decontam",
    "score",
    "simulator",
    "ledger",
]


def _run(args: argparse.Namespace) -> int:
    from distillset.cli.common import settings_or_exit
    from orchestration.run import run_flow
    from orchestration.run_summary import format_summary

    settings = settings_or_exit("run")
    problem = _unreachable_ledger(settings) or _unreachable_catalog(settings)
    if problem:
        print(f"distillset run: error: {problem}", file=sys.stderr, flush=True)
        return 2
    # Dagster's own machinery (compute logs, the run launcher) reads DAGSTER_HOME from the process
    # environment; this entry point is the one place that sets it.
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home_path)
    summary = run_flow(
        settings,
        args.teacher,
        echo=lambda line: print(line, flush=True),
        wait_timeout_s=args.wait_timeout,
        allow_partial=args.allow_partial or settings.publish.allow_partial,
    )
    print(format_summary(summary), flush=True)
    return summary.final_exit_code()


def _unreachable_ledger(settings) -> str | None:
    """Why a PostgreSQL ledger cannot be used (its server does not answer), before anything starts.

    A SQLite ledger needs no check: its file is created by the run itself, as it always was.
    """
    from distillset.settings.ledger_url import is_postgres_url

    if not is_postgres_url(settings.ledger_url):
        return None
    from distillset.teacher.ledger import Ledger

    try:
        Ledger(settings.ledger_location).close()
    except RuntimeError as exc:  # the message masks the password
        return str(exc)
    return None


def _unreachable_catalog(settings) -> str | None:
    """Why a DuckLake catalog cannot be used (its PostgreSQL does not answer, its data path does not
    match the lake's), before anything starts; opening it the first time creates the lake."""
    from distillset.catalog_lake import CatalogUnreachableError, Lake, check_reachable

    location = settings.catalog_location
    if not isinstance(location, Lake):
        return None
    try:
        check_reachable(location)
    except (CatalogUnreachableError, RuntimeError) as exc:  # the messages mask the password
        return str(exc)
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command; given ``argv``, only the engine command it names is imported.

    Importing every command module (polars, DuckDB, the simulator...) cost more than a second on
    each call; ``distillset explain ID`` needs its own module alone (``python -X importtime``).
    """
    parser = argparse.ArgumentParser(
        prog="distillset",
        description="Distill a large open teacher model into versioned, audited training sets.",
        epilog="Configuration comes from environment variables; see README.md, 'Configuration'.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = sub.add_parser(
        "run",
        help="materialize the whole flow for one teacher (registers it as a partition if new)",
        description=(
            "Register the teacher named by TEACHER_MODEL (or --teacher) as a partition if it is new, "
            "then materialize every asset for it in DISTILLSET_HOME's Dagster instance "
            "(DAGSTER_HOME defaults to $DISTILLSET_HOME/dagster): one run, or with DISTILLSET_SHARDS=N > 1 "
            "the pool, N teacher x shard runs at once, then curation and publishing. With no TEACHER_BASE_URL, the "
            "embedded teacher simulator answers on loopback and everything is marked simulated. "
            "Exit codes: 0 done, 1 a stage or a blocking check failed, 2 a setting is invalid, 3 gave up "
            "waiting for a pool slot (--wait-timeout), 4 the teacher's budget ran out (TEACHER_BUDGET_TOKENS / "
            "TEACHER_BUDGET_USD; a version smaller than LATEST is then not published unless --allow-partial), "
            "130/143 stopped by SIGINT/SIGTERM."
        ),
    )
    run.add_argument(
        "--teacher",
        metavar="MODEL",
        help="teacher model id (default: TEACHER_MODEL or meta-llama/Llama-3.1-405B-Instruct)",
    )
    run.add_argument(
        "--wait-timeout",
        type=float,
        default=DEFAULT_WAIT_TIMEOUT_S,
        metavar="SECONDS",
        help=(
            "give up (exit code 3) after waiting this long for a catalog pool slot held by another live run; "
            f"runs whose process is gone never hold one (default {DEFAULT_WAIT_TIMEOUT_S:g})"
        ),
    )
    run.add_argument(
        "--allow-partial",
        action="store_true",
        help=(
            "after a budget stop, publish the version even when it is smaller than LATEST "
            "(default: DISTILLSET_ALLOW_PARTIAL, false); the run still exits with code 4"
        ),
    )
    run.set_defaults(handler=_run)
    chosen = _chosen_command(argv)
    for module_name in ENGINE_COMMANDS:
        if chosen is not None and module_name != chosen:
            # Never shown: argparse prints a subcommand's help only for the subcommand it runs.
            sub.add_parser(module_name)
            continue
        module = importlib.import_module(f"distillset.cli.{module_name}")
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.configure(command)
        command.set_defaults(handler=module.run)
    return parser


def _chosen_command(argv: list[str] | None) -> str | None:
    """The engine command ``argv`` runs (its first word), or None (``--help``, ``run``, nothing)."""
    if not argv or argv[0].startswith("-"):
        return None
    return argv[0] if argv[0] in ENGINE_COMMANDS else None


# What a shell reports for a process ended by SIGPIPE (128 + 13): ``distillset diff ... | head``.
BROKEN_PIPE_EXIT = 141


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except BrokenPipeError:
        # The reader of our output went away (``| head``): stop quietly, like other Unix tools.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE_EXIT


if __name__ == "__main__":
    sys.exit(main())
