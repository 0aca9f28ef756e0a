"""Running `distillset` as a user does: a subprocess with a clean environment of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from distillset.settings.paths import DATA_DIR
from helpers.paths import PROJECT

MODEL = "meta-llama/Llama-3.1-405B-Instruct"
COMMAND = [sys.executable, "-m", "orchestration.cli"]


def distillset(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``distillset ARGS`` to the end; stdout and stderr captured."""
    return subprocess.run([*COMMAND, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=PROJECT)


def start_distillset(*args: str, env: dict[str, str]) -> subprocess.Popen:
    """Start ``distillset ARGS`` in the background, stdout and stderr merged into one pipe."""
    return subprocess.Popen(
        [*COMMAND, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=PROJECT
    )


def cli_env(tmp_path: Path, prompts: Path, **extra: str) -> dict[str, str]:
    """The process environment without the developer's configuration, plus a home and prompts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISTILLSET_", "TEACHER_", "DAGSTER_"))}
    # No teacher scorecard unless a test asks for one (see tests/conftest.py).
    env.update(
        DISTILLSET_HOME=str(tmp_path / "home"), DISTILLSET_PROMPTS_URL=str(prompts), DISTILLSET_SCORECARD_LIMIT="0"
    )
    env.update(extra)
    return env


def small_prompt_folder(tmp_path: Path, gsm8k_rows: int = 20, mt_bench_rows: int = 0) -> Path:
    """A prompt folder with the first rows of the shipped GSM8K (and MT-Bench) samples."""
    folder = tmp_path / "prompts"
    folder.mkdir(exist_ok=True)
    for name, rows in (("gsm8k_train_sample.jsonl", gsm8k_rows), ("mt_bench_questions.jsonl", mt_bench_rows)):
        if rows:
            lines = (DATA_DIR / "sample_prompts" / name).read_text().splitlines(keepends=True)[:rows]
            (folder / name).write_text("".join(lines))
            (folder / f"{name}.license").write_text("MIT\n" if name.startswith("gsm8k") else "Apache-2.0\n")
    return folder
