"""Every stored file goes through django-storages' S3 backend, against a real HTTP endpoint (moto;
SeaweedFS where the server must check a link's signature and expiry)."""

import calendar
import subprocess
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.config import Config
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from accounts.storage import PublicS3Storage, storage_local_copy
from jobs import files, services
from jobs.models import ExecutionStatus, JobExecution
from media_engine.ffmpeg import FFMPEG
from tests.factories import make_account, make_execution, make_job, make_user, make_voice
from tests.storage.conftest import CHECKED_KEYS, use_s3

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


def test_uploads_through_default_storage_land_in_the_bucket(bucket):
    srt = "1\n00:00:00,000 --> 00:00:01,000\n你好\n".encode()
    key = default_storage.save("jobs/1/2/subtitles.srt", ContentFile(srt))

    assert key == "jobs/1/2/subtitles.srt"
    assert bucket.keys() == {key}
    assert "你好" in bucket.read(key).decode()
    assert default_storage.exists(key) and default_storage.size(key) == len(bucket.read(key))
    assert default_storage.listdir("jobs/1") == (["2"], [])


def test_uploaded_files_of_every_model_land_in_the_bucket(bucket, tmp_path):
    """Logos, voice references and clip-library files are FileFields on the same storage."""
    account = make_account(username="channel")
    account.logo.save("logo.png", ContentFile(b"\x89PNG fake"), save=True)
    voice = make_voice(name="clone")
    voice.reference.save("reference.wav", ContentFile(b"RIFF fake"), save=True)
    clip_path = tmp_path / "river.mp4"
    subprocess.run(
        [
            FFMPEG,
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x36:rate=10",
            "-t",
            "1",
            "-pix_fmt",
            "yuv420p",
            str(clip_path),
        ],
        check=True,
        timeout=60,
    )
    clip = services.clip_import(path=clip_path, tags="river")

    assert {account.logo.name, voice.reference.name, clip.file.name} <= bucket.keys()
    assert bucket.read(clip.file.name) == clip_path.read_bytes()


def test_a_large_file_uploads_in_parts_without_default_checksums(bucket, tmp_path):
    sent_headers = []
    client = default_storage.connection.meta.client
    client.meta.events.register(
        "before-send.s3", lambda request, **kwargs: sent_headers.append(dict(request.headers))
    )
    local = tmp_path / "video.mp4"
    local.write_bytes(bytes(range(256)) * (11 * MIB // 256))  # 11 MiB: three 5 MiB parts

    key = files.store(local, "jobs/1/2/video.mp4")

    assert bucket.read(key) == local.read_bytes()
    assert bucket.head(key)["ETag"].strip('"').endswith("-3")  # a multipart upload's ETag
    assert sent_headers and not any(
        name.lower().startswith("x-amz-checksum") or name.lower() == "x-amz-sdk-checksum-algorithm"
        for headers in sent_headers
        for name in headers
    )
    # boto3's defaults would have sent a checksum that S3-compatible servers may reject.
    defaults = []
    plain = boto3.client(
        "s3",
        endpoint_url=bucket.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}),
    )
    plain.meta.events.register(
        "before-send.s3", lambda request, **kwargs: defaults.append(dict(request.headers))
    )
    plain.put_object(Bucket=bucket.name, Key="plain.txt", Body=b"x")
    assert any(name.lower().startswith("x-amz-checksum") for name in defaults[-1])


def test_store_replaces_a_file_under_its_key_and_seeds_the_cache(bucket, tmp_path, settings):
    local = tmp_path / "cover.jpg"
    local.write_bytes(b"old")
    files.store(local, "jobs/1/2/cover.jpg")
    local.write_bytes(b"new cover")

    assert files.store(local, "jobs/1/2/cover.jpg") == "jobs/1/2/cover.jpg"
    assert bucket.keys() == {"jobs/1/2/cover.jpg"} and bucket.read("jobs/1/2/cover.jpg") == b"new cover"
    assert (Path(settings.WORK_ROOT) / "cache" / "jobs/1/2/cover.jpg").read_bytes() == b"new cover"


