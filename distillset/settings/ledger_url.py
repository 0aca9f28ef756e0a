"""Where the teacher ledger is: ``DISTILLSET_LEDGER_URL``, or ``$DISTILLSET_HOME/ledger.sqlite``.

A ledger shared by several homes on one machine (or on a filesystem they all mount) is the same
SQLite file named by all of them: a path or ``sqlite:///absolute/path``. Workers on several machines
share a PostgreSQL ledger: ``postgresql://user[:password]@host[:port]/database`` (libpq's URL form,
any libpq parameter in the query string). The password is never shown: ``mask_url`` replaces it
wherever the URL is printed, logged or recorded.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from distillset.settings.paths import LEDGER_FILE

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
MASK = "***"


def is_postgres_url(value: str | Path | None) -> bool:
    """``value`` names a PostgreSQL ledger (not a file)."""
    return isinstance(value, str) and value.startswith(POSTGRES_SCHEMES)


def mask_url(url: str) -> str:
    """``url`` with its password (in the user part or as ``password=`` in the query) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"{url.split('://', 1)[0]}://{MASK}"  # unparseable: show nothing that could be a secret
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        if ":" in user:
            user = user.split(":", 1)[0] + ":" + MASK
        netloc = f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k.lower() == "password" else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _check_postgres_url(value: str) -> str | None:
    from psycopg.conninfo import conninfo_to_dict  # only a PostgreSQL ledger needs psycopg loaded

    try:
        params = conninfo_to_dict(value)
    except Exception as exc:  # noqa: BLE001 - psycopg raises ProgrammingError for any malformed URL
        # libpq's message may quote the URL, password included: name the problem only.
        return (
            f"is not a PostgreSQL URL libpq can read ({type(exc).__name__}); write postgresql://user@host:port/database"
        )
    if not params.get("dbname"):
        return "a PostgreSQL ledger URL must name its database: postgresql://user@host:port/database"
    return None


def check_ledger_url(value: str) -> str | None:
    """The problem with a ``DISTILLSET_LEDGER_URL`` value, or None (whether the server answers is
    checked when the ledger is opened, before the first paid call)."""
    if is_postgres_url(value):
        return _check_postgres_url(value)
    if "://" in value and not value.startswith(SQLITE_PREFIX):
        return "must be a file path, sqlite:///absolute/path or postgresql://user@host:port/database"
    if value.startswith(SQLITE_PREFIX) and not value.removeprefix(SQLITE_PREFIX):
        return "sqlite:/// needs a file path after it"
    return None


def ledger_path(url: str | None, home: Path) -> Path:
    """The ledger file ``url`` names (checked by ``check_ledger_url``), or the home's ledger.

    Raises:
        ValueError: ``url`` is a PostgreSQL URL (it names no file; see ``ledger_location``).
    """
    if is_postgres_url(url):
        raise ValueError(f"the ledger {mask_url(url)} is a PostgreSQL database, not a file")
    if not url:
        return Path(home) / LEDGER_FILE
    path = url.removeprefix(SQLITE_PREFIX)
    if url.startswith(SQLITE_PREFIX) and not path.startswith("/"):
        path = "/" + path  # sqlite:////abs and sqlite:///abs both name /abs
    return Path(path).expanduser().resolve()


def ledger_location(url: str | None, home: Path) -> Path | str:
    """What ``Ledger`` opens: the PostgreSQL URL as given, or the SQLite file (``ledger_path``)."""
    return url if is_postgres_url(url) else ledger_path(url, home)


def describe_location(location: Path | str) -> str:
    """A ledger location fit for messages, logs and metadata (a PostgreSQL password masked)."""
    return mask_url(location) if is_postgres_url(location) else str(location)
