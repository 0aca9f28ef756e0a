"""Where the teacher ledger is: ``DISTILLSET_LEDGER_URL``, or ``$DISTILLSET_HOME/ledger.sqlite``.

A ledger shared by several homes (two runs with their own ``DISTILLSET_HOME``, or workers that share
a filesystem) is the same SQLite file named by all of them: a path or ``sqlite:///absolute/path``.
A PostgreSQL ledger (``postgresql://...``, for workers on several machines) needs psycopg 3 and
psycopg-pool, which this build does not ship yet: such a URL is refused with that reason, never
silently replaced by a local file.
"""

from __future__ import annotations

from pathlib import Path

from distillset.settings.paths import LEDGER_FILE

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def check_ledger_url(value: str) -> str | None:
    """The problem with a ``DISTILLSET_LEDGER_URL`` value, or None."""
    if value.startswith(POSTGRES_SCHEMES):
        return (
            "a PostgreSQL ledger needs psycopg 3 and psycopg-pool, which this build does not ship yet; "
            "use a SQLite file every worker can reach (a path or sqlite:///absolute/path)"
        )
    if "://" in value and not value.startswith(SQLITE_PREFIX):
        return "must be a file path or sqlite:///absolute/path"
    if value.startswith(SQLITE_PREFIX) and not value.removeprefix(SQLITE_PREFIX):
        return "sqlite:/// needs a file path after it"
    return None


def ledger_path(url: str | None, home: Path) -> Path:
    """The ledger file ``url`` names (checked by ``check_ledger_url``), or the home's ledger."""
    if not url:
        return Path(home) / LEDGER_FILE
    path = url.removeprefix(SQLITE_PREFIX)
    if url.startswith(SQLITE_PREFIX) and not path.startswith("/"):
        path = "/" + path  # sqlite:////abs and sqlite:///abs both name /abs
    return Path(path).expanduser().resolve()
