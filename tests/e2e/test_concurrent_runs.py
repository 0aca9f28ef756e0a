"""Two `distillset run` started together (issue 14): nothing paid twice, one version.

On one home, and as two "machines": separate homes sharing one ledger (``DISTILLSET_LEDGER_URL``:
a SQLite file, then a PostgreSQL database) and one S3 bucket (moto's server) for the prompts and
the training sets. The PostgreSQL URL carries a password, which no output and no file of either
home may contain.

Before request leases, both runs looked every key up in the ledger before the other had paid for
it, and paid for nearly every request twice; two publishers of the same rows could both publish.
Now the second run waits for the first one's answers (or pays for the keys the first has not
claimed), both succeed, the training set has one version, and the Dagster instance is healthy
afterwards (both runs succeeded, no pool slot left claimed).
"""

from __future__ import annotations

from pathlib import Path

import boto3
import dagster as dg

from distillset.publish.reader import list_versions, verify_version
from distillset.simulator.server import TeacherSimulator
from distillset.teacher.ledger import Ledger
from helpers.cli import cli_env, small_prompt_folder, start_distillset
from orchestration.run import open_instance

NAME = "distill-llama-3-1-405b-instruct"
RELAXED_GATES = {"DISTILLSET_GATE_MIN_VERIFIABLE_ACCURACY": "0", "DISTILLSET_GATE_MIN_PASS_RATE": "0"}


def test_two_runs_started_together_pay_nothing_twice_and_publish_one_version(tmp_path):
    prompts = small_prompt_folder(tmp_path, gsm8k_rows=40, mt_bench_rows=5)
    with TeacherSimulator(latency_s=0.25) as sim:
        env = cli_env(tmp_path, prompts, TEACHER_BASE_URL=sim.base_url, TEACHER_MAX_CONCURRENCY="8", **RELAXED_GATES)
        runs = [start_distillset("run", "--wait-timeout", "600", env=env) for _ in range(2)]
        outputs = [run.communicate(timeout=600)[0] for run in runs]
        for run, output in zip(runs, outputs, strict=True):
            assert run.returncode == 0, output
        completions = sim.stats()["completions_by_hash"]
    home = Path(env["DISTILLSET_HOME"])
    ledger = Ledger(home / "ledger.sqlite")
    requests = ledger.count_answers()
    assert requests >= 40  # the pool's prompts, MT-Bench ones two turns each
    assert set(completions.values()) == {1}, "a request was paid twice"
    assert sum(completions.values()) == requests
    assert ledger.leases() == []

    storage = str(home / "training_sets")
    versions = list_versions(storage, NAME)
    assert [v.version for v in versions] == ["v0001"], outputs
    assert verify_version(storage, NAME, "v0001") == []
    assert sum("published new version" in output for output in outputs) == 1, outputs

    with open_instance(home / "dagster") as instance:
        runs = instance.get_runs()
        assert len(runs) == 2 and {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
        assert not instance.event_log_storage.get_concurrency_info("distillset_catalog").claimed_slots


SECRET = "pg-password-never-written-7731"


def _files_holding(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_two_homes_sharing_a_ledger_and_a_bucket_pay_nothing_twice_and_publish_one_version(
    tmp_path, s3_url, ledger_location
):
    # MT-Bench prompts too: a teacher that does not know GSM8K's references (this simulator) gets
    # its GSM8K answers dropped by verification, and an empty set would fail the gates.
    folder = small_prompt_folder(tmp_path, gsm8k_rows=40, mt_bench_rows=5)
    bucket = s3_url.removeprefix("s3://").split("/")[0]
    client = boto3.client("s3")
    for path in folder.iterdir():
        client.put_object(Bucket=bucket, Key=f"prompts/{path.name}", Body=path.read_bytes())
    if isinstance(ledger_location, Path):
        ledger_url = f"sqlite:///{ledger_location}"
    else:  # trust authentication ignores the password: it is there to be looked for
        ledger_url = ledger_location.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    with TeacherSimulator(latency_s=0.25) as sim:
        envs = []
        for machine in ("a", "b"):
            env = cli_env(
                tmp_path / machine,
                folder,
                TEACHER_BASE_URL=sim.base_url,
                TEACHER_MAX_CONCURRENCY="8",
                DISTILLSET_LEDGER_URL=ledger_url,
                DISTILLSET_STORAGE_URL=s3_url,
                **RELAXED_GATES,
            )
            env["DISTILLSET_PROMPTS_URL"] = f"s3://{bucket}/prompts"
            envs.append(env)
        runs = [start_distillset("run", env=env) for env in envs]
        outputs = [run.communicate(timeout=600)[0] for run in runs]
        for run, output in zip(runs, outputs, strict=True):
            assert run.returncode == 0, output
        completions = sim.stats()["completions_by_hash"]
    ledger = Ledger(ledger_location)
    assert 35 <= ledger.count_answers() == sum(completions.values())  # the pool drops a duplicate or two
    assert set(completions.values()) == {1}, "a request was paid twice"
    for machine in ("a", "b"):
        assert not (tmp_path / machine / "home" / "ledger.sqlite").exists(), "each home used the shared ledger"
        assert _files_holding(tmp_path / machine, SECRET) == []
    assert ledger.leases() == []
    assert not any(SECRET in output for output in outputs)
    assert [v.version for v in list_versions(s3_url, NAME)] == ["v0001"], outputs
    assert verify_version(s3_url, NAME, "v0001") == []
