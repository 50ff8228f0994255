"""Rendering with every file in an S3 bucket (moto over HTTP), real espeak-ng and ffmpeg."""

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from botocore.exceptions import EndpointConnectionError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image
from storages.backends.s3 import S3Storage

from jobs import services
from jobs.models import ExecutionStatus, Job
from jobs.render import loop as renders
from media_engine.ffmpeg import FFPROBE
from tests.factories import make_preset_job

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SHORT_TEXT = "今天天气很好。我们去公园散步吧。"
ARTIFACTS = ("narration", "srt", "ass", "video", "cover")


@pytest.fixture
def job(settings, bucket):
    settings.SEGMENT_TARGET_MS = 1500
    settings.STEP_BACKOFF_S = 0.01
    # Seeding the presets uploads the preset channel's logo to the bucket too.
    return make_preset_job(content=SHORT_TEXT, publish_title="公园散步")


def render(job: Job):
    return renders.execution_run(execution=services.execution_create(job=job))


def probe(source: str) -> dict:
    command = [FFPROBE, "-v", "error", "-of", "json", "-show_streams", "-show_format", source]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(completed.stdout)


def png_bytes(width: int = 1360, height: int = 768) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (40, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_render_stores_every_artifact_in_the_bucket_and_its_link_plays(job, bucket, settings):
    execution = render(job)

    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    keys = bucket.keys()
    for name in ARTIFACTS:
        assert execution.results[name] in keys, name
        assert execution.results[name].startswith(f"jobs/{job.pk}/{execution.pk}/")
    assert all(split.selected in keys for split in job.splits.all())
    assert job.account.logo.name in keys
    assert not any(Path(settings.MEDIA_ROOT).rglob("*.*"))  # nothing went to local media

    url = default_storage.url(execution.results["video"])
    response = requests.get(url, timeout=30)  # a separate HTTP client, as a browser would
    assert response.status_code == 200 and response.content == bucket.read(execution.results["video"])
    info = probe(url)  # ffprobe reads the video straight from the signed link
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 1360, 768)
    assert any(s["codec_type"] == "audio" for s in info["streams"])


def test_rerender_on_another_host_fetches_what_it_needs_from_the_bucket(
    job, bucket, settings, tmp_path, monkeypatch
):
    first = render(job)
    assert first.status == ExecutionStatus.SUCCESS, first.detail
    # A second host: an empty scratch space; the first host's disk is gone.
    shutil.rmtree(settings.WORK_ROOT)
    settings.WORK_ROOT = tmp_path / "second-host"
    split = job.splits.order_by("index").first()
    split.selected = default_storage.save(f"jobs/{job.pk}/pictures/chosen.png", ContentFile(png_bytes()))
    split.save()
    synthesized = []
    monkeypatch.setattr(
        "media_engine.tts.EspeakBackend.synthesize_sentence", lambda *args, **kwargs: synthesized.append(args)
    )

    second = render(job)

    assert second.status == ExecutionStatus.SUCCESS, second.detail
    statuses = {name: step["status"] for name, step in second.steps.items()}
    assert statuses == {
        "narration": "reused",
        "subtitles": "reused",
        "segments": "reused",
        "pictures": "done",
        "animation": "reused",
        "compose": "done",
        "cover": "done",
    }
    assert synthesized == []
    cache = Path(settings.WORK_ROOT) / "cache"
    for key in (first.results["narration"], first.results["ass"], split.selected, job.account.logo.name):
        assert (cache / key).read_bytes() == bucket.read(key), key  # fetched from the bucket
    assert second.results["video"] in bucket.keys() and second.results["video"] != first.results["video"]
    assert probe(default_storage.url(second.results["video"]))["format"]["duration"]


def test_interrupted_uploads_are_retried_and_never_recorded_half(job, bucket, monkeypatch):
    original = S3Storage._save
    injected = []

    def flaky(self, name, content):
        if name.endswith("video.mp4") and "video" not in injected:
            injected.append("video")  # the connection drops before the upload completes
            raise EndpointConnectionError(endpoint_url=bucket.endpoint)
        if name.endswith("cover.jpg") and "cover" not in injected:
            injected.append("cover")  # half the bytes arrive and the upload "succeeds"
            self.bucket.Object(name).put(Body=content.read()[:100])
            return name
        return original(self, name, content)

    monkeypatch.setattr(S3Storage, "_save", flaky)

    execution = render(job)

    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    assert injected == ["video", "cover"]
    assert execution.retry_count == 2
    for name in ARTIFACTS:
        key = execution.results[name]
        assert bucket.head(key)["ContentLength"] == default_storage.size(key) > 100, name
    with Image.open(io.BytesIO(bucket.read(execution.results["cover"]))) as cover:
        cover.load()  # the whole JPEG, not the first 100 bytes


def test_upload_that_keeps_failing_fails_the_render_without_recording_the_artifact(
    job, bucket, settings, monkeypatch
):
    settings.STEP_ATTEMPTS = 2
    settings.EXECUTION_MAX_RETRIES = 0
    original = S3Storage._save

    def broken(self, name, content):
        if name.endswith("video.mp4"):
            raise EndpointConnectionError(endpoint_url=bucket.endpoint)
        return original(self, name, content)

    monkeypatch.setattr(S3Storage, "_save", broken)

    execution = render(job)

    assert execution.status == ExecutionStatus.FAILED
    assert "gave up after attempt 1 of 1" in execution.error and "storage unreachable" in execution.error
    assert execution.steps["compose"]["tries"] == 2
    assert "video" not in execution.results and "cover" not in execution.results
    assert all(key in bucket.keys() for key in execution.results.values())
    assert not [key for key in bucket.keys() if key.endswith("video.mp4")]


def test_demo_prints_a_signed_link_and_a_downloaded_copy(bucket, settings, tmp_path, capsys):
    text = tmp_path / "article.txt"
    text.write_text(SHORT_TEXT, encoding="utf-8")

    call_command("demo", "--text", str(text))

    lines = capsys.readouterr().out.strip().splitlines()
    link = next(line for line in lines if line.startswith("Video link: "))[len("Video link: ") :]
    assert link.startswith(f"{bucket.endpoint}/{bucket.name}/jobs/") and "X-Amz-Signature=" in link
    copy = Path(lines[-1])
    assert copy.parent == Path(settings.WORK_ROOT) / "demo" and copy.suffix == ".mp4"
    assert copy.read_bytes() == requests.get(link, timeout=30).content
    assert f"Cover: {Path(settings.WORK_ROOT) / 'demo'}" in "\n".join(lines)
