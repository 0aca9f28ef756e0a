"""The shared catalog of a cluster: DuckLake, its metadata in PostgreSQL, its data under a path.

``DISTILLSET_CATALOG_URL=ducklake:postgres:...`` with ``DISTILLSET_CATALOG_DATA_PATH`` (``s3://``
or a folder every worker mounts) makes ``distillset.catalog`` open the lake instead of the file
``$DISTILLSET_HOME/catalog.duckdb``: an in-memory DuckDB that ``ATTACH``es the lake and ``USE``s
it, so the catalog's SQL runs unchanged. Writes are DuckLake transactions (one snapshot each,
committed through PostgreSQL, a conflicting commit fails and is retried by ``catalog``); readers
see committed snapshots.

The extensions are ``LOAD``ed from the files of their offline wheels (``duckdb-extension-*``,
pinned to duckdb's version), never ``INSTALL``ed: build machines have no network and a run must not
fetch code. ``s3://`` data go through httpfs with a DuckDB secret built from botocore's credential
chain (the same credentials s3fs uses); DuckLake does not write through a registered fsspec
filesystem (verified: "Data path s3://... requires the extension httpfs to be loaded").
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from distillset.settings.catalog_url import is_ducklake_url, mask_catalog_url, postgres_conninfo
from distillset.settings.paths import CATALOG_FILE

LAKE_NAME = "distillset_lake"
"""The name the lake is attached as (``USE``d, so SQL names its tables unqualified)."""

CONNECT_TIMEOUT_S = 5

_EXTENSIONS = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "httpfs": "duckdb_extension_httpfs",
}


class CatalogUnreachableError(RuntimeError):
    """The PostgreSQL of ``DISTILLSET_CATALOG_URL`` does not answer (raised before anything is paid)."""


@dataclasses.dataclass(frozen=True)
class Lake:
    """A DuckLake catalog: ``url`` (``ducklake:postgres:...``, may hold a password: never shown by
    ``repr``), ``data_path`` for its Parquet files, and ``local_dir`` for this machine's spool and
    temporary files (the home)."""

    url: str = dataclasses.field(repr=False)
    data_path: str
    local_dir: Path
    s3_endpoint_url: str | None = None

    def __str__(self) -> str:
        return f"{mask_catalog_url(self.url)} (data {self.data_path})"

    @property
    def on_s3(self) -> bool:
        return self.data_path.startswith("s3://")


def catalog_location(
    url: str | None, data_path: str | None, home: Path, *, s3_endpoint_url: str | None = None
) -> Path | Lake:
    """The ``Lake`` that ``url`` names, or the home's catalog file when ``url`` is unset."""
    home = Path(home)
    if not is_ducklake_url(url):
        return home / CATALOG_FILE
    if not data_path:
        raise ValueError("a DuckLake catalog needs DISTILLSET_CATALOG_DATA_PATH (s3://bucket/prefix/ or a folder)")
    if not data_path.startswith("s3://"):
        data_path = str(Path(data_path).expanduser().resolve())
    if not data_path.endswith("/"):
        data_path += "/"  # DuckLake joins file names onto the path as given
    return Lake(url=url, data_path=data_path, local_dir=home, s3_endpoint_url=s3_endpoint_url)


