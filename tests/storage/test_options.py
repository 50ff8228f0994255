"""settings.py builds the S3 storage from the environment through accounts.storage."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.storage import s3_backend, s3_options

ROOT = Path(__file__).resolve().parents[2]
SHOW = (
    "from django.core.files.storage import default_storage as s; c = s.connection.meta.client; "
    "print(s.__class__.__name__, s.bucket_name, c.meta.endpoint_url, s.querystring_expire, "
    "s.transfer_config.multipart_threshold, c.meta.config.request_checksum_calculation, "
    "c.meta.config.response_checksum_validation); print(s.url('jobs/1/2/video.mp4'))"
)


def settings_storage(**env: str) -> list[str]:
    completed = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {SHOW}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "batchvideo.settings",
            "AWS_ACCESS_KEY_ID": "key",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_S3_REGION_NAME": "us-east-1",
            **env,
        },
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.splitlines()


def test_settings_build_the_s3_storage_from_the_environment():
    summary, url = settings_storage(
        AWS_STORAGE_BUCKET_NAME="videos",
        AWS_S3_ENDPOINT_URL="http://minio:9000",
        SIGNED_URL_EXPIRE_SECONDS="600",
        AWS_S3_MULTIPART_THRESHOLD_MB="8",
    )

    assert summary.split() == [
        "S3Storage",
        "videos",
        "http://minio:9000",
        "600",
        str(8 * 1024 * 1024),
        "when_required",
        "when_required",
    ]
    assert url.startswith("http://minio:9000/videos/jobs/1/2/video.mp4?") and "X-Amz-Expires=600" in url


def test_a_public_endpoint_signs_links_for_browsers():
    summary, url = settings_storage(
        AWS_STORAGE_BUCKET_NAME="videos",
        AWS_S3_ENDPOINT_URL="http://minio:9000",
        AWS_S3_PUBLIC_ENDPOINT_URL="https://files.example.com",
    )

    assert summary.split()[:3] == ["PublicS3Storage", "videos", "http://minio:9000"]
    assert url.startswith("https://files.example.com/videos/jobs/1/2/video.mp4?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "X-Amz-Signature=" in url


def test_options_match_django_storages_names_and_reject_bad_numbers():
    env = {"AWS_STORAGE_BUCKET_NAME": "videos"}
    assert s3_backend(env) == "storages.backends.s3.S3Storage"
    options = s3_options(env)
    assert options["querystring_auth"] is True and options["file_overwrite"] is True
    assert options["client_config"].s3 == {"addressing_style": "path"}
    assert options["client_config"].signature_version == "s3v4"
    assert "public_endpoint_url" not in options
    with pytest.raises(ImproperlyConfigured, match="_MB must be a whole number, not 'lots'"):
        s3_options({**env, "AWS_S3_MULTIPART_THRESHOLD_MB": "lots"})
