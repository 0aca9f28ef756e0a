"""A real S3 endpoint for tests: moto's threaded server on 127.0.0.1, one fresh bucket per test.

The fixtures (``moto_endpoint``, ``s3_url``) are registered for every test by ``tests/conftest.py``
(``pytest_plugins``); the fake credentials are importable for assertions.
"""

from __future__ import annotations

import logging
import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

# A recognisable fake secret: tests grep every written file for it.
FAKE_SECRET_ACCESS_KEY = "moto-fake-secret-key-must-never-be-written-0123456789"
FAKE_ACCESS_KEY_ID = "AKIAMOTOFAKEKEYID0001"


@pytest.fixture(scope="module")
def moto_endpoint():
    """The URL of a moto S3 server running in a thread for this test module."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_url(moto_endpoint, monkeypatch, tmp_path):
    """``s3://<fresh bucket>/sets`` with the AWS variables pointing at the moto server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    # Keep a developer's ~/.aws profile out of the test.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    bucket = f"distillset-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/sets"
