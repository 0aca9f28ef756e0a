"""Where the catalog is: ``DISTILLSET_CATALOG_URL``, or the file ``$DISTILLSET_HOME/catalog.duckdb``.

Workers on several machines share a DuckLake catalog: ``ducklake:postgres:`` followed by the
PostgreSQL database that holds the lake's metadata, as a libpq URL
(``ducklake:postgres:postgresql://user@host:5432/catalog``) or keyword conninfo
(``ducklake:postgres:dbname=catalog host=db user=distillset``); its Parquet data live under
``DISTILLSET_CATALOG_DATA_PATH`` (``s3://bucket/prefix/`` or a folder every worker mounts). The
password is never shown: ``mask_catalog_url`` replaces it wherever the URL is printed.
"""

from __future__ import annotations

import re

from distillset.settings.ledger_url import MASK, POSTGRES_SCHEMES, mask_url

DUCKLAKE_POSTGRES_PREFIX = "ducklake:postgres:"

# ``password=secret`` or ``password='quoted secret'`` in keyword conninfo.
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def is_ducklake_url(value: object) -> bool:
    """``value`` names a DuckLake catalog (not the embedded DuckDB file)."""
    return isinstance(value, str) and value.startswith(DUCKLAKE_POSTGRES_PREFIX)


def postgres_conninfo(url: str) -> str:
    """The PostgreSQL part of a ``ducklake:postgres:...`` URL (what libpq and DuckLake read)."""
    return url.removeprefix(DUCKLAKE_POSTGRES_PREFIX)


def mask_conninfo(conninfo: str) -> str:
    """A libpq URL or keyword conninfo with its password replaced by ``***``."""
    if conninfo.startswith(POSTGRES_SCHEMES):
        return mask_url(conninfo)
    return _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + MASK, conninfo)


def mask_catalog_url(url: str) -> str:
    """``url`` fit for messages and logs (a DuckLake catalog's password masked)."""
    if is_ducklake_url(url):
        return DUCKLAKE_POSTGRES_PREFIX + mask_conninfo(postgres_conninfo(url))
    return url


def check_catalog_url(value: str) -> str | None:
    """The problem with a ``DISTILLSET_CATALOG_URL`` value, or None (whether PostgreSQL answers is
    checked before the first paid call, ``distillset.catalog.check_reachable``)."""
    if not is_ducklake_url(value):
        return (
            "must be ducklake:postgres:<libpq URL or conninfo>, e.g. "
            "ducklake:postgres:postgresql://user@host:5432/catalog (unset: $DISTILLSET_HOME/catalog.duckdb)"
        )
    from psycopg.conninfo import conninfo_to_dict  # only a DuckLake catalog needs psycopg loaded

    try:
        params = conninfo_to_dict(postgres_conninfo(value))
    except Exception as exc:  # noqa: BLE001 - psycopg raises ProgrammingError for any malformed conninfo
        # libpq's message may quote the conninfo, password included: name the problem only.
        return f"has a PostgreSQL part libpq cannot read ({type(exc).__name__})"
    if not params.get("dbname"):
        return "must name the PostgreSQL database of the lake's metadata (dbname=... or postgresql://host/database)"
    return None


def check_catalog_data_path(value: str) -> str | None:
    """The problem with a ``DISTILLSET_CATALOG_DATA_PATH`` value, or None."""
    if "://" in value and not value.startswith("s3://"):
        return "must be s3://bucket/prefix/ or a folder path"
    if value.startswith("s3://") and not value.removeprefix("s3://").split("/", 1)[0]:
        return "must name a bucket: s3://bucket/prefix/"
    return None
