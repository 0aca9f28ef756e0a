"""``distillset diff NAME vA vB``: examples added and removed between two versions, and why."""

from __future__ import annotations

import argparse
import dataclasses
import json

from distillset.audit.diff import diff
from distillset.cli.common import add_location_flags, settings_or_exit

NAME = "diff"
HELP = (
    "show what changed in the configuration (teacher, sampling, prompts, thresholds...) and the examples added "
    "and removed between two versions of a training set, with removal reasons"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="training set name")
    parser.add_argument("old", help="older version (v0001, or 'latest')")
    parser.add_argument("new", help="newer version (v0002, or 'latest')")
    add_location_flags(parser)


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit(NAME)
    try:
        result = diff(
            args.storage_url or settings.storage_url,
            args.name,
            args.old,
            args.new,
            args.catalog or settings.catalog_location,
            storage_options=settings.storage_options(),
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=2, ensure_ascii=False))
        return 0
    print(
        f"{result.name}: {result.old_version} -> {result.new_version}: "
        f"{len(result.added)} added, {len(result.removed)} removed, {result.unchanged} unchanged"
    )
    if result.config_changes:
        print("configuration changed:")
        for change in result.config_changes:
            print(f"  {change['key']}: {_shown(change['old'])} -> {_shown(change['new'])}")
    else:
        print("configuration: unchanged")
    for row in result.added:
        print(f"+ {row['example_id']}  {row['excerpt']}")
    for row in result.removed:
        print(f"- {row['example_id']}  {row['excerpt']}")
        print(f"    why: {row['reason']}")
    return 0


def _shown(value: object) -> str:
    """A config value on one line (JSON, so a string and a number look different)."""
    return value if value == "(not recorded)" else json.dumps(value, ensure_ascii=False)
