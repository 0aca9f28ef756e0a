"""A real PostgreSQL for tests: 127.0.0.1:5432, user ``postgres``, trust authentication.

``fresh_database()`` creates a database with a unique name and drops it afterwards (closing this
process's ledger pools on it first). When the server does not answer, the test is skipped with the
reason printed (``.ci/run`` checks the server is up first, so CI never skips silently).

The fixtures ``postgres_url`` (a fresh database) and ``ledger_location`` (each ledger test once on a
SQLite file and once on a fresh PostgreSQL database) are registered for every test by
``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator

import pytest

SERVER = "postgresql://postgres@127.0.0.1:5432"


def _admin():
    import psycopg

    return psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=5)


def postgres_down_reason() -> str | None:
    """Why PostgreSQL cannot be used (None when it answers)."""
    try:
        _admin().close()
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to test against
        return f"PostgreSQL at 127.0.0.1:5432 (user postgres) does not answer: {type(exc).__name__}: {exc}"
    return None


def require_postgres() -> None:
    """Skip the calling test, printing why, when PostgreSQL is down."""
    reason = postgres_down_reason()
    if reason:
        print(f"SKIP: {reason}", file=sys.stderr)
        pytest.skip(reason)


@contextlib.contextmanager
def fresh_database(prefix: str = "distillset_test") -> Iterator[str]:
    """The URL of a new, empty database, dropped (connections and all) when the block ends."""
    require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _admin() as con:
        con.execute(f'CREATE DATABASE "{name}"')
    url = f"{SERVER}/{name}"
    try:
        yield url
    finally:
        from distillset.teacher.ledger_postgres import close_pools

        close_pools(url)
        with _admin() as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test (skipped, reason printed, when the server is down)."""
    with fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_location(request, tmp_path) -> Iterator:
    """Where a test's ledger lives: a SQLite file, then a fresh PostgreSQL database.

    Every ``Ledger(ledger_location)`` of one test opens the same ledger, as several processes would.
    """
    if request.param == "sqlite":
        yield tmp_path / "ledger.sqlite"
    else:
        with fresh_database() as url:
            yield url
