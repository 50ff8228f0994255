"""A real S3 endpoint for the storage tests: moto's ThreadedMotoServer on 127.0.0.1.

The storage under test is built by the same `s3_options` as settings.py builds it from the
environment; only the endpoint, keys and a small multipart threshold are the test's own.
"""

import socket
import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

from batchvideo.storage import s3_backend, s3_options

KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_S3_REGION_NAME": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint():
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


class Bucket:
    """The bucket as a separate boto3 client sees it (not through django-storages)."""

    def __init__(self, endpoint: str, name: str):
        self.name = name
        self.endpoint = endpoint
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                   aws_access_key_id="testing", aws_secret_access_key="testing")

    def keys(self, prefix: str = "") -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def head(self, key: str) -> dict:
        return self.client.head_object(Bucket=self.name, Key=key)


def use_s3(settings, endpoint: str, bucket: str, **extra: str) -> dict:
    """Point default_storage at the bucket with settings.py's own options; returns the env used."""
    env = {"AWS_STORAGE_BUCKET_NAME": bucket, "AWS_S3_ENDPOINT_URL": endpoint,
           "AWS_S3_MULTIPART_THRESHOLD_MB": "5", "AWS_S3_MULTIPART_CHUNKSIZE_MB": "5", **KEYS, **extra}
    storage = {"BACKEND": s3_backend(env), "OPTIONS": s3_options(env)}
    settings.STORAGES = {**settings.STORAGES, "default": storage}
    return env


@pytest.fixture
def bucket(settings, moto_endpoint) -> Bucket:
    """A fresh bucket behind default_storage (the autouse isolated_files fixture ran first)."""
    found = Bucket(moto_endpoint, f"videos-{uuid.uuid4().hex[:12]}")
    found.client.create_bucket(Bucket=found.name)
    use_s3(settings, moto_endpoint, found.name)
    return found
