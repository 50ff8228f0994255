"""A segment's preview, made from the render's own chunks: the service, the API and the admin."""

import json
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from rest_framework.test import APIClient

from accounts.brand import Brand
from jobs import services
from jobs.models import ExecutionStatus
from jobs.render import loop as renders
from jobs.render import previews, steps
from media_engine import ffmpeg
from tests.admin.conftest import make_operator
from tests.factories import make_preset_job, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

TEXT = "今天天气很好。我们去公园散步吧。晚上早点睡觉。"


@pytest.fixture
def rendered(settings):
    settings.SEGMENT_TARGET_MS = 1500
    job = make_preset_job(content=TEXT, owner=make_user())
    execution = renders.execution_run(execution=services.execution_create(job=job))
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    assert job.splits.count() == 3
    return job, execution


def frame_md5s(path: Path) -> list[str]:
    out = path.with_suffix(".framemd5")
    ffmpeg.run(["-i", str(path), "-map", "0:v", "-f", "framemd5", str(out)])
    return [
        line.rsplit(",", 1)[-1].strip() for line in out.read_text().splitlines() if not line.startswith("#")
    ]


def is_mp4(response) -> bool:
    """A served file that is an MP4 (its first box is `ftyp`)."""
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code == 200 and body[4:8] == b"ftyp"


def test_a_preview_shows_the_segments_frames_of_the_render_with_its_narration(rendered, settings, tmp_path):
    job, execution = rendered
    middle = job.splits.get(index=1)
    key = previews.split_preview(split_row=middle)
    preview_path = Path(default_storage.path(key))
    video_path = Path(default_storage.path(execution.results["video"]))
    # Its frames: from the fade into it to the end of the fade out of it, exactly the render's.
    fps, fade = settings.VIDEO_FPS, round(0.5 * settings.VIDEO_FPS)
    first = round(middle.start_ms * fps / 1000) - fade // 2
    end = round(middle.end_ms * fps / 1000) + fade - fade // 2
    assert frame_md5s(preview_path) == frame_md5s(video_path)[first:end]
    streams = {s["codec_type"]: s for s in ffmpeg.probe(preview_path)["streams"]}
    assert abs(float(streams["audio"]["duration"]) - (end - first) / fps) < 1 / fps
    # Asked again, the same preview is found, not made again; a segment keeps only its newest one.
    assert previews.split_preview(split_row=middle) == key
    assert default_storage.listdir(previews.preview_folder(job.pk).rstrip("/"))[1] == [key.rsplit("/", 1)[-1]]


def test_preview_api_answers_a_link_and_refuses_before_the_first_render(rendered):
    job, _ = rendered
    client = APIClient()
    client.force_authenticate(job.owner)
    response = client.post(f"/api/v1/jobs/{job.pk}/splits/0/preview/")
    assert response.status_code == 200, response.content
    assert is_mp4(client.get(response.json()["url"]))

    fresh = make_preset_job(content=TEXT, owner=job.owner)
    fresh.splits.create(index=0, start_ms=0, end_ms=1000, text=TEXT)
    response = client.post(f"/api/v1/jobs/{fresh.pk}/splits/0/preview/")
    assert response.status_code == 400
    assert "no picture yet" in json.dumps(response.json())


def test_the_admin_storyboard_offers_a_preview_and_answers_its_link(rendered):
    job, _ = rendered
    operator = make_operator()
    job.owner, job.team = operator, operator.personal_team
    job.save(update_fields=["owner", "team"])
    client = Client()
    client.force_login(operator)
    page = client.get(f"/admin/jobs/job/{job.pk}/storyboard/")
    assert page.status_code == 200
    assert page.content.decode().count('class="button split-preview"') == 3
    split_row = job.splits.get(index=2)
    response = client.post(
        f"/admin/jobs/job/{job.pk}/storyboard/preview/",
        json.dumps({"split": split_row.pk}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert is_mp4(client.get(response.json()["url"]))
    response = client.post(
        f"/admin/jobs/job/{job.pk}/storyboard/preview/",
        json.dumps({"split": 0}),
        content_type="application/json",
    )
    assert response.status_code == 400 and "Expected" in response.json()["error"]


def test_a_preview_of_a_segment_cut_at_its_subtitle_joins_shows_the_renders_frames(settings):
    """With transitions at subtitle joins a still is reframed where its second sentence starts: the
    preview of that segment is made of the same pieces (both framings and the blend between them)
    and shows exactly the render's frames for it."""
    settings.SEGMENT_TARGET_MS = 8000
    job = make_preset_job(
        owner=make_user(),
        content="今天天气很好，阳光明媚。我们去公园散步吧，走一走。"
        "晚上早点回家，好好睡觉。明天还要早起上班呢，不能迟到。",
    )
    job.account.extra = {
        **job.account.extra,
        "enable_srt_concat_transition": True,
        "srt_concat_transition_types": ["dissolve"],
    }
    job.account.save()
    execution = renders.execution_run(execution=services.execution_create(job=job))
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    starts = [sentence["start_ms"] for sentence in execution.steps["narration"]["data"]["sentences"]]
    _visuals, joins, split_of = steps.compose_visuals(job, Brand.of(job.account), starts)
    cuts = [split_of[number + 1] for number, join in enumerate(joins) if join == "cue"]
    assert cuts, joins  # some segment's still is cut at a subtitle join
    segment = job.splits.get(index=cuts[0])

    preview = frame_md5s(Path(default_storage.path(previews.split_preview(split_row=segment))))
    video = frame_md5s(Path(default_storage.path(execution.results["video"])))
    runs = [
        first
        for first in range(len(video) - len(preview) + 1)
        if video[first : first + len(preview)] == preview
    ]
    assert runs, "the preview's frames are not a run of the render's"
    at = runs[0]
    fps = settings.VIDEO_FPS
    assert at <= round(segment.start_ms * fps / 1000) and at + len(preview) >= round(
        segment.end_ms * fps / 1000
    )
    assert len(set(preview)) > 1  # moving pictures, not one frame repeated
