"""The catalog's backends for tests: the embedded DuckDB file, and DuckLake on a fresh PostgreSQL
database with its data in a local folder or in a moto S3 bucket.

``catalog_location`` (registered for every test by ``tests/conftest.py``) runs a test once per
backend; the DuckLake ones skip, reason printed, when PostgreSQL does not answer (and the S3 one
needs moto's server, ``helpers.s3``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from distillset.catalog_lake import Lake, close_instances
from distillset.catalog_lake import catalog_location as lake_location
from helpers.postgres import fresh_database

BACKENDS = ["file", "ducklake-folder", "ducklake-s3"]


def ducklake_url(postgres_url: str) -> str:
    """``DISTILLSET_CATALOG_URL`` of a lake whose metadata live in the database ``postgres_url``."""
    return f"ducklake:postgres:{postgres_url}"


def fresh_bucket(moto_endpoint: str) -> str:
    """A new bucket on the moto server (the AWS variables must point at it already)."""
    bucket = f"distillset-lake-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return bucket


@contextlib.contextmanager
def fresh_lake(home: Path, data_path: str, *, s3_endpoint_url: str | None = None) -> Iterator[Lake]:
    """A ``Lake`` on a new PostgreSQL database (dropped afterwards), its data under ``data_path``."""
    with fresh_database("distillset_lake") as url:
        try:
            yield lake_location(ducklake_url(url), data_path, home, s3_endpoint_url=s3_endpoint_url)
        finally:
            close_instances()  # their PostgreSQL sessions would keep the database from being dropped


@pytest.fixture(params=BACKENDS)
def catalog_location(request, tmp_path) -> Iterator[Path | Lake]:
    """Where a test's catalog lives: the file, then DuckLake with folder data, then with S3 data."""
    home = tmp_path / "home"
    if request.param == "file":
        yield home / "catalog.duckdb"
    elif request.param == "ducklake-folder":
        with fresh_lake(home, str(tmp_path / "lake-data")) as lake:
            yield lake
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        request.getfixturevalue("s3_url")  # the AWS variables, pointing at moto
        bucket = fresh_bucket(endpoint)
        with fresh_lake(home, f"s3://{bucket}/catalog/", s3_endpoint_url=endpoint) as lake:
            yield lake
