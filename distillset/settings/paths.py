"""Where the shipped data and SQL are, and the names of what lives under ``DISTILLSET_HOME``.

In a checkout (uv installs the project editable) ``data/`` and ``sql/`` sit beside the packages.
An installed wheel carries them inside the package as ``distillset/_bundled/{data,sql,docs}``
(``pyproject.toml``, ``force-include``), so distillset also works outside the checkout.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
PROJECT_ROOT = PACKAGE_DIR.parent
"""The project checkout (or, for a wheel install, the site-packages folder holding the package)."""


def _shipped(name: str) -> Path:
    checkout = PROJECT_ROOT / name
    return checkout if checkout.is_dir() else PACKAGE_DIR / "_bundled" / name


DATA_DIR = _shipped("data")
SQL_DIR = _shipped("sql")
DOCS_DIR = _shipped("docs")
DEFAULT_PROMPTS_URL = str(DATA_DIR / "sample_prompts")

# What lives under DISTILLSET_HOME.
CATALOG_FILE = "catalog.duckdb"
LEDGER_FILE = "ledger.sqlite"
SCORECARDS_FILE = "scorecards.sqlite"
CACHE_DIR = "cache"
DAGSTER_DIR = "dagster"
TRAINING_SETS_DIR = "training_sets"
