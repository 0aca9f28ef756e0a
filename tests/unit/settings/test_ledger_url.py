"""DISTILLSET_LEDGER_URL (issue 14): a ledger file several homes share; PostgreSQL refused with the reason."""

from __future__ import annotations

import pytest

from distillset.settings import SettingsError, load_settings


def test_the_default_ledger_is_the_homes(tmp_path):
    settings = load_settings({"DISTILLSET_HOME": str(tmp_path)})
    assert settings.ledger_path == tmp_path / "ledger.sqlite"
    assert settings.teacher.lease_s == 1800.0
    # The default lease outlives the longest request: every attempt at its deadline, plus backoffs.
    assert settings.teacher.lease_s > (settings.teacher.max_retries + 1) * settings.teacher.timeout_s + 6 * 30


@pytest.mark.parametrize("form", ["{path}", "sqlite:///{path}", "sqlite:///{path_no_slash}"])
def test_a_shared_ledger_file(tmp_path, form):
    shared = tmp_path / "shared" / "ledger.sqlite"
    value = form.format(path=shared, path_no_slash=str(shared).lstrip("/"))
    settings = load_settings({"DISTILLSET_HOME": str(tmp_path / "home"), "DISTILLSET_LEDGER_URL": value})
    assert settings.ledger_path == shared


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("postgresql://postgres@127.0.0.1:5432/ledger", "needs psycopg 3 and psycopg-pool"),
        ("mysql://x/y", "a file path or sqlite:///absolute/path"),
        ("sqlite:///", "needs a file path"),
    ],
)
def test_an_unusable_ledger_url_is_named_with_its_reason(value, reason):
    with pytest.raises(SettingsError) as error:
        load_settings({"DISTILLSET_LEDGER_URL": value})
    assert "DISTILLSET_LEDGER_URL" in str(error.value) and reason in str(error.value)


def test_lease_s_takes_a_duration():
    assert load_settings({"TEACHER_LEASE_S": "45m"}).teacher.lease_s == 2700.0
    with pytest.raises(SettingsError, match="TEACHER_LEASE_S"):
        load_settings({"TEACHER_LEASE_S": "0"})
