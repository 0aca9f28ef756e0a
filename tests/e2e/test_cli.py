"""The `distillset` command line as a user runs it, in a subprocess.

Protects: `distillset run` materializes the whole flow into DISTILLSET_HOME's Dagster instance
and prints the published version and rows per stage; a second run pays nothing and publishes
nothing; a failing stage makes it exit non-zero with the stage and the reason; `--help` documents
every subcommand.
"""

from __future__ import annotations

import json
from pathlib import Path

from distillset.settings.paths import DATA_DIR
from helpers.cli import MODEL, cli_env, distillset, start_distillset


def _small_prompt_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "prompts"
    folder.mkdir()
    lines = (DATA_DIR / "sample_prompts" / "gsm8k_train_sample.jsonl").read_text().splitlines(keepends=True)[:20]
    (folder / "gsm8k.jsonl").write_text("".join(lines))
    (folder / "gsm8k.jsonl.license").write_text("MIT\n")
    return folder


def test_run_publishes_then_reruns_for_free(tmp_path):
    env = cli_env(tmp_path, _small_prompt_folder(tmp_path))
    first = distillset("run", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"registered teacher partition {MODEL}" in first.stdout
    published = [line for line in first.stdout.splitlines() if line.startswith("published new version")]
    assert len(published) == 1, first.stdout
    version_dir = Path(published[0].rsplit(": ", 1)[1])
    assert version_dir.name == "v0001" and (version_dir / "manifest.json").exists()
    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert manifest["teacher"]["model"] == MODEL
    assert "20 teacher calls paid" in first.stdout
    # The run is in the persistent Dagster home, where `make ui` will show it.
    assert (tmp_path / "home" / "dagster" / "dagster.yaml").exists()

    second = distillset("run", env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "0 teacher calls paid, 20 answers reused from the ledger" in second.stdout
    assert "unchanged: no new version; latest is" in second.stdout and "v0001" in second.stdout
    assert "registered teacher partition" not in second.stdout


def test_run_fails_clearly_when_a_stage_fails(tmp_path):
    env = cli_env(tmp_path, tmp_path / "no-such-folder")
    result = distillset("run", env=env)
    assert result.returncode == 1
    error_lines = [line for line in result.stdout.splitlines() if line.startswith("ERROR raw_prompts")]
    assert error_lines and "no-such-folder" in error_lines[0], result.stdout
    assert "the run failed" in result.stdout


def test_help_documents_every_subcommand(tmp_path):
    import importlib

    from orchestration.cli import ENGINE_COMMANDS

    names = [importlib.import_module(f"distillset.cli.{m}").NAME for m in ENGINE_COMMANDS]
    result = distillset("--help", env=cli_env(tmp_path, tmp_path))
    assert result.returncode == 0
    for command in ["run", *names]:
        assert f"    {command}" in result.stdout, command
        sub = distillset(command, "--help", env=cli_env(tmp_path, tmp_path))
        assert sub.returncode == 0 and "usage: distillset" in sub.stdout, command


def test_overlapping_runs_for_two_teachers_both_publish(tmp_path):
    """A nightly run and a sensor-started run at the same time: the catalog writers wait for each
    other (the pool and DuckDB's lock) instead of failing, and the ledger takes both."""
    env = cli_env(tmp_path, _small_prompt_folder(tmp_path))
    env["DISTILLSET_SIMULATOR_LATENCY_MS"] = "20"
    assert distillset("run", env=env).returncode == 0  # registers the first teacher and fills the prompt tables
    other = "meta-llama/Llama-3.1-8B-Instruct"
    runs = [start_distillset("run", *args, env=env) for args in ([], ["--teacher", other])]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert "unchanged: no new version" in outputs[0]
    assert "published new version distill-llama-3-1-8b-instruct v0001" in outputs[1]
    import duckdb

    with duckdb.connect(str(tmp_path / "home" / "catalog.duckdb"), read_only=True) as con:
        per_teacher = dict(con.execute("SELECT teacher_model, count(*) FROM teacher_generations GROUP BY 1").fetchall())
    assert per_teacher == {MODEL: 20, other: 20}


def test_a_budget_stop_never_shrinks_latest_unless_asked(tmp_path):
    import re

    env = cli_env(tmp_path, _small_prompt_folder(tmp_path), TEACHER_MAX_CONCURRENCY="2")
    first = distillset("run", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "BUDGET" not in first.stdout

    # A new temperature is a new request for every prompt; a 1-token budget lets only the requests
    # already in flight through.
    budget_env = {**env, "TEACHER_TEMPERATURE": "0.3", "TEACHER_BUDGET_TOKENS": "1"}
    stopped = distillset("run", env=budget_env)
    assert stopped.returncode == 4, stopped.stdout + stopped.stderr
    assert "published new version" not in stopped.stdout
    assert "nothing published, v0001 stays LATEST" in stopped.stdout
    (budget_line,) = [line for line in stopped.stdout.splitlines() if line.startswith("BUDGET ")]
    (teacher_line,) = [line for line in stopped.stdout.splitlines() if line.strip().startswith("teacher_generations")]
    account = re.search(
        r"(\d+) teacher calls paid, (\d+) answers reused from the ledger, (\d+) conversations "
        r"skipped for budget, (\d+) calls failed",
        budget_line,
    )
    assert account, budget_line
    paid, reused, skipped, failed = map(int, account.groups())
    # One account everywhere: the stage line repeats the budget line's figures.
    assert account.group(0) in teacher_line
    assert 0 < paid <= 3 and skipped == 20 - paid and failed == 0 and reused == 0

    partial = distillset("run", "--allow-partial", env=budget_env)
    assert partial.returncode == 4, partial.stdout + partial.stderr
    published = [line for line in partial.stdout.splitlines() if line.startswith("published new version")]
    assert len(published) == 1 and "v0002" in published[0], partial.stdout
    manifest = json.loads((Path(published[0].rsplit(": ", 1)[1]) / "manifest.json").read_text())
    assert "published as asked" in manifest["extra"]["partial"]["reason"]


def test_a_license_policy_that_blocks_publication_stops_the_run_before_paying(tmp_path):
    from distillset.teacher.ledger import Ledger

    folder = _small_prompt_folder(tmp_path)
    (folder / "gsm8k.jsonl.license").unlink()  # no sidecar: license unknown
    env = cli_env(tmp_path, folder, DISTILLSET_LICENSE_POLICY_BLOCK_UNKNOWN="true")
    result = distillset("run", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "nothing was paid: license policy blocks publication" in result.stdout
    assert Ledger(tmp_path / "home" / "ledger.sqlite").count_answers() == 0


def test_simulated_answers_never_stand_in_for_a_real_endpoint(tmp_path):
    import socket

    env = cli_env(tmp_path, _small_prompt_folder(tmp_path))
    assert distillset("run", env=env).returncode == 0  # the simulator answers: 20 answers in the ledger
    with socket.socket() as probe:  # a port nothing listens on: a real endpoint that is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    real = {**env, "TEACHER_BASE_URL": f"http://127.0.0.1:{port}/v1", "TEACHER_MAX_RETRIES": "0"}
    result = distillset("run", env=real)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 answers reused from the ledger" in result.stdout
    assert "published new version" not in result.stdout


def test_a_cli_run_is_tagged_as_launched_by_the_cli(tmp_path):
    import dagster as dg

    env = cli_env(tmp_path, _small_prompt_folder(tmp_path))
    assert distillset("run", env=env).returncode == 0
    with dg.DagsterInstance.from_config(str(tmp_path / "home" / "dagster")) as instance:
        (run,) = instance.get_runs()
    assert run.tags["distillset/launched_by"] == "cli"  # the CLI's value wins over the job's "ui"
    assert run.tags["distillset/version"].endswith("v0001")


def test_two_first_runs_at_once_leave_a_healthy_instance(tmp_path):
    """Two runs on an empty home both create the Dagster instance's storage: it is created once, under
    a lock (two at once used to leave two alembic heads, and every later run failed at start)."""
    env = cli_env(tmp_path, _small_prompt_folder(tmp_path))
    runs = [start_distillset("run", *args, env=env) for args in ([], ["--teacher", "meta-llama/Llama-3.1-8B-Instruct"])]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    later = distillset("run", env=env)
    assert later.returncode == 0, later.stdout + later.stderr
    assert "unchanged: no new version" in later.stdout
