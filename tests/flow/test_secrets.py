"""The teacher API key reaches the endpoint and nothing else.

Protects: with TEACHER_API_KEY set (read through dg.EnvVar), the whole flow runs against a real
OpenAI-compatible server that requires the key, and the key appears in no file under
DISTILLSET_HOME or DAGSTER_HOME (catalog, ledger, training set, manifest, card, Dagster's event
log and run storage) and in nothing printed.
"""

from __future__ import annotations

import dagster as dg

from distillset.settings.paths import DATA_DIR
from distillset.simulator.server import TeacherSimulator
from helpers.flow import materialize_flow, step_failures

SECRET = "sk-test-SECRET-must-never-be-written-7f3a9c"


def test_api_key_never_lands_in_files_or_output(tmp_path, monkeypatch, capfd):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    lines = (DATA_DIR / "sample_prompts" / "mt_bench_questions.jsonl").read_text().splitlines(keepends=True)[:8]
    (prompts / "writing.jsonl").write_text("".join(lines))
    (prompts / "writing.jsonl.license").write_text("Apache-2.0\n")
    home, dagster_home = tmp_path / "home", tmp_path / "dagster"
    dagster_home.mkdir()
    for name, value in {
        "DISTILLSET_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "DISTILLSET_PROMPTS_URL": str(prompts),
        "TEACHER_API_KEY": SECRET,
    }.items():
        monkeypatch.setenv(name, value)

    with TeacherSimulator(api_key=SECRET) as endpoint:
        monkeypatch.setenv("TEACHER_BASE_URL", endpoint.base_url)
        with dg.DagsterInstance.get() as instance:
            result = materialize_flow(instance)
        served = endpoint.stats()["completions"]
    assert result.success, step_failures(result)
    assert served == 16  # 8 two-turn MT-Bench conversations, each turn paid once, with the key

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in written) and any(
        p.suffix == ".sqlite" or p.suffix == ".db" for p in written
    )
    leaks = [str(p) for p in written if SECRET.encode() in p.read_bytes()]
    assert leaks == []
    captured = capfd.readouterr()
    assert SECRET not in captured.out and SECRET not in captured.err
