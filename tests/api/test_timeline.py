"""GET /api/v1/jobs/{id}/timeline/: a real render's storyboard as a zip an editing app opens, read back with
each format's own library."""

import json
import subprocess
import zipfile
from pathlib import Path

import opentimelineio as otio
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs import services, storyboard
from jobs.exports.timeline import FILE_GONE, FORMATS, NO_RENDER, NOT_RECORDED
from jobs.files import music_folder
from jobs.models import ExecutionStatus, Job
from jobs.render import loop as renders
from media_engine import timeline
from tests.factories import make_execution, make_job, make_preset_job
from tests.media_engine.test_timeline import media_path

pytestmark = pytest.mark.django_db
JOBS = "/api/v1/jobs/"
FPS = 30


def make(path: Path, *args: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args, str(path)], check=True, timeout=60
    )
    return path


@pytest.fixture
def rendered(settings, member, tmp_path) -> tuple[Job, list[tuple[int, int, bool]]]:
    """A member's job rendered for real (espeak-ng, ffmpeg) with a clip shorter than its segment and stored
    music shorter than the narration; and its segments as rendered: (start_ms, end_ms, shows a clip)."""
    settings.SEGMENT_TARGET_MS = 1500
    services.clip_import(
        path=make(
            tmp_path / "sea.mp4",
            "-f",
            "lavfi",
            "-i",
            "testsrc=s=320x180:r=30",
            "-t",
            "0.4",
            "-pix_fmt",
            "yuv420p",
        ),
        tags="nature",
    )
    tone = make(tmp_path / "tone.wav", "-f", "lavfi", "-i", "sine=f=220:d=1")
    music = default_storage.save(f"{music_folder(member)}/tone.wav", ContentFile(tone.read_bytes()))
    job = make_preset_job(
        owner=member,
        content="今天天气很好。我们去公园散步吧。",
        title="公园 散步",
        extra={"real_clip_ratio": 0.5, "music": music},
    )
    execution = renders.execution_run(execution=services.execution_create(job=job))
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    shots = [(row.start_ms, row.end_ms, row.clip_id is not None) for row in job.splits.order_by("index")]
    assert len(shots) >= 2 and any(clip for *_, clip in shots), shots
    return job, shots


def extract(response, folder: Path) -> Path:
    """The zip's one top folder, extracted."""
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith("attachment")
    folder.mkdir(parents=True)
    archive = folder / "export.zip"
    archive.write_bytes(b"".join(response.streaming_content))
    with zipfile.ZipFile(archive) as bundle:
        tops = {name.split("/", 1)[0] for name in bundle.namelist()}
        assert len(tops) == 1
        bundle.extractall(folder / "out")
    return folder / "out" / tops.pop()


