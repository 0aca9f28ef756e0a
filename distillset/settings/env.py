"""The one environment parser: one set of rules for every variable distillset reads.

Rules (the same for every variable):

- unset or empty (after stripping) means "use the default";
- numbers: ``12``, ``0.7``, ``1e6``; whole numbers refuse ``2.5``; ``nan`` and ``inf`` are refused;
- yes/no: ``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off`` (any case);
- lists: comma-separated, items stripped, empty items dropped;
- durations: seconds (``90``, ``0.5``) or a number with a unit ``s``, ``m``, ``h``, ``d`` (``6h``);
- URLs: ``http://`` or ``https://`` with a host (endpoints); storage locations take a folder,
  ``file://`` or ``s3://bucket/prefix``.

Every error names the variable and the value (never for a secret, whose value is not echoed) and
says what was expected. :class:`SettingsError` gathers all the problems of one read so a user fixes
them in one go instead of one per run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class SettingsError(ValueError):
    """One or more settings are invalid; ``problems`` holds one sentence per variable."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(
            "; ".join(self.problems) if len(self.problems) == 1 else "\n".join(["invalid settings:", *self.problems])
        )


class InvalidValue(ValueError):
    """A value that does not follow its rule (the message says what was expected, not the name)."""


def raw(environ: Mapping[str, str], name: str) -> str | None:
    """The variable's text, or None when it is unset or empty."""
    value = environ.get(name)
    if value is None or not value.strip():
        return None
    return value


def parse_float(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise InvalidValue("is not a number") from None
    if not math.isfinite(value):
        raise InvalidValue("is not a finite number")
    return value


def parse_int(text: str) -> int:
    value = parse_float(text)
    if value != int(value):
        raise InvalidValue("is not a whole number")
    return int(value)


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidValue("is not a yes/no value (use true or false)")


def parse_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_duration(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise InvalidValue("is not a duration (seconds, or a number with s, m, h or d: 90, 15m, 6h)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise InvalidValue(f"is not a valid regular expression ({exc})") from None
    return text


def parse_http_url(text: str) -> str:
    value = text.strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InvalidValue("is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValue("is not an http:// or https:// URL with a host")
    return value


def parse_location(text: str) -> str:
    """A folder, ``file://`` path or ``s3://bucket[/prefix]``: where files are read or written."""
    value = text.strip()
    if "://" in value:
        scheme, rest = value.split("://", 1)
        if scheme in ("s3", "s3a"):
            if not rest.split("/", 1)[0]:
                raise InvalidValue("names no bucket (expected s3://bucket/prefix)")
        elif scheme not in ("file", "local", "memory"):
            raise InvalidValue(f"uses an unsupported scheme {scheme!r} (use a folder or s3://bucket/prefix)")
    return value


PARSERS = {
    "str": lambda text: text,
    "int": parse_int,
    "float": parse_float,
    "bool": parse_bool,
    "list": parse_list,
    "duration": parse_duration,
    "regex": parse_regex,
    "http_url": parse_http_url,
    "location": parse_location,
}
"""Rule name -> parser; a parser raises :class:`InvalidValue`."""
