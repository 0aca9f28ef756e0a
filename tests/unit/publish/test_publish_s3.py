"""Publishing training set versions to S3 (moto's real server on 127.0.0.1).

Protects the same guarantees as on a local folder where S3 has no rename: a version without a
manifest stays invisible, checksums are verified by reading back from the store, conditional
creates (``If-None-Match: *``) keep racing publishers on distinct versions, an interrupted
publish leaves nothing visible and is recovered, DuckDB reads the published Parquet over
``s3://`` through the registered s3fs filesystem (no httpfs), and no AWS secret is written.
"""

from __future__ import annotations

import boto3
import pytest

from distillset import ids, storage
from distillset.publish import protocol as publish
from distillset.publish.protocol import publish_training_set
from distillset.publish.reader import list_versions, read_examples, read_manifest, verify_version
from helpers.publish import FIELDS, check_race, make_examples, race
from helpers.s3 import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY


def _objects(url: str) -> dict[str, bytes]:
    bucket = url.removeprefix("s3://").split("/", 1)[0]
    client = boto3.client("s3")
    keys = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def test_publish_read_back_and_unchanged(s3_url):
    examples = make_examples(10)
    result = publish_training_set(s3_url, "math", examples, manifest_fields=FIELDS, formats=["openai", "sharegpt"])
    assert result.published and result.version == "v0001" and result.path == f"{s3_url}/math/v0001"

    objects = _objects(s3_url)
    prefix = s3_url.removeprefix("s3://").split("/", 1)[1] + "/math/v0001/"
    for name, info in result.files.items():
        assert ids.sha256_hex(objects[prefix + name]) == info["sha256"]
    assert verify_version(s3_url, "math", "v0001") == []
    assert (
        read_examples(s3_url, "math", "v0001").sort("example_id")["example_id"].to_list()
        == examples.sort("example_id")["example_id"].to_list()
    )
    assert read_manifest(s3_url, "math")["files"] == result.files
    assert f"{s3_url}/math/v0001/train.jsonl" in objects[prefix + "README.md"].decode()

    again = publish_training_set(s3_url, "math", examples, manifest_fields=FIELDS, formats=["sharegpt"])
    assert not again.published and again.version == "v0001"
    changed = publish_training_set(s3_url, "math", make_examples(11), manifest_fields=FIELDS)
    assert (changed.version, changed.parent_version) == ("v0002", "v0001")
    assert {k: v for k, v in _objects(s3_url).items() if k.startswith(prefix)} == {
        k: v for k, v in objects.items() if k.startswith(prefix)
    }


def test_duckdb_reads_published_parquet_over_s3(s3_url):
    examples = make_examples(9)
    publish_training_set(s3_url, "math", examples, manifest_fields=FIELDS)
    con = storage.duckdb_connection_for(s3_url)
    rows = con.execute(
        f"SELECT split, count(*) FROM read_parquet('{s3_url}/math/v0001/data.parquet') GROUP BY split ORDER BY split"
    ).fetchall()
    expected = examples.group_by("split").len().sort("split").rows()
    assert rows == expected
    assert "httpfs" not in {
        r[0] for r in con.execute("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()
    }


def test_interrupted_publish_is_invisible_and_recovered(s3_url, monkeypatch):
    # monkeypatch.context(): undoing the whole monkeypatch would also drop the AWS variables.
    with monkeypatch.context() as patch:
        patch.setattr(
            publish, "manifest_bytes", lambda manifest: (_ for _ in ()).throw(RuntimeError("connection lost"))
        )
        with pytest.raises(RuntimeError, match="connection lost"):
            publish_training_set(s3_url, "math", make_examples(5), manifest_fields=FIELDS)
    assert list_versions(s3_url, "math") == []
    assert not [k for k in _objects(s3_url) if "/math/v0001/" in k], "the failed publisher removes what it wrote"

    result = publish_training_set(s3_url, "math", make_examples(5), manifest_fields=FIELDS)
    assert result.version == "v0001" and verify_version(s3_url, "math", "v0001") == []


def test_crashed_publisher_leftovers_are_cleaned_once_stale(s3_url, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(publish, "_abandon", lambda *args, **kwargs: None)
        patch.setattr(publish, "manifest_bytes", lambda manifest: (_ for _ in ()).throw(RuntimeError("killed")))
        with pytest.raises(RuntimeError):
            publish_training_set(s3_url, "math", make_examples(5), manifest_fields=FIELDS)
    leftovers = [k for k in _objects(s3_url) if "/math/v0001/" in k]
    assert any(k.endswith("/.claim") for k in leftovers) and any(k.endswith("train.jsonl") for k in leftovers)
    assert list_versions(s3_url, "math") == []
    fresh = publish_training_set(s3_url, "math", make_examples(5), manifest_fields=FIELDS)
    assert fresh.version == "v0002", "a fresh claim may belong to a live publisher: left alone"

    result = publish_training_set(s3_url, "math", make_examples(6), manifest_fields=FIELDS, stale_after_s=0.0)
    assert (result.version, result.parent_version) == ("v0003", "v0002")
    assert not [k for k in _objects(s3_url) if "/math/v0001/" in k], "the stale half version is removed"
    assert [v.version for v in list_versions(s3_url, "math")] == ["v0002", "v0003"]
    assert verify_version(s3_url, "math", "v0002") == [] and verify_version(s3_url, "math", "v0003") == []


def test_racing_publishers_on_s3(s3_url):
    frames = [make_examples(4 + i) for i in range(3)]
    results = race(s3_url, frames)
    assert all(r.published for r in results)
    check_race(s3_url, frames, results)


def test_racing_publishers_on_s3_with_the_same_content_publish_one_version(s3_url):
    frames = [make_examples(200) for _ in range(3)]
    results = race(s3_url, frames)
    check_race(s3_url, frames, results)
    assert sum(r.published for r in results) == 1
    assert [v.version for v in list_versions(s3_url, "race")] == ["v0001"]
    assert not [k for k in _objects(s3_url) if "/.claims/content-" in k], "the content claim is released"


def test_a_visible_manifest_is_never_overwritten(s3_url):
    publish_training_set(s3_url, "math", make_examples(4), manifest_fields=FIELDS)
    fs, root = storage.filesystem(s3_url)
    manifest_path = storage.join(root, "math", "v0001", "manifest.json")
    before = fs.cat(manifest_path)
    assert storage.create_exclusive(fs, manifest_path, b"{}") is False
    assert fs.cat(manifest_path) == before


def test_no_aws_secret_in_any_written_object(s3_url):
    credentials = {"key": FAKE_ACCESS_KEY_ID, "secret": FAKE_SECRET_ACCESS_KEY}
    fields = {**FIELDS, "storage_options": credentials, "note": f"published with {FAKE_SECRET_ACCESS_KEY}"}
    result = publish_training_set(
        s3_url, "math", make_examples(4), manifest_fields=fields, formats=["alpaca"], storage_options=credentials
    )
    objects = _objects(s3_url)
    assert result.published and len(objects) >= 7
    assert all(
        FAKE_SECRET_ACCESS_KEY.encode() not in body and FAKE_ACCESS_KEY_ID.encode() not in body
        for body in objects.values()
    )
    assert read_manifest(s3_url, "math")["extra"]["note"] == "published with ***"