def runs(cuts: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Pieces of one medium laid end to end (a looped clip) as one segment."""
    merged: list[list] = []
    for start, end, media in cuts:
        if merged and merged[-1][2] == media and media.endswith(".mp4") and merged[-1][1] == start:
            merged[-1][1] = end
        else:
            merged.append([start, end, media])
    return [tuple(run) for run in merged]


def assert_cut_as_rendered(cuts: list[tuple[float, float, str]], shots: list[tuple[int, int, bool]]) -> None:
    segments = runs(cuts)
    assert len(segments) == len(shots), (segments, shots)
    for (start, end, media), (start_ms, end_ms, is_clip) in zip(segments, shots):
        assert abs(start - start_ms * FPS / 1000) <= 1 and abs(end - end_ms * FPS / 1000) <= 1
        assert media.endswith(".mp4") == is_clip


@pytest.mark.slow
def test_every_format_reads_back_as_the_render_cut_it_with_all_its_files(rendered, api, tmp_path):
    job, shots = rendered
    execution = job.latest_success
    # The storyboard changes after the render: the timeline stays the render's.
    storyboard.split_merge_next(split_row=job.splits.order_by("index").first())
    narration = Path(default_storage.path(execution.results["narration"])).read_bytes()
    for fmt in FORMATS:
        folder = extract(api.get(f"{JOBS}{job.pk}/timeline/?format={fmt}"), tmp_path / fmt)
        assert folder.name == f"{job.pk}-公园 散步"
        assert (folder / "README.txt").is_file()
        if fmt == "jianying":
            referenced = check_jianying(folder, shots)
        else:
            referenced = check_otio(folder, fmt, shots)
        for relative in referenced:
            path = folder / relative
            assert path.is_file() and path.resolve().is_relative_to(folder.resolve()), relative
        names = {Path(relative).name for relative in referenced}
        assert {"narration.wav", "music.wav"} <= names
        assert any(name.endswith(".png") for name in names) and any(name.endswith(".mp4") for name in names)
        media = "materials" if fmt == "jianying" else "media"
        assert (folder / media / "narration.wav").read_bytes() == narration
        srt = (folder / media / "subtitles.srt").read_text(encoding="utf-8")
        assert srt == Path(default_storage.path(execution.results["srt"])).read_text(encoding="utf-8")


def check_otio(folder: Path, fmt: str, shots) -> set[str]:
    read = otio.adapters.read_from_file(str(folder / timeline.TIMELINE_FILES[fmt]))
    if isinstance(read, otio.schema.SerializableCollection):
        [read] = list(read)
    [video] = [track for track in read.tracks if track.kind == otio.schema.TrackKind.Video]
    cuts = [
        (
            clip.range_in_parent().start_time.to_frames(FPS),
            clip.range_in_parent().end_time_exclusive().to_frames(FPS),
            media_path(clip.media_reference.target_url),
        )
        for clip in video.find_clips()
    ]
    assert_cut_as_rendered(cuts, shots)
    return {media_path(clip.media_reference.target_url) for clip in read.find_clips()}


def check_jianying(folder: Path, shots) -> set[str]:
    content = json.loads((folder / "draft_content.json").read_text(encoding="utf-8"))
    assert (
        json.loads((folder / "draft_meta_info.json").read_text(encoding="utf-8"))["draft_name"] == folder.name
    )
    materials = {entry["id"]: entry for kind in ("videos", "audios") for entry in content["materials"][kind]}
    [video] = [track for track in content["tracks"] if track["type"] == "video"]
    cuts = [
        (
            span["start"] * FPS / 1e6,
            (span["start"] + span["duration"]) * FPS / 1e6,
            materials[segment["material_id"]]["path"],
        )
        for segment in video["segments"]
        for span in [segment["target_timerange"]]
    ]
    assert_cut_as_rendered(cuts, shots)
    assert any(track["type"] == "text" and track["segments"] for track in content["tracks"])
    referenced = set()
    for entry in materials.values():
        placeholder, relative = entry["path"].split("/", 1)
        assert placeholder == timeline.JIANYING_DRAFT_PLACEHOLDER
        referenced.add(relative)
    return referenced


def test_unknown_format_is_refused_naming_the_formats(api, member):
    job = make_job(owner=member)
    response = api.get(f"{JOBS}{job.pk}/timeline/?format=avid")
    assert response.status_code == 400
    assert response.json() == {
        "format": ["Unknown timeline format 'avid'; choose one of: otio, fcpxml, fcp7xml, jianying."]
    }


def test_a_job_without_a_successful_render_has_no_timeline(api, member):
    job = make_job(owner=member)
    make_execution(job, status=ExecutionStatus.FAILED)
    response = api.get(f"{JOBS}{job.pk}/timeline/?format=otio")
    assert response.status_code == 409
    assert response.json() == {"detail": NO_RENDER}


def test_a_render_from_before_timelines_were_recorded_says_to_render_again(api, member):
    job = make_job(owner=member)
    execution = make_execution(
        job,
        status=ExecutionStatus.SUCCESS,
        results={"narration": "jobs/1/2/narration.wav"},
        steps={"compose": {"status": "done", "data": {}}},
    )
    response = api.get(f"{JOBS}{job.pk}/timeline/")
    assert response.status_code == 409
    assert response.json() == {"detail": NOT_RECORDED.format(execution=execution.pk)}


def test_a_file_the_render_used_that_is_gone_is_named(api, member):
    job = make_job(owner=member)
    narration = default_storage.save("jobs/x/narration.wav", ContentFile(b"RIFF"))
    record = {
        "width": 1360,
        "height": 768,
        "fps": FPS,
        "music": "",
        "music_stored": False,
        "music_volume": 0.15,
        "shots": [
            {
                "key": "jobs/x/pictures/000-gone.png",
                "kind": "still",
                "start_ms": 0,
                "end_ms": 900,
                "text": "a",
            }
        ],
    }
    execution = make_execution(
        job,
        status=ExecutionStatus.SUCCESS,
        results={"narration": narration},
        steps={"compose": {"status": "done", "data": {"timeline": record}}},
    )
    response = api.get(f"{JOBS}{job.pk}/timeline/?format=jianying")
    assert response.status_code == 409
    assert response.json() == {
        "detail": FILE_GONE.format(execution=execution.pk, key="jobs/x/pictures/000-gone.png")
    }


def test_someone_elses_timeline_is_not_found(stranger_api, member):
    job = make_job(owner=member)
    make_execution(job, status=ExecutionStatus.SUCCESS)
    for fmt in FORMATS:
        response = stranger_api.get(f"{JOBS}{job.pk}/timeline/?format={fmt}")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")


@pytest.mark.slow
def test_a_render_from_before_timelines_were_recorded_is_composed_again_and_then_exports(
    settings, api, member, monkeypatch, tmp_path
):
    """The compose step of a render made before it recorded the timeline (its inputs without `records`, its
    data without the timeline) is not reused by the next render, which records it."""
    from jobs.render import steps

    settings.SEGMENT_TARGET_MS = 1500
    current = steps.STEPS["compose"]

    def inputs_before(context):
        inputs = current.inputs(context)
        del inputs["records"]
        return inputs

    def run_before(context, inputs):
        outputs, data = current.run(context, inputs)
        del data["timeline"]
        return outputs, data

    job = make_preset_job(owner=member, content="今天天气很好。")
    with monkeypatch.context() as patched:
        patched.setitem(steps.STEPS, "compose", steps.Step(current.weight, inputs_before, run_before))
        old = renders.execution_run(execution=services.execution_create(job=job))
    assert old.status == ExecutionStatus.SUCCESS, old.detail
    assert api.get(f"{JOBS}{job.pk}/timeline/").json() == {"detail": NOT_RECORDED.format(execution=old.pk)}

    new = renders.execution_run(execution=services.execution_create(job=job))
    assert new.status == ExecutionStatus.SUCCESS, new.detail
    assert new.steps["narration"]["status"] == "reused" and new.steps["compose"]["status"] == "done"
    assert (extract(api.get(f"{JOBS}{job.pk}/timeline/"), tmp_path / "new") / "timeline.otio").is_file()
