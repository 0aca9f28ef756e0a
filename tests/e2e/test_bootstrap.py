"""The quick start's uv bootstrap on a stock system Python (`scripts/uv`, used by the Makefile).

Protects: on Debian's own python3, which refuses `pip install` (PEP 668, "externally managed"),
the README's commands still get a uv, installed into a private virtual environment under the
project, once; a uv already on PATH is used as is, and nothing is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
BARE_PATH = "/usr/bin:/bin"  # a stock system's PATH: no pyenv, no uv


def _stock_python_or_skip() -> None:
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"{SYSTEM_PYTHON} is missing: this test needs a Debian or Ubuntu system Python")
    if shutil.which("uv", path=BARE_PATH):
        pytest.skip(f"a uv is installed in {BARE_PATH}: the bootstrap path cannot be exercised here")


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "uv", project / "scripts" / "uv")
    return project


def _uv(project: Path, *args: str, path: str = BARE_PATH) -> subprocess.CompletedProcess:
    env = {"PATH": path, "HOME": str(project), "PYTHON": str(SYSTEM_PYTHON)}
    return subprocess.run(
        [str(project / "scripts" / "uv"), *args], env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def bootstrapped(tmp_path_factory) -> Path:
    _stock_python_or_skip()
    project = _project(tmp_path_factory.mktemp("stock"))
    first = _uv(project, "--version")
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.startswith("uv "), first.stdout
    assert "installing one into" in first.stderr
    return project


def test_a_stock_python_that_refuses_pip_gets_a_private_uv(bootstrapped):
    # The hard case is real: the system Python refuses a plain pip install.
    refused = subprocess.run(
        [str(SYSTEM_PYTHON), "-m", "pip", "install", "--dry-run", "uv"], capture_output=True, text=True
    )
    if "externally-managed-environment" not in refused.stdout + refused.stderr:
        pytest.skip(f"{SYSTEM_PYTHON} is not externally managed here: nothing to prove")
    assert (bootstrapped / ".tools" / "uv-venv" / "bin" / "uv").exists()
    again = _uv(bootstrapped, "--version")
    assert again.returncode == 0 and "installing" not in again.stderr  # installed once, reused


def test_an_installed_uv_on_path_is_used_and_nothing_is_installed(bootstrapped, tmp_path):
    installed = bootstrapped / ".tools" / "uv-venv" / "bin"  # a real uv binary, put on PATH
    project = _project(tmp_path)
    result = _uv(project, "--version", path=f"{installed}:{BARE_PATH}")
    assert result.returncode == 0 and result.stdout.startswith("uv "), result.stdout + result.stderr
    assert not (project / ".tools").exists()
    assert "installing" not in result.stderr


def test_the_quick_start_runs_on_the_stock_python(tmp_path):
    """`make demo` in a copy of the project, with only the system's python3 and make on PATH."""
    import os

    _stock_python_or_skip()
    if not shutil.which("make", path=BARE_PATH):
        pytest.skip(f"make is not in {BARE_PATH}")
    project = tmp_path / "distillset"
    shutil.copytree(
        ROOT,
        project,
        ignore=shutil.ignore_patterns(".git", ".venv", ".tools", ".distillset", "__pycache__", ".pytest_cache"),
    )
    # The rest of the environment stays (HOME for uv's download cache, the machine's certificates).
    env = {**os.environ, "PATH": BARE_PATH}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        ["make", "demo", f"PYTHON={SYSTEM_PYTHON}"], cwd=project, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "published new version" in result.stdout
    assert (project / ".tools" / "uv-venv" / "bin" / "uv").exists()
