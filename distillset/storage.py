"""Where training sets live: a local folder or an ``s3://bucket/prefix``, both through fsspec.

Everything else in the engine talks to storage through these few helpers, so the rules that make
publishing safe (exclusive create, atomic local writes, fresh listings, checksums read back from
the store) are written once. S3-compatible stores are reached through an ``endpoint_url`` storage
option (``Settings.storage_options()``, from ``AWS_ENDPOINT_URL``); credentials are left to
botocore's own chain and never copied anywhere.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any

import duckdb
import fsspec
from fsspec.implementations.local import LocalFileSystem

from distillset.settings import s3_endpoint_url

_READ_CHUNK = 8 * 2**20


def is_remote(url: str) -> bool:
    """True for URLs with a non-local protocol (``s3://...``), False for folders and ``file://``."""
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    return protocol not in ("file", "local")


def _options_for(url: str, storage_options: dict | None) -> dict[str, Any]:
    options = dict(storage_options or {})
    if not url.startswith(("s3://", "s3a://")):
        options.pop("endpoint_url", None)
    else:
        # The endpoint is always an explicit argument (Settings.storage_options, else the variable
        # the settings read) rather than left to botocore's own reading of AWS_ENDPOINT_URL: fsspec
        # caches filesystem instances by their arguments, and a cached client must not keep
        # pointing at an old endpoint after it changes (tests, notebooks).
        if not options.get("endpoint_url") and not options.get("client_kwargs", {}).get("endpoint_url"):
            options.pop("endpoint_url", None)
            if endpoint := s3_endpoint_url():
                options["endpoint_url"] = endpoint
        # s3fs answers info()/open() from a cached parent listing when it has one, so a listing
        # made by one thread (or a cleanup's find()) hides a file another thread just wrote.
        # Publishing must see the store as it is: a few more HEAD requests are the price.
        options.setdefault("use_listings_cache", False)
    return options


def filesystem(url: str, storage_options: dict | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for ``url`` and the path inside it (no protocol, no trailing slash).

    Args:
        url: A folder (``/data/sets``, ``file:///data/sets``) or ``s3://bucket/prefix``.
        storage_options: fsspec options (``{"endpoint_url": ...}`` from ``Settings.storage_options()``,
            ``{"anon": True}``...); never logged. Ignored for local folders.

    Returns:
        ``(fs, path)``; ``path`` is absolute for local folders.
    """
    if not url:
        raise ValueError("storage URL is empty: set DISTILLSET_STORAGE_URL to a folder or s3://bucket/prefix")
    fs, path = fsspec.core.url_to_fs(url, **_options_for(url, storage_options))
    if isinstance(fs, LocalFileSystem):
        path = os.path.abspath(path)
    return fs, path.rstrip("/") or path


def join(*parts: str) -> str:
    """Join path parts with ``/`` (fsspec paths use ``/`` on every backend)."""
    return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts) if p != "")


def url_of(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """The URL a user (or DuckDB, or ``datasets``) can open: ``s3://...`` or a plain local path."""
    if isinstance(fs, LocalFileSystem):
        return path
    return fs.unstrip_protocol(path)


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def refresh(fs: fsspec.AbstractFileSystem) -> None:
    """Drop cached listings (s3fs caches them) before a decision that needs the current state."""
    fs.invalidate_cache()


def write_bytes_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    Local: a temporary sibling then ``os.replace``. S3: a single PUT is already all-or-nothing.
    """
    if is_local(fs):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.tmp-{uuid.uuid4().hex}"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    else:
        fs.pipe_file(path, data)


def create_exclusive(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> bool:
    """Create ``path`` with ``data`` only if it does not exist yet; False if someone else has it.

    Local: ``open(..., "xb")`` (O_EXCL). S3: a conditional PUT with ``If-None-Match: *``, which S3
    (since 2024), MinIO and moto honour; s3fs maps the 412 answer to ``FileExistsError``.
    """
    try:
        if is_local(fs):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "xb") as handle:
                handle.write(data)
        else:
            fs.pipe_file(path, data, mode="create")
    except FileExistsError:
        return False
    return True


def sha256_of(fs: fsspec.AbstractFileSystem, path: str) -> tuple[str, int]:
    """The sha256 and size of a stored file, streamed from the store in chunks.

    Returns:
        ``(hex digest, size in bytes)``.
    """
    digest = hashlib.sha256()
    size = 0
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def duckdb_connection_for(url: str, storage_options: dict | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that can read and write ``url``'s files.

    For ``s3://`` the s3fs filesystem is registered on the connection, so DuckDB reads and
    writes S3 Parquet through fsspec without the httpfs extension (no internet to install it).
    """
    con = duckdb.connect()
    if is_remote(url):
        fs, _ = filesystem(url, storage_options)
        con.register_filesystem(fs)
    return con
