"""``distillset scorecards``: every evaluation recorded, teachers and students."""

from __future__ import annotations

import argparse
import json

from distillset.cli.common import settings_or_exit
from distillset.scorecards.store import ScorecardStore

NAME = "scorecards"
HELP = (
    "list every recorded evaluation: model, kind (teacher/student), benchmark, n, accuracy and 95%% interval, when, "
    "and for a student the training set version it was trained on"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="only this model")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(NAME)
    cards = ScorecardStore(settings.scorecards_path).all(model=args.model)
    if args.json:
        print(json.dumps([c.as_dict() for c in cards], indent=2))
        return 0
    if not cards:
        print(f"no evaluation recorded in {settings.scorecards_path} (run `distillset evaluate --model M`)")
        return 0
    width = max(len("model"), *(len(c.model) for c in cards))
    print(f"{'model':<{width}} {'kind':<8} {'benchmark':<9} {'n':>5} {'accuracy':>8} {'95% interval':<13} "
          f"{'evaluated (UTC)':<25} trained on")  # fmt: skip
    for c in cards:
        print(
            f"{c.model:<{width}} {c.kind:<8} {c.benchmark:<9} {c.n:>5} {c.accuracy:>8.3f} "
            f"{c.ci_low:.3f}-{c.ci_high:.3f}   {c.evaluated_at:<25} {c.student_of or '-'}"
            + ("  SIMULATED" if c.simulated else "")
        )
    return 0
