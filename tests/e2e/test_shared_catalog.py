"""Two "machines" (separate ``DISTILLSET_HOME``s) sharing the whole state of a cluster (issue 14):
the PostgreSQL ledger, the DuckLake catalog (metadata in PostgreSQL, data in a moto S3 bucket) and
the bucket for prompts and training sets, running ``distillset run`` at the same moment.

Nothing is paid twice, one version is published, neither home has a catalog file of its own, the
lake holds one copy of the teacher's rows, and a third machine that never ran the flow explains an
example from the rows the other two wrote (its generations are in the catalog only). The URLs carry
a password, which no output and no file of any home may contain.
"""

from __future__ import annotations

import json

import boto3

from distillset import catalog
from distillset.catalog_lake import catalog_location
from distillset.publish.reader import list_versions, read_examples, verify_version
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.ledger import Ledger
from helpers.cli import MODEL, cli_env, distillset, small_prompt_folder, start_distillset
from helpers.postgres import fresh_database

NAME = "distill-llama-3-1-405b-instruct"
RELAXED_GATES = {"DISTILLSET_GATE_MIN_VERIFIABLE_ACCURACY": "0", "DISTILLSET_GATE_MIN_PASS_RATE": "0"}
SECRET = "pg-password-of-the-lake-never-written-4417"


def _with_password(url: str) -> str:
    # Trust authentication ignores the password: it is there to be looked for.
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")


def _files_holding(root, secret: str) -> list:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_two_machines_sharing_ledger_catalog_and_bucket(tmp_path, s3_url, moto_endpoint):
    folder = small_prompt_folder(tmp_path, gsm8k_rows=40, mt_bench_rows=5)
    bucket = s3_url.removeprefix("s3://").split("/")[0]
    client = boto3.client("s3")
    for path in folder.iterdir():
        client.put_object(Bucket=bucket, Key=f"prompts/{path.name}", Body=path.read_bytes())
    data_path = f"s3://{bucket}/catalog/"
    with fresh_database("distillset_ledger") as ledger_db, fresh_database("distillset_lake") as lake_db:
        shared = {
            "DISTILLSET_LEDGER_URL": _with_password(ledger_db),
            "DISTILLSET_CATALOG_URL": f"ducklake:postgres:{_with_password(lake_db)}",
            "DISTILLSET_CATALOG_DATA_PATH": data_path,
            "DISTILLSET_STORAGE_URL": s3_url,
        }

        def machine_env(name: str, **extra: str) -> dict[str, str]:
            env = cli_env(tmp_path / name, folder, **shared, **RELAXED_GATES, **extra)
            env["DISTILLSET_PROMPTS_URL"] = f"s3://{bucket}/prompts"
            return env

        with TeacherSimulator(latency_s=0.25) as sim:
            envs = [machine_env(m, TEACHER_BASE_URL=sim.base_url, TEACHER_MAX_CONCURRENCY="8") for m in "ab"]
            runs = [start_distillset("run", "--wait-timeout", "900", env=env) for env in envs]
            outputs = [run.communicate(timeout=900)[0] for run in runs]
            for run, output in zip(runs, outputs, strict=True):
                assert run.returncode == 0, output
            completions = sim.stats()["completions_by_hash"]

        ledger = Ledger(ledger_db)
        assert 35 <= ledger.count_answers() == sum(completions.values())
        assert set(completions.values()) == {1}, "a request was paid twice"
        assert [v.version for v in list_versions(s3_url, NAME)] == ["v0001"], outputs
        assert verify_version(s3_url, NAME, "v0001") == []
        for machine in "ab":
            home = tmp_path / machine / "home"
            assert not (home / "catalog.duckdb").exists(), "each home used the shared catalog"
            assert not (home / "ledger.sqlite").exists(), "each home used the shared ledger"

        # The lake holds one copy of the teacher's rows: both machines replaced the same partition.
        lake = catalog_location(
            shared["DISTILLSET_CATALOG_URL"], data_path, tmp_path / "reader", s3_endpoint_url=moto_endpoint
        )
        [(rows, prompts)] = catalog.query(
            lake, "SELECT count(*), count(DISTINCT prompt_id) FROM teacher_generations WHERE teacher_model = ?", [MODEL]
        )
        assert rows == prompts >= 35
        published = read_examples(s3_url, NAME, columns=["example_id"])
        assert catalog.count_rows(lake, "training_examples", "WHERE teacher_model = ?", [MODEL]) >= published.height

        # A third machine that never ran the flow explains an example from the rows the others wrote.
        example_id = published["example_id"][0]
        explained = distillset("explain", example_id, "--json", env=machine_env("c"))
        assert explained.returncode == 0, explained.stderr
        answer = json.loads(explained.stdout)
        assert answer["generations"], answer  # teacher_generations: in the shared catalog only
        assert answer["prompt"] is not None, answer  # raw_prompts, from the shared catalog
        assert not (tmp_path / "c" / "home" / "catalog.duckdb").exists()

        for text in [*outputs, explained.stdout, explained.stderr]:
            assert SECRET not in text
        assert _files_holding(tmp_path, SECRET) == []
