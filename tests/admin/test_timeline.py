"""The job page's timeline downloads: the latest render's timeline as a zip, for those who see the job only."""

import io
import subprocess
import zipfile
from pathlib import Path

import opentimelineio as otio
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from jobs.exports.timeline import NO_RENDER
from jobs.files import execution_key, picture_key, store
from jobs.models import ExecutionStatus, Job
from tests.admin.conftest import client_for
from tests.factories import make_execution, make_job
from tests.media_engine.test_timeline import media_path

pytestmark = pytest.mark.django_db


def recorded_job(owner, tmp_path: Path) -> Job:
    """A job whose successful render stored a narration and two pictures, and recorded its timeline as the
    compose step does."""
    job = make_job(owner=owner, title="Two pictures")
    execution = make_execution(job, status=ExecutionStatus.SUCCESS)
    narration = tmp_path / "narration.wav"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=f=440:d=2", str(narration)],
        check=True,
        timeout=60,
    )
    shots = []
    for index, colour in enumerate(["red", "blue"]):
        picture = tmp_path / f"{colour}.png"
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                f"color={colour}:s=64x36",
                "-frames:v",
                "1",
                str(picture),
            ],
            check=True,
            timeout=60,
        )
        shots.append(
            {
                "key": store(picture, picture_key(job.pk, index, "card")),
                "kind": "still",
                "start_ms": index * 1000,
                "end_ms": index * 1000 + 1000,
                "text": colour,
            }
        )
    execution.results = {"narration": store(narration, execution_key(job.pk, execution.pk, "narration.wav"))}
    execution.steps = {
        "compose": {
            "status": "done",
            "data": {
                "timeline": {
                    "width": 1360,
                    "height": 768,
                    "fps": 30,
                    "shots": shots,
                    "music": "",
                    "music_stored": False,
                    "music_volume": 0.15,
                }
            },
        }
    }
    execution.save()
    return job


def timeline_url(job: Job, fmt: str) -> str:
    return f"{reverse('admin:jobs_job_timeline', args=[job.pk])}?format={fmt}"


def test_job_page_links_each_timeline_and_the_link_downloads_it(operator, tmp_path):
    job = recorded_job(operator, tmp_path)
    client = client_for(operator)
    html = client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    for fmt in ("otio", "fcpxml", "fcp7xml", "jianying"):
        assert timeline_url(job, fmt) in html
    response = client.get(timeline_url(job, "fcp7xml"))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as bundle:
        bundle.extractall(tmp_path / "out")
    folder = tmp_path / "out" / f"{job.pk}-Two pictures"
    sequence = otio.adapters.read_from_file(str(folder / "timeline.xml"))
    pictures = list(sequence.video_tracks()[0].find_clips())
    assert [clip.range_in_parent().start_time.to_frames() for clip in pictures] == [0, 30]
    for clip in sequence.find_clips():
        assert (folder / media_path(clip.media_reference.target_url)).is_file()
    assert default_storage.exists(job.latest_success.results["narration"])


def test_another_operator_cannot_download_the_timeline(operator, other_operator, tmp_path):
    job = recorded_job(operator, tmp_path)
    response = client_for(other_operator).get(timeline_url(job, "otio"))
    assert response.status_code == 404


def test_no_render_and_unknown_format_come_back_to_the_job_page_saying_why(operator, tmp_path):
    client = client_for(operator)
    never = make_job(owner=operator)
    response = client.get(timeline_url(never, "otio"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:jobs_job_change", args=[never.pk])
    assert NO_RENDER in response.content.decode()
    job = recorded_job(operator, tmp_path)
    response = client.get(timeline_url(job, "avid"), follow=True)
    assert "Unknown timeline format &#x27;avid&#x27;; choose one of: otio, fcpxml, fcp7xml, jianying." in (
        response.content.decode()
    )
