"""``distillset ledger export|import``: move a teacher ledger's paid answers as JSON Lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from distillset.cli.common import settings_or_exit
from distillset.teacher.ledger import Ledger
from distillset.teacher.ledger_io import export_ledger, import_ledger

NAME = "ledger"
HELP = "export the teacher ledger's answers and failures to JSON Lines, or import such a file into a ledger"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="{export,import}")
    export = actions.add_parser("export", help="write every answer and failure as JSON Lines")
    export.add_argument("--out", default="-", help="the JSONL file to write (default: standard output)")
    export.add_argument("--ledger", help="the ledger file (default: $DISTILLSET_HOME/ledger.sqlite)")
    imported = actions.add_parser("import", help="add the answers and failures of a JSONL export to a ledger")
    imported.add_argument("input", help="a file written by `distillset ledger export`")
    imported.add_argument("--ledger", help="the ledger file (default: $DISTILLSET_HOME/ledger.sqlite)")


def _ledger_path(args: argparse.Namespace) -> Path:
    return Path(args.ledger) if args.ledger else settings_or_exit(NAME).ledger_path


def run(args: argparse.Namespace) -> int:
    path = _ledger_path(args)
    if args.action == "export":
        if not path.is_file():
            print(f"distillset ledger: error: no ledger at {path}", file=sys.stderr)
            return 2
        ledger = Ledger(path)
        if args.out == "-":
            counts = export_ledger(ledger, sys.stdout)
        else:
            with open(args.out, "w", encoding="utf-8") as out:
                counts = export_ledger(ledger, out)
        print(f"exported {counts['answers']} answers and {counts['failures']} failures from {path}", file=sys.stderr)
        return 0
    source = Path(args.input)
    if not source.is_file():
        print(f"distillset ledger: error: no file {source}", file=sys.stderr)
        return 2
    try:
        counts = import_ledger(Ledger(path), source)
    except (ValueError, UnicodeDecodeError) as exc:
        print(f"distillset ledger: error: {exc} (nothing was imported)", file=sys.stderr)
        return 2
    print(
        f"imported {counts['answers_added']} new answers (of {counts['answers']}) and "
        f"{counts['failures_added']} new failures (of {counts['failures']}) into {path}"
    )
    return 0
