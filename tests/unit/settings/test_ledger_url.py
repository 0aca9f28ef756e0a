"""DISTILLSET_LEDGER_URL (issue 14): a ledger file several homes share, or a PostgreSQL database whose
password is never shown."""

from __future__ import annotations

import pytest

from distillset.settings import SettingsError, load_settings
from distillset.settings.ledger_url import mask_url


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
        ("postgresql://postgres@127.0.0.1:5432", "must name its database"),
        ("postgresql://postgres@127.0.0.1:5432/ledger?nosuchoption=1", "is not a PostgreSQL URL libpq can read"),
        ("mysql://x/y", "a file path, sqlite:///absolute/path or postgresql://"),
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


def test_a_postgresql_ledger_url_is_taken_and_its_password_never_shown(tmp_path):
    url = "postgresql://distill:hunter2-secret@db.internal:5433/ledger?sslmode=require"
    settings = load_settings({"DISTILLSET_HOME": str(tmp_path), "DISTILLSET_LEDGER_URL": url})
    assert settings.ledger_location == url
    assert "hunter2" not in repr(settings)
    with pytest.raises(ValueError, match="not a file"):
        settings.ledger_path  # noqa: B018 - the property raises
    assert mask_url(url) == "postgresql://distill:***@db.internal:5433/ledger?sslmode=require"
    assert mask_url("postgresql://u@h/db?password=hunter2&sslmode=require") == (
        "postgresql://u@h/db?password=***&sslmode=require"
    )
    with pytest.raises(SettingsError) as error:  # a bad one is refused without echoing it
        load_settings({"DISTILLSET_LEDGER_URL": "postgresql://u:hunter2@h/db?nosuchoption=1"})
    assert "hunter2" not in str(error.value)
