"""DISTILLSET_CATALOG_URL (issue 14): the home's catalog file by default, or a DuckLake whose
metadata live in PostgreSQL and whose password is never shown."""

from __future__ import annotations

import pytest

from distillset.catalog_lake import CatalogUnreachableError, Lake, check_reachable
from distillset.settings import SettingsError, load_settings
from distillset.settings.catalog_url import mask_catalog_url

SECRET = "hunter2-lake-secret"


def test_the_default_catalog_is_the_homes_file(tmp_path):
    settings = load_settings({"DISTILLSET_HOME": str(tmp_path)})
    assert settings.catalog_location == tmp_path / "catalog.duckdb" == settings.catalog_path


@pytest.mark.parametrize(
    "conninfo",
    ["postgresql://postgres@127.0.0.1:5432/catalog", "dbname=catalog host=127.0.0.1 user=postgres"],
)
def test_a_ducklake_catalog_with_folder_data(tmp_path, conninfo):
    url = f"ducklake:postgres:{conninfo}"
    settings = load_settings(
        {"DISTILLSET_HOME": str(tmp_path), "DISTILLSET_CATALOG_URL": url, "DISTILLSET_CATALOG_DATA_PATH": "lake"}
    )
    location = settings.catalog_location
    assert isinstance(location, Lake)
    assert location.url == url and location.local_dir == tmp_path
    assert location.data_path.endswith("/lake/") and location.data_path.startswith("/")


def test_s3_data_keep_their_url_and_the_endpoint(tmp_path):
    settings = load_settings(
        {
            "DISTILLSET_HOME": str(tmp_path),
            "DISTILLSET_CATALOG_URL": "ducklake:postgres:dbname=catalog",
            "DISTILLSET_CATALOG_DATA_PATH": "s3://bucket/prefix",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        }
    )
    assert settings.catalog_location.data_path == "s3://bucket/prefix/"
    assert settings.catalog_location.s3_endpoint_url == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("environ", "reason"),
    [
        ({"DISTILLSET_CATALOG_URL": "postgresql://h/db"}, "must be ducklake:postgres:"),
        ({"DISTILLSET_CATALOG_URL": "ducklake:postgres:host=h"}, "must name the PostgreSQL database"),
        ({"DISTILLSET_CATALOG_URL": "ducklake:postgres:postgresql://h/db?nosuch=1"}, "libpq cannot read"),
        ({"DISTILLSET_CATALOG_URL": "ducklake:postgres:dbname=c"}, "DISTILLSET_CATALOG_DATA_PATH must be set"),
        ({"DISTILLSET_CATALOG_DATA_PATH": "gs://bucket/x"}, "must be s3://bucket/prefix/ or a folder"),
    ],
)
def test_an_unusable_catalog_setting_is_named_with_its_reason(environ, reason):
    with pytest.raises(SettingsError) as error:
        load_settings(environ)
    assert reason in str(error.value)
    assert ("DISTILLSET_CATALOG" in str(error.value)) and SECRET not in str(error.value)


def test_a_bad_url_with_a_password_is_never_echoed():
    with pytest.raises(SettingsError) as error:
        load_settings({"DISTILLSET_CATALOG_URL": f"postgresql://u:{SECRET}@h/db"})
    assert SECRET not in str(error.value) and "DISTILLSET_CATALOG_URL" in str(error.value)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (f"ducklake:postgres:postgresql://u:{SECRET}@h:5432/db", "ducklake:postgres:postgresql://u:***@h:5432/db"),
        (f"ducklake:postgres:dbname=db password={SECRET} host=h", "ducklake:postgres:dbname=db password=*** host=h"),
        (f"ducklake:postgres:dbname=db password='{SECRET} x'", "ducklake:postgres:dbname=db password=***"),
    ],
)
def test_the_password_is_masked(url, masked):
    assert mask_catalog_url(url) == masked


def test_a_settings_repr_does_not_show_the_url(tmp_path):
    url = f"ducklake:postgres:postgresql://u:{SECRET}@h/db"
    settings = load_settings({"DISTILLSET_CATALOG_URL": url, "DISTILLSET_CATALOG_DATA_PATH": str(tmp_path)})
    assert SECRET not in repr(settings) and SECRET not in repr(settings.catalog_location)
    assert SECRET not in str(settings.catalog_location)


def test_a_postgresql_that_does_not_answer_is_one_line_with_the_password_masked(tmp_path):
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    url = f"ducklake:postgres:postgresql://postgres:{SECRET}@127.0.0.1:1/catalog"
    lake = load_settings(
        {"DISTILLSET_HOME": str(tmp_path), "DISTILLSET_CATALOG_URL": url, "DISTILLSET_CATALOG_DATA_PATH": str(tmp_path)}
    ).catalog_location
    with pytest.raises(CatalogUnreachableError) as error:
        check_reachable(lake)
    message = str(error.value)
    assert "\n" not in message and SECRET not in message
    assert "postgresql://postgres:***@127.0.0.1:1/catalog" in message and "DISTILLSET_CATALOG_URL" in message
    assert "nothing was paid" in message


def test_distillset_run_stops_before_anything_when_the_lakes_postgresql_does_not_answer(tmp_path):
    import socket

    from helpers.cli import cli_env, distillset, small_prompt_folder

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = cli_env(
        tmp_path,
        small_prompt_folder(tmp_path),
        DISTILLSET_CATALOG_URL=f"ducklake:postgres:postgresql://postgres:{SECRET}@127.0.0.1:{port}/catalog",
        DISTILLSET_CATALOG_DATA_PATH=str(tmp_path / "lake"),
    )
    run = distillset("run", env=env, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    lines = [line for line in run.stderr.splitlines() if "DuckLake catalog" in line]
    assert len(lines) == 1 and "does not answer" in lines[0] and "nothing was paid" in lines[0]
    assert f"postgres:***@127.0.0.1:{port}/catalog" in lines[0]
    assert SECRET not in run.stdout + run.stderr
    assert not (tmp_path / "home" / "dagster").exists(), "nothing started"