def extension_file(name: str) -> Path:
    """The extension file ``name`` ships in its offline wheel, for duckdb's version.

    The wheels (``duckdb-extension-ducklake`` and the others) have an empty ``__init__.py`` and the
    file at ``<package>/extensions/v<duckdb version>/<name>.duckdb_extension``.
    """
    package = _EXTENSIONS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the DuckDB extension {name} is not installed: install the wheel {package.replace('_', '-')}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "extensions"
    path = folder / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.exists():
        shipped = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        raise RuntimeError(
            f"the {package} wheel has no extension for duckdb {duckdb.__version__} (it has {shipped}): "
            "upgrade duckdb and the extension wheels together"
        )
    return path


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _s3_secret_sql(lake: Lake) -> str:
    """``CREATE SECRET`` for httpfs from botocore's credential chain (environment, profile...).

    The statement holds the credentials: it is executed, never logged, and an error in it is
    reported without its text (``open_lake``).
    """
    import botocore.session  # s3fs's dependency; the same chain s3fs resolves credentials with

    session = botocore.session.Session()
    credentials = session.get_credentials()
    options = {"TYPE": "s3", "REGION": _quote(session.get_config_variable("region") or "us-east-1")}
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        options["KEY_ID"] = _quote(frozen.access_key)
        options["SECRET"] = _quote(frozen.secret_key)
        if frozen.token:
            options["SESSION_TOKEN"] = _quote(frozen.token)
    if lake.s3_endpoint_url:
        endpoint = urlsplit(lake.s3_endpoint_url)
        options["ENDPOINT"] = _quote(endpoint.netloc + endpoint.path.rstrip("/"))
        options["USE_SSL"] = "false" if endpoint.scheme == "http" else "true"
        options["URL_STYLE"] = "'path'"  # S3-compatible stores (MinIO, moto) serve buckets by path
    body = ", ".join(f"{key} {value}" for key, value in options.items())
    return f"CREATE SECRET distillset_catalog_s3 ({body})"  # temporary: in memory, never persisted


class LakeConnection:
    """A DuckDB connection with the lake in use, whose cursors use it too.

    ``USE`` holds for one connection, and a DuckDB cursor is another connection to the same
    database (the stages open cursors to stream one query while running others): without this,
    a cursor would look for the catalog's tables in the empty in-memory database.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = self._con.cursor()
        cursor.execute(f"USE {LAKE_NAME}")
        return cursor

    def __getattr__(self, name: str):
        return getattr(self._con, name)

    def __enter__(self) -> LakeConnection:
        return self

    def __exit__(self, *exc_info) -> None:
        self._con.close()


def open_lake(lake: Lake, *, read_only: bool = False, attempts: int = 3) -> LakeConnection:
    """An in-memory DuckDB connection with ``lake`` attached and in use (its cursors too).

    Two workers attaching a brand-new lake at once may both try to create its metadata tables; the
    loser's error is retried (``attempts``).
    """
    temp = Path(lake.local_dir) / "catalog-tmp"
    temp.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
            "temp_directory": str(temp),
        },
    )
    try:
        names = ["ducklake", "postgres_scanner"] + (["httpfs"] if lake.on_s3 else [])
        for name in names:
            con.execute(f"LOAD {_quote(str(extension_file(name)))}")
        if lake.on_s3:
            try:
                con.execute(_s3_secret_sql(lake))
            except duckdb.Error:
                raise RuntimeError("could not configure the S3 credentials of the catalog's data path") from None
        for attempt in range(attempts):
            try:
                con.execute(_attach_sql(lake, read_only=read_only))
                break
            except duckdb.Error as exc:
                if read_only and _NOT_CREATED in str(exc):
                    # A lake nobody has written yet: a read-only ATTACH may not create its
                    # metadata, so create it (empty) and read that.
                    read_only = False
                    continue
                if attempt + 1 == attempts or _unreachable(exc):
                    raise CatalogUnreachableError(_unreachable_message(lake, exc)) from None
                time.sleep(0.2 * (attempt + 1))
        con.execute(f"USE {LAKE_NAME}")
    except BaseException:
        con.close()
        raise
    return LakeConnection(con)


_instances: dict[tuple, LakeConnection] = {}
_instances_lock = threading.Lock()


def lake_cursor(lake: Lake) -> LakeConnection:
    """A new connection (a DuckDB cursor, with its own transactions) to this process's lake instance.

    Opening a lake costs about a second (loading the extensions, attaching through PostgreSQL:
    ``bench/bench_catalog.py``) and a cursor of an open one about 20 ms, so each process keeps one
    attached instance per lake and every ``catalog.connect`` gets a cursor of it. Every transaction
    reads the lake's latest committed snapshot, so commits of other processes are seen. Keyed by
    process id too: a forked child opens its own.
    """
    key = (os.getpid(), lake.url, lake.data_path, str(lake.local_dir), lake.s3_endpoint_url)
    with _instances_lock:
        base = _instances.get(key)
        if base is None:
            base = _instances[key] = open_lake(lake)
    return LakeConnection(base.cursor())


def close_instances() -> None:
    """Close this process's lake instances (tests that drop a lake's database call it first)."""
    with _instances_lock:
        for base in _instances.values():
            with contextlib.suppress(duckdb.Error):
                base.close()
        _instances.clear()


_NOT_CREATED = "creating a new DuckLake is explicitly disabled"


def _attach_sql(lake: Lake, *, read_only: bool) -> str:
    options = f"DATA_PATH {_quote(lake.data_path)}" + (", READ_ONLY" if read_only else "")
    return f"ATTACH {_quote(lake.url)} AS {LAKE_NAME} ({options})"


def _unreachable(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(m in text for m in ("connection refused", "could not connect", "timeout expired", "does not exist"))


def _unreachable_message(lake: Lake, exc: BaseException) -> str:
    return (
        f"the DuckLake catalog {mask_catalog_url(lake.url)} (DISTILLSET_CATALOG_URL) cannot be opened: "
        f"{_masked_error(lake, exc)}; nothing was paid"
    )


def _masked_error(lake: Lake, exc: BaseException) -> str:
    """The error's first line, with the URL's password removed should the driver quote it."""
    from psycopg.conninfo import conninfo_to_dict

    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    password = conninfo_to_dict(postgres_conninfo(lake.url)).get("password")
    return text.replace(str(password), "***") if password else text


_WRITER_LOCK = int.from_bytes(hashlib.sha256(b"distillset catalog writer").digest()[:8], "big", signed=True)
"""The PostgreSQL advisory lock a lake's writers hold (one key per metadata database)."""


