"""``distillset versions NAME``: the published versions of a training set."""

from __future__ import annotations

import argparse
import dataclasses
import json

from distillset.audit.versions import versions
from distillset.cli.common import settings_or_exit
from distillset.scorecards.store import STUDENT, ScorecardStore

NAME = "versions"
HELP = "list the published versions of a training set (created, train/validation counts, content hash, simulated)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="training set name")
    parser.add_argument("--storage-url", help="folder or s3:// prefix (default: DISTILLSET_STORAGE_URL)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(NAME)
    storage_url = args.storage_url or settings.storage_url
    rows = versions(storage_url, args.name, settings.storage_options())
    store = ScorecardStore(settings.scorecards_path)
    students = {r.version: store.latest(kind=STUDENT, training_set=args.name, version=r.version) for r in rows}
    if args.json:
        print(
            json.dumps(
                [{**dataclasses.asdict(r), "students": [c.as_dict() for c in students[r.version]]} for r in rows],
                indent=2,
            )
        )
        return 0 if rows else 1
    if not rows:
        print(f"no published version of {args.name!r} under {storage_url}")
        return 1
    print(
        f"{'version':<8} {'created (UTC)':<21} {'train':>7} {'valid':>7} {'content hash':<14} {'parent':<8} "
        f"{'simulated':<9}  students (scorecards)"
    )
    for r in rows:
        print(
            f"{r.version:<8} {r.created_at:<21} {r.train:>7} {r.validation:>7} {r.content_hash[:12]:<14} "
            f"{r.parent_version or '-':<8} {'SIMULATED' if r.simulated else 'no':<9}  "
            + ("; ".join(f"{c.model} {c.benchmark} {c.accuracy:.3f}" for c in students[r.version]) or "-")
        )
    return 0