def test_fetch_downloads_into_the_cache_and_refreshes_a_stale_copy(bucket, settings):
    default_storage.save("accounts/logo.png", ContentFile(b"first logo"))

    path = files.fetch("accounts/logo.png")
    assert path == Path(settings.WORK_ROOT) / "cache" / "accounts/logo.png"
    assert path.read_bytes() == b"first logo"

    bucket.client.put_object(Bucket=bucket.name, Key="accounts/logo.png", Body=b"a replaced logo")
    assert files.fetch("accounts/logo.png").read_bytes() == b"a replaced logo"
    assert [p.name for p in path.parent.iterdir()] == ["logo.png"]  # no .part left behind
    with pytest.raises(FileNotFoundError):
        files.fetch("accounts/missing.png")


def test_signed_link_returns_the_bytes_and_carries_its_expiry(bucket, settings):
    use_s3(settings, bucket.endpoint, bucket.name, SIGNED_URL_EXPIRE_SECONDS="1")
    key = default_storage.save("jobs/1/2/narration.wav", ContentFile(b"RIFF narration bytes"))

    url = default_storage.url(key)

    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{bucket.endpoint}/{bucket.name}/jobs/1/2/narration.wav?")
    assert query["X-Amz-Expires"] == ["1"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "X-Amz-Signature" in query and "X-Amz-Date" in query
    assert requests.get(url, timeout=10).content == b"RIFF narration bytes"


def test_signed_link_is_refused_once_expired_or_forged(checking_bucket, checking_endpoint, settings):
    use_s3(settings, checking_endpoint, checking_bucket, SIGNED_URL_EXPIRE_SECONDS="2", **CHECKED_KEYS)
    key = default_storage.save("jobs/1/2/narration.wav", ContentFile(b"RIFF narration bytes"))

    url = default_storage.url(key)

    query = parse_qs(urlsplit(url).query)
    signature = query["X-Amz-Signature"][0]
    forged = url.replace(signature, signature[:-1] + ("1" if signature.endswith("0") else "0"))
    assert "X-Amz-Expires=2&" in url
    extended = url.replace("X-Amz-Expires=2&", "X-Amz-Expires=3600&")
    fresh, tampered = requests.get(url, timeout=10), requests.get(forged, timeout=10)
    assert fresh.status_code == 200 and fresh.content == b"RIFF narration bytes"
    assert tampered.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in tampered.text

    signed_at = calendar.timegm(time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ"))
    time.sleep(max(0.0, signed_at + 2.5 - time.time()))
    expired, prolonged = requests.get(url, timeout=10), requests.get(extended, timeout=10)

    assert expired.status_code == 403 and "<Code>AccessDenied</Code>" in expired.text
    assert "Request has expired" in expired.text
    # The expiry is part of what is signed: raising it in the link breaks the signature.
    assert prolonged.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in prolonged.text


def test_links_are_signed_for_the_public_endpoint(settings, moto_endpoint, bucket):
    # The workers use 127.0.0.1; browsers reach the same server as "localhost".
    public = moto_endpoint.replace("127.0.0.1", "localhost")
    use_s3(settings, moto_endpoint, bucket.name, AWS_S3_PUBLIC_ENDPOINT_URL=public)
    assert isinstance(default_storage, PublicS3Storage)
    key = default_storage.save("jobs/1/2/cover.jpg", ContentFile(b"cover bytes"))
    assert bucket.keys() == {key}  # uploads still go to the inside endpoint

    url = default_storage.url(key)

    assert url.startswith(f"{public}/{bucket.name}/jobs/1/2/cover.jpg?")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=3600" in url
    assert requests.get(url, timeout=10).content == b"cover bytes"


def test_local_copy_downloads_from_the_bucket(bucket, tmp_path):
    key = default_storage.save("jobs/1/2/video.mp4", ContentFile(b"video bytes"))

    copy = storage_local_copy(default_storage, key, tmp_path / "demo")

    assert copy == tmp_path / "demo" / "video.mp4" and copy.read_bytes() == b"video bytes"


# ---------------------------------------------------------------- clean-up


def _finished(job, *, age: timedelta, size: int) -> JobExecution:
    execution = make_execution(job, status=ExecutionStatus.SUCCESS, finished_at=timezone.now() - age)
    JobExecution.objects.filter(pk=execution.pk).update(created_at=timezone.now() - age)
    key = default_storage.save(f"jobs/{job.pk}/{execution.pk}/video.mp4", ContentFile(b"v" * size))
    execution.results = {"video": key}
    execution.save(update_fields=["results"])
    return execution


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_cleanup_old_jobs_dry_run_lists_sizes_then_removes_from_the_bucket(bucket):
    job = make_job()
    old = _finished(job, age=timedelta(days=40), size=2048)
    latest = _finished(job, age=timedelta(days=1), size=10)

    output = _run("cleanup_old_jobs", "--days", "30", "--dry-run")

    assert f"  {old.results['video']} (2.0 KiB)" in output
    assert old.results["video"] in bucket.keys()

    output = _run("cleanup_old_jobs", "--days", "30")

    assert output.splitlines()[-1] == "Removed 1 executions, 0 deleted jobs, 1 files, 2048 bytes (2.0 KiB)."
    assert bucket.keys() == {latest.results["video"]}


def test_soft_delete_keeps_files_until_cleanup_removes_them(bucket):
    job = make_job()
    execution = _finished(job, age=timedelta(days=2), size=100)
    default_storage.save(f"jobs/{job.pk}/pictures/000-upload.png", ContentFile(b"p" * 50))

    services.job_soft_delete(job=job)
    assert len(bucket.keys(f"jobs/{job.pk}/")) == 2

    output = _run("cleanup_old_jobs", "--days", "0")

    assert "1 deleted jobs, 2 files, 150 bytes" in output.splitlines()[-1]
    assert bucket.keys(f"jobs/{job.pk}/") == set()
    assert not JobExecution.objects.filter(pk=execution.pk).exists()


def test_cleanup_storage_dry_run_keeps_objects_and_manual_removes_them(bucket, settings):
    settings.CLEANUP_KEEP_EXECUTIONS = 1
    job = make_job()
    old = _finished(job, age=timedelta(days=3), size=3000)
    newest = _finished(job, age=timedelta(days=1), size=10)

    output = _run("cleanup_storage", "--mode", "manual", "--dry-run")

    assert f"  {old.results['video']} (2.9 KiB)" in output
    assert output.splitlines()[-1] == "Would free 1 files, 3000 bytes (2.9 KiB) from 1 executions."
    assert old.results["video"] in bucket.keys()

    output = _run("cleanup_storage", "--mode", "manual")

    assert output.splitlines()[-1] == "Freed 1 files, 3000 bytes (2.9 KiB) from 1 executions."
    assert bucket.keys() == {newest.results["video"]}
    old.refresh_from_db()
    assert old.results == {}


# ---------------------------------------------------------------- health


def test_extended_health_reports_the_bucket_reachable_or_not(bucket, client, settings):
    client.force_login(make_user(is_staff=True))

    storage = client.get("/health/extended").json()["components"]["storage"]

    assert storage["status"] == "ok" and storage["backend"] == "S3Storage"
    assert bucket.keys("health/") == set()  # the probe cleaned up after itself

    closed = bucket.endpoint.rsplit(":", 1)[0] + ":1"  # nothing listens on port 1
    use_s3(settings, closed, bucket.name, AWS_S3_MAX_ATTEMPTS="1", AWS_S3_CONNECT_TIMEOUT_S="2")
    response = client.get("/health/extended")

    storage = response.json()["components"]["storage"]
    assert response.status_code == 503
    assert storage["status"] == "error" and "EndpointConnectionError" in storage["error"]


@pytest.mark.django_db
def test_music_is_stored_and_listed_in_the_bucket(bucket):
    user = make_user()
    key = services.music_save(team=user.personal_team, audio=ContentFile(b"RIFF music", name="a1b2.wav"))[
        "key"
    ]

    listed = services.music_list(team=user.personal_team)

    assert key == f"music/team-{user.personal_team.pk}/a1b2.wav"
    assert [(item["key"], item["size"]) for item in listed] == [(key, 10)]
    assert requests.get(listed[0]["url"], timeout=10).content == b"RIFF music"
    assert services.music_list(team=make_user().personal_team) == []
