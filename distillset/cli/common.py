"""What the engine-only commands share: reading the settings once, with a one-line error."""

from __future__ import annotations

import argparse
import sys

from distillset.settings import Settings, SettingsError, load_settings


def settings_or_exit(command: str) -> Settings:
    """The settings from the environment, or exit 2 after printing what is wrong (no traceback)."""
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"distillset {command}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def add_location_flags(parser: argparse.ArgumentParser, *, catalog: bool = True, json_help: str = "print JSON") -> None:
    """The flags the audit commands share: where the training sets are (``--storage-url``), the
    catalog to read (``--catalog``, unless ``catalog=False``) and ``--json`` output."""
    parser.add_argument("--storage-url", help="folder or s3:// prefix (default: DISTILLSET_STORAGE_URL)")
    if catalog:
        parser.add_argument(
            "--catalog",
            help=(
                "DuckDB catalog file (default: DISTILLSET_CATALOG_URL's DuckLake, else $DISTILLSET_HOME/catalog.duckdb)"
            ),
        )
    parser.add_argument("--json", action="store_true", help=json_help)