_held = threading.local()  # the lakes whose writer lock this thread holds, with its depth


@contextlib.contextmanager
def writer_lock(lake: Lake) -> Iterator[None]:
    """Hold the lake's writer lock: one writer at a time across every worker, as the file's lock
    (and the ``distillset_catalog`` pool) give one machine.

    DuckLake itself lets writers run side by side and fails a commit that conflicts with another
    (two replacements of one partition delete from the same files). A chunked write cannot be
    replayed (its rows were streamed from the stage), so writers queue here instead; readers never
    wait. The lock is a session lock: a worker that dies releases it with its connection. It is
    re-entrant within a thread (a stage that writes one table while its chunked write is open, as
    the file allowed within one process).
    """
    import psycopg

    held = _held.__dict__.setdefault("depth", {})
    if held.get(lake.url):
        held[lake.url] += 1
        try:
            yield
        finally:
            held[lake.url] -= 1
        return
    try:
        con = psycopg.connect(postgres_conninfo(lake.url), connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
    except psycopg.Error as exc:
        raise CatalogUnreachableError(_unreachable_message(lake, exc)) from None
    try:
        con.execute("SELECT pg_advisory_lock(%s)", [_WRITER_LOCK])
        held[lake.url] = 1
        yield
    finally:
        held.pop(lake.url, None)
        con.close()  # ends the session: the lock goes with it


def check_reachable(lake: Lake) -> None:
    """Check the lake's PostgreSQL answers and the lake opens (creating its metadata the first time).

    Raises:
        CatalogUnreachableError: one line, password masked, saying nothing was paid.
    """
    import psycopg

    try:
        psycopg.connect(postgres_conninfo(lake.url), connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg.Error as exc:
        raise CatalogUnreachableError(
            f"the PostgreSQL of the DuckLake catalog {mask_catalog_url(lake.url)} (DISTILLSET_CATALOG_URL) "
            f"does not answer: {_masked_error(lake, exc)}; nothing was paid"
        ) from None
    open_lake(lake).close()
