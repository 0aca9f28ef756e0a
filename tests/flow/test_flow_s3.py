"""The whole flow with prompts read from S3 and the training set published to S3 (moto's real
server on loopback), then audited with `distillset explain`.

Protects: DISTILLSET_PROMPTS_URL and DISTILLSET_STORAGE_URL accept s3:// URLs end to end; the
published version reads back from the bucket with verified checksums; a kept example can be
explained back to its source line and teacher call; no AWS secret lands in any object written.
"""

from __future__ import annotations

import json

import boto3
import dagster as dg
import pytest

from distillset.audit.explain import explain
from distillset.publish.reader import list_versions, read_examples, read_manifest, verify_version
from distillset.settings.paths import DATA_DIR
from helpers.flow import materialize_flow, step_failures
from helpers.s3 import FAKE_SECRET_ACCESS_KEY


@pytest.fixture
def s3_prompts(s3_url, monkeypatch):  # noqa: F811
    """A few sample prompts uploaded next to the training sets prefix."""
    bucket = s3_url.removeprefix("s3://").split("/")[0]
    client = boto3.client("s3")
    lines = (DATA_DIR / "sample_prompts" / "mt_bench_questions.jsonl").read_text().splitlines(keepends=True)[:12]
    client.put_object(Bucket=bucket, Key="prompts/mt_bench.jsonl", Body="".join(lines).encode())
    client.put_object(Bucket=bucket, Key="prompts/mt_bench.jsonl.license", Body=b"Apache-2.0\n")
    monkeypatch.setenv("DISTILLSET_PROMPTS_URL", f"s3://{bucket}/prompts")
    monkeypatch.setenv("DISTILLSET_STORAGE_URL", s3_url)
    return bucket


def test_flow_reads_and_publishes_on_s3(distillset_home, s3_prompts, s3_url):  # noqa: F811
    result = materialize_flow(dg.DagsterInstance.ephemeral())
    assert result.success, step_failures(result)

    name = "distill-llama-3-1-405b-instruct"
    versions = list_versions(s3_url, name)
    assert [v.version for v in versions] == ["v0001"]
    assert verify_version(s3_url, name, "v0001") == []
    examples = read_examples(s3_url, name, "v0001")
    assert examples.height > 0
    # Source files are named relative to the prompts URL the manifest records.
    assert set(examples["source_file"]) == {"mt_bench.jsonl"}
    assert read_manifest(s3_url, name, "v0001")["prompts_url"] == f"s3://{s3_prompts}/prompts"
    assert set(examples["license"].to_list()) == {"Apache-2.0"}

    # Every kept example explains back to its S3 source line and its teacher calls.
    row = examples.row(0, named=True)
    explanation = explain(distillset_home / "catalog.duckdb", s3_url, row["example_id"])
    text = str(explanation)
    assert row["source_file"] in text and row["request_hash"] in text and "v0001" in text

    client = boto3.client("s3")
    for item in client.list_objects_v2(Bucket=s3_prompts)["Contents"]:
        body = client.get_object(Bucket=s3_prompts, Key=item["Key"])["Body"].read()
        assert FAKE_SECRET_ACCESS_KEY.encode() not in body, item["Key"]
    train = client.get_object(Bucket=s3_prompts, Key=f"sets/{name}/v0001/train.jsonl")["Body"].read().decode()
    assert all("messages" in json.loads(line) for line in train.splitlines())
