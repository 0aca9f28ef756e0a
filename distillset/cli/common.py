"""What the engine-only commands share: reading the settings once, with a one-line error."""

from __future__ import annotations

import sys

from distillset.settings import Settings, SettingsError, load_settings


def settings_or_exit(command: str) -> Settings:
    """The settings from the environment, or exit 2 after printing what is wrong (no traceback)."""
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"distillset {command}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
