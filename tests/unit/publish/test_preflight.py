"""What is checked before the first paid call: the version could be published at all.

Protects: a storage location that cannot be written (a local path under a file, an S3 bucket that
does not exist), a refused training set name and a blocking license policy are reported before the
teacher is paid, each with a message naming the cause; a writable location leaves no probe behind.
"""

from __future__ import annotations

import boto3
import pytest

from distillset import storage
from distillset.publish.preflight import NotPublishableError, check_before_paying
from distillset.settings import LicensePolicy

MODEL = "meta-llama/Llama-3.1-405B-Instruct"
LICENSES = {"gsm8k.jsonl": "MIT"}


def _check(url: str, *, name: str = "my-set", licenses=LICENSES, policy=None, **options) -> None:
    policy = policy or LicensePolicy()
    check_before_paying(url, name, MODEL, licenses, policy=policy, storage_options=options or None)


def test_a_writable_folder_passes_and_keeps_no_probe(tmp_path):
    _check(str(tmp_path / "sets"))
    assert list((tmp_path / "sets").iterdir()) == []


def test_a_folder_that_cannot_exist_is_refused(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(NotPublishableError, match="cannot write to the storage location .*DISTILLSET_STORAGE_URL"):
        _check(str(tmp_path / "a-file" / "sets"))


def test_a_missing_bucket_is_refused_and_an_existing_one_passes(s3_url, moto_endpoint):
    _check(s3_url, endpoint_url=moto_endpoint)
    bucket = s3_url.split("/")[2]
    assert boto3.client("s3", endpoint_url=moto_endpoint).list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    with pytest.raises(NotPublishableError, match="no-such-bucket-distillset"):
        _check("s3://no-such-bucket-distillset/sets", endpoint_url=moto_endpoint)


def test_a_refused_name_is_refused(tmp_path):
    with pytest.raises(NotPublishableError, match="evil"):
        _check(str(tmp_path), name="../../etc/evil")


def test_a_blocking_license_policy_is_refused(tmp_path):
    with pytest.raises(NotPublishableError, match="license policy blocks publication"):
        _check(str(tmp_path), licenses={"scraped.jsonl": "unknown"}, policy=LicensePolicy(block_unknown=True))
    _check(str(tmp_path), licenses={"scraped.jsonl": "unknown"})  # the default policy only warns
    assert storage.filesystem(str(tmp_path))[0].ls(str(tmp_path)) == []
