"""distillset's settings: one typed tree, read from the environment here and nowhere else.

>>> from distillset.settings import load_settings
>>> settings = load_settings()          # validates every variable; SettingsError names each bad one
>>> settings.teacher.sampling.temperature
0.7

The tree is in :mod:`distillset.settings.tree`, the parsing rules in :mod:`distillset.settings.env`,
the shipped file locations in :mod:`distillset.settings.paths`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from distillset.settings.env import SettingsError
from distillset.settings.executor import ExecutorSettings
from distillset.settings.fields import describe, load_section
from distillset.settings.tree import (
    DEFAULT_HUB_AUTHOR,
    DEFAULT_NIGHTLY_CRON,
    DEFAULT_RELEASE_PATTERN,
    DEFAULT_TEACHER_MODEL,
    CurationSettings,
    JudgeSettings,
    LicensePolicy,
    PromptSettings,
    PublishSettings,
    QualityGates,
    QualitySettings,
    QualityThresholds,
    RefreshSettings,
    SamplingSettings,
    ScorecardSettings,
    Settings,
    SimulatorSettings,
    TeacherSettings,
)

__all__ = [
    "DEFAULT_HUB_AUTHOR",
    "DEFAULT_NIGHTLY_CRON",
    "DEFAULT_RELEASE_PATTERN",
    "DEFAULT_TEACHER_MODEL",
    "CurationSettings",
    "ExecutorSettings",
    "JudgeSettings",
    "LicensePolicy",
    "PromptSettings",
    "PublishSettings",
    "QualityGates",
    "QualitySettings",
    "QualityThresholds",
    "RefreshSettings",
    "SamplingSettings",
    "ScorecardSettings",
    "Settings",
    "SettingsError",
    "SimulatorSettings",
    "TeacherSettings",
    "describe",
    "load_settings",
    "s3_endpoint_url",
    "secret_values",
]

# Environment variables whose values are credentials: masked wherever text is published.
SECRET_ENV = (
    "TEACHER_API_KEY",
    "DISTILLSET_JUDGE_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "OPENAI_API_KEY",
    "DISTILLSET_CELERY_BROKER_URL",
    "DISTILLSET_CELERY_BACKEND_URL",
)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The whole settings tree from ``environ`` (default: the process environment).

    Raises:
        SettingsError: one or more variables are invalid; ``problems`` lists each one, naming the
            variable and what it expects.
    """
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    settings = load_section(Settings, environ, problems)
    if problems:
        raise SettingsError(problems)
    return settings


def s3_endpoint_url(environ: Mapping[str, str] | None = None) -> str | None:
    """``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (what ``Settings.s3_endpoint_url`` reads), for
    storage calls made without settings (notebooks, tests): botocore reads the variable itself, but
    fsspec caches clients by their arguments, so the endpoint must be one of them."""
    environ = os.environ if environ is None else environ
    return environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the credential variables that are set (at least 8 characters: shorter values,
    such as a test's "test", would mask ordinary words). Used to scrub anything before publishing."""
    environ = os.environ if environ is None else environ
    return [value for name in SECRET_ENV if (value := environ.get(name)) and len(value) >= 8]
