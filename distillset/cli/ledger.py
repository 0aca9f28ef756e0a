"""``distillset ledger export|import``: move a teacher ledger's paid answers as JSON Lines.

This is also the migration path from a SQLite ledger to a PostgreSQL one: export the file, import
into ``--ledger postgresql://...`` (or ``DISTILLSET_LEDGER_URL``), which may already hold answers
(they are kept; importing twice adds nothing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from distillset.cli.common import settings_or_exit
from distillset.settings.ledger_url import check_ledger_url, describe_location, is_postgres_url, ledger_location
from distillset.teacher.ledger import Ledger
from distillset.teacher.ledger_io import export_ledger, import_ledger

NAME = "ledger"
HELP = (
    "export the teacher ledger's answers, failures and provider batches to JSON Lines, "
    "or import such a file into a ledger"
)
_LEDGER_HELP = (
    "the ledger: a SQLite file, sqlite:///path or postgresql://user@host:port/database "
    "(default: DISTILLSET_LEDGER_URL, else $DISTILLSET_HOME/ledger.sqlite); a URL with a password "
    "belongs in DISTILLSET_LEDGER_URL, not on the command line, where other users' ps can read it"
)


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="{export,import}")
    export = actions.add_parser("export", help="write every answer, failure and provider batch as JSON Lines")
    export.add_argument("--out", default="-", help="the JSONL file to write (default: standard output)")
    export.add_argument("--ledger", help=_LEDGER_HELP)
    imported = actions.add_parser(
        "import", help="add the answers, failures and provider batches of a JSONL export to a ledger"
    )
    imported.add_argument("input", help="a file written by `distillset ledger export`")
    imported.add_argument("--ledger", help=_LEDGER_HELP)


def _location(args: argparse.Namespace) -> Path | str:
    if not args.ledger:
        return settings_or_exit(NAME).ledger_location
    problem = check_ledger_url(args.ledger)
    if problem:
        raise ValueError(f"--ledger {problem}")
    return ledger_location(args.ledger, Path.cwd())


def _error(message: str) -> int:
    print(f"distillset ledger: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    try:
        location = _location(args)
    except ValueError as exc:
        return _error(str(exc))
    where = describe_location(location)
    if args.action == "export" and not is_postgres_url(location) and not Path(location).is_file():
        return _error(f"no ledger at {where}")
    source = Path(args.input) if args.action == "import" else None
    if source is not None and not source.is_file():
        return _error(f"no file {source}")
    try:
        ledger = Ledger(location)
    except RuntimeError as exc:  # a PostgreSQL server that does not answer (the message masks the password)
        return _error(str(exc))
    if args.action == "export":
        if args.out == "-":
            counts = export_ledger(ledger, sys.stdout)
        else:
            with open(args.out, "w", encoding="utf-8") as out:
                counts = export_ledger(ledger, out)
        print(
            f"exported {counts['answers']} answers, {counts['failures']} failures and "
            f"{counts['batches']} provider batches from {where}",
            file=sys.stderr,
        )
        return 0
    try:
        counts = import_ledger(ledger, source)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(f"{exc} (nothing was imported)")
    print(
        f"imported {counts['answers_added']} new answers (of {counts['answers']}), "
        f"{counts['failures_added']} new failures (of {counts['failures']}) and "
        f"{counts['batches_added']} new provider batches (of {counts['batches']}) into {where}"
    )
    return 0
