"""``distillset versions [NAME]``: the published versions of a training set, or of every set."""

from __future__ import annotations

import argparse
import dataclasses
import json

from distillset.audit.versions import simulated_label, versions
from distillset.cli.common import add_location_flags, settings_or_exit
from distillset.scorecards.store import STUDENT, ScorecardStore

NAME = "versions"
HELP = (
    "list the published versions of a training set, or of every set when no name is given "
    "(created, train/validation counts, content hash, simulated: yes, no or mixed)"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="training set name (default: every training set)")
    add_location_flags(parser, catalog=False, json_help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(NAME)
    storage_url = args.storage_url or settings.storage_url
    rows = versions(storage_url, args.name, settings.storage_options())
    store = ScorecardStore(settings.scorecards_path)
    students = {(r.name, r.version): store.latest(kind=STUDENT, training_set=r.name, version=r.version) for r in rows}
    if args.json:
        print(
            json.dumps(
                [
                    {**dataclasses.asdict(r), "students": [c.as_dict() for c in students[(r.name, r.version)]]}
                    for r in rows
                ],
                indent=2,
            )
        )
        return 0 if rows else 1
    if not rows:
        what = f"of {args.name!r}" if args.name else "of any training set"
        print(f"no published version {what} under {storage_url}")
        return 1
    width = max(len("training set"), *(len(r.name) for r in rows))
    print(
        f"{'training set':<{width}} {'version':<8} {'created (UTC)':<21} {'train':>7} {'valid':>7} "
        f"{'content hash':<14} {'parent':<8} {'simulated':<22}  students (scorecards)"
    )
    for r in rows:
        same = f"  (same content as {r.same_content_as})" if r.same_content_as else ""
        print(
            f"{r.name:<{width}} {r.version:<8} {r.created_at:<21} {r.train:>7} {r.validation:>7} "
            f"{r.content_hash[:12]:<14} {r.parent_version or '-':<8} {simulated_label(r):<22}  "
            + ("; ".join(f"{c.model} {c.benchmark} {c.accuracy:.3f}" for c in students[(r.name, r.version)]) or "-")
            + same
        )
    return 0
