"""Edits keep everything else: after each kind of storyboard or script edit and a re-render, every
segment the edit did not touch still shows the operator's choice (upload, clip, prompt), on its row
and in the rendered frames.

The job: four sentences grouped (SEGMENT_TARGET_MS 3500, speed 1.2) into three segments
[s1] [s2] [s3 s4]. Each segment shows an uploaded solid-colour picture; the second shows a solid
yellow clip instead. A frame from the middle of each segment is compared with the colour it shows.
"""

import io
import itertools
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from jobs import services, storyboard
from jobs.models import ExecutionStatus, Job, JobExecution, JobSplit
from jobs.render import loop as renders
from tests.conftest import built_for_the_module, drop_module_rows, use_module_files
from tests.factories import make_preset_job, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SENTENCES = ["今天天气很好。", "我们去公园散步吧。", "公园里有很多花。", "我们都很开心。"]
COLOURS = [(220, 40, 40), (40, 190, 60), (40, 70, 220)]
CLIP_COLOUR = (230, 210, 30)
TOLERANCE = 30  # per channel, after H.264 and yuv420p


@dataclass(frozen=True)
class Choice:
    """What the operator chose for one segment, and the colour it shows."""

    upload: str
    clip_id: int | None
    prompt: str
    colour: tuple[int, int, int]


@dataclass
class Storyboard:
    job: Job
    client: APIClient
    choices: list[Choice]  # one per original segment, in order


def render(job: Job) -> JobExecution:
    job.refresh_from_db()  # as a worker would load it, with the edits made through the API
    execution = renders.execution_run(execution=services.execution_create(job=job))
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    return execution


def png(colour: tuple[int, int, int]) -> SimpleUploadedFile:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (1360, 768), colour).save(buffer, format="PNG")
    return SimpleUploadedFile("picture.png", buffer.getvalue(), content_type="image/png")


def solid_clip(path: Path, colour: tuple[int, int, int]) -> Path:
    hex_colour = "0x{:02x}{:02x}{:02x}".format(*colour)
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"color=c={hex_colour}:s=320x180:r=30:d=4",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


def centre_colour(video_key: str, at_ms: int) -> tuple[float, float, float]:
    """Mean colour of the middle quarter of the frame shown at `at_ms` (clear of subtitles and logo)."""
    result = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-ss",
            f"{at_ms / 1000:.3f}",
            "-i",
            default_storage.path(video_key),
            "-frames:v",
            "1",
            "-vf",
            "crop=iw/4:ih/4",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    pixels = np.frombuffer(result.stdout, dtype=np.uint8).reshape(-1, 3)
    return tuple(float(value) for value in pixels.mean(axis=0))


def shows(video_key: str, row: JobSplit, colour: tuple[int, int, int]) -> bool:
    seen = centre_colour(video_key, (row.start_ms + row.end_ms) // 2)
    return all(abs(a - b) <= TOLERANCE for a, b in zip(seen, colour))


def rows(job: Job) -> list[JobSplit]:
    return list(job.splits.order_by("index"))


def row_of(job: Job, choice: Choice) -> JobSplit | None:
    """The segment still showing this choice's upload, if any."""
    return next((row for row in rows(job) if row.selected == choice.upload), None)


def assert_choices_survive(made: Storyboard, execution: JobExecution, survivors: list[Choice]) -> None:
    job, video = made.job, execution.results["video"]
    for choice in survivors:
        row = row_of(job, choice)
        assert row is not None, f"the segment showing {choice.upload} lost its selection: {describe(job)}"
        assert choice.upload in [image["key"] for image in row.images]
        assert default_storage.exists(choice.upload)
        assert row.clip_id == choice.clip_id
        assert row.prompt == choice.prompt
        assert shows(video, row, choice.colour), (
            f"segment {row.index + 1} ({row.text}) should show {choice.colour}, shows "
            f"{centre_colour(video, (row.start_ms + row.end_ms) // 2)}"
        )


def assert_tiles_the_narration(job: Job, execution: JobExecution) -> None:
    """Times come from this render's narration, cut in the middle of each pause."""
    narration = execution.steps["narration"]["data"]
    sentences = narration["sentences"]
    segments = rows(job)
    assert segments[0].start_ms == 0 and segments[-1].end_ms == narration["duration_ms"]
    assert [s for row in segments for s in row.sentences] == [s["text"] for s in sentences]
    position = 0
    for left, right in itertools.pairwise(segments):
        position += len(left.sentences)
        assert left.end_ms == right.start_ms
        assert left.end_ms == (sentences[position - 1]["end_ms"] + sentences[position]["start_ms"]) // 2


def describe(job: Job) -> list[tuple[int, str, str, int | None]]:
    return [(row.index, row.text, row.selected, row.clip_id) for row in rows(job)]


@pytest.fixture(scope="module")
def first_render(django_db_setup, django_db_blocker, tmp_path_factory) -> tuple[int, Path]:
    """The job rendered once for the whole module: (its id, the folder of its files)."""
    folder = tmp_path_factory.mktemp("storyboard")
    with built_for_the_module(django_db_blocker, folder, SEGMENT_TARGET_MS=3500):
        job = make_preset_job(owner=make_user(), content="".join(SENTENCES), speech_speed=1.2)
        render(job)
    yield job.pk, folder
    drop_module_rows(django_db_blocker)


@pytest.fixture
def made(first_render, settings, tmp_path) -> Storyboard:
    settings.SEGMENT_TARGET_MS = 3500
    settings.API_THROTTLE_USER = None
    job_id, folder = first_render
    use_module_files(folder, settings)
    job = Job.objects.get(pk=job_id)
    owner = job.owner
    segments = rows(job)
    assert [row.text for row in segments] == [SENTENCES[0], SENTENCES[1], SENTENCES[2] + SENTENCES[3]]
    clip = services.clip_import(
        path=solid_clip(tmp_path / "yellow.mp4", CLIP_COLOUR), owner=owner, team=owner.personal_team
    )
    choices = []
    for row, colour in zip(segments, COLOURS):
        storyboard.split_add_image(split_row=row, uploaded=png(colour))
        clip_id = None
        if row.index == 1:
            storyboard.split_use_clip(split_row=row, clip=clip, user=owner)
            clip_id = clip.pk
        storyboard.split_update(split_row=row, prompt=f"{row.prompt}, in {colour}")  # the operator's own
        choices.append(
            Choice(
                upload=row.selected,
                clip_id=clip_id,
                prompt=row.prompt,
                colour=CLIP_COLOUR if clip_id else colour,
            )
        )
    client = APIClient()
    client.force_authenticate(owner)
    return Storyboard(job=job, client=client, choices=choices)


def patch_job(made: Storyboard, **fields) -> None:
    response = made.client.patch(f"/api/v1/jobs/{made.job.pk}/", fields, format="json")
    assert response.status_code == 200, response.data
    made.job.refresh_from_db()


# ---------------------------------------------------------------- text


def test_a_typo_fix_in_the_job_content_keeps_every_segment_and_its_choices(made):
    patch_job(made, content=SENTENCES[0] + SENTENCES[1] + "公园里有很多鲜花。" + SENTENCES[3])

    execution = render(made.job)

    assert_choices_survive(made, execution, made.choices)
    assert [row.text for row in rows(made.job)][2] == "公园里有很多鲜花。我们都很开心。"
    assert_tiles_the_narration(made.job, execution)


def test_a_typo_fix_through_the_segment_keeps_every_segment_and_its_choices(made):
    response = made.client.patch(
        f"/api/v1/jobs/{made.job.pk}/splits/0/", {"text": "今天天气真好。"}, format="json"
    )
    assert response.status_code == 200, response.data

    execution = render(made.job)

    assert_choices_survive(made, execution, made.choices)
    assert rows(made.job)[0].text == "今天天气真好。"


def test_an_edited_prompt_and_clip_survive_a_typo_fix_in_their_own_segment(made):
    response = made.client.patch(
        f"/api/v1/jobs/{made.job.pk}/splits/1/", {"prompt": "a yellow field"}, format="json"
    )
    assert response.status_code == 200, response.data
    patch_job(made, content=SENTENCES[0] + "我们去公园走走吧。" + SENTENCES[2] + SENTENCES[3])

    execution = render(made.job)

    edited = made.choices[1]
    assert_choices_survive(
        made,
        execution,
        [
            made.choices[0],
            Choice(edited.upload, edited.clip_id, "a yellow field", edited.colour),
            made.choices[2],
        ],
    )


def test_a_prompt_never_edited_follows_a_typo_fix_in_the_job_content(made):
    JobSplit.objects.filter(job=made.job, index=2).update(prompt_edited=False, prompt="old words")
    patch_job(made, content=SENTENCES[0] + SENTENCES[1] + "公园里有很多鲜花。" + SENTENCES[3])

    render(made.job)

    prompts = [row.prompt for row in rows(made.job)]
    assert prompts[:2] == [made.choices[0].prompt, made.choices[1].prompt]  # the operator's: kept
    assert "old words" not in prompts[2] and prompts[2].endswith("公园里有很多鲜花。我们都很开心。")


# ---------------------------------------------------------------- prompt and speed


def test_a_prompt_edit_keeps_every_other_segment(made):
    response = made.client.patch(
        f"/api/v1/jobs/{made.job.pk}/splits/0/", {"prompt": "a red sky"}, format="json"
    )
    assert response.status_code == 200, response.data

    execution = render(made.job)

    first = made.choices[0]
    assert_choices_survive(
        made, execution, [Choice(first.upload, None, "a red sky", first.colour), *made.choices[1:]]
    )


def test_a_faster_voice_keeps_the_segments_and_only_moves_their_times(made):
    render(made.job)  # the choices rendered once: what the pictures step reuses
    before = [(row.start_ms, row.end_ms) for row in rows(made.job)]
    patch_job(made, speech_speed=1.8)

    execution = render(made.job)

    assert_choices_survive(made, execution, made.choices)
    assert len(rows(made.job)) == 3
    assert [(row.start_ms, row.end_ms) for row in rows(made.job)] != before
    assert_tiles_the_narration(made.job, execution)
    # The pictures did not change: that step is reused, composition redone.
    assert execution.steps["pictures"]["status"] == "reused"
    assert execution.steps["compose"]["status"] == "done"


# ---------------------------------------------------------------- split and merge


def test_splitting_a_segment_keeps_its_choices_on_the_first_part_and_every_other_segment(made):
    response = made.client.post(f"/api/v1/jobs/{made.job.pk}/splits/2/split/", {"at": 1}, format="json")
    assert response.status_code == 200, response.data
    assert [row["text"] for row in response.data] == SENTENCES

    execution = render(made.job)

    assert_choices_survive(made, execution, made.choices)
    first_part, new_part = rows(made.job)[2:]
    assert first_part.sentences == [SENTENCES[2]] and new_part.sentences == [SENTENCES[3]]
    assert new_part.clip_id is None
    # The new part starts with the original's candidates to pick from, and shows its own card.
    assert made.choices[2].upload in [image["key"] for image in new_part.images]
    assert [image["source"] for image in new_part.images if image["key"] == new_part.selected] == ["card"]
    assert_tiles_the_narration(made.job, execution)


def test_merging_two_segments_keeps_the_first_ones_choice_and_every_other_segment(made):
    response = made.client.post(f"/api/v1/jobs/{made.job.pk}/splits/0/merge/", format="json")
    assert response.status_code == 200, response.data
    assert [row["text"] for row in response.data] == [
        SENTENCES[0] + SENTENCES[1],
        SENTENCES[2] + SENTENCES[3],
    ]

    execution = render(made.job)

    assert_choices_survive(made, execution, [made.choices[0], made.choices[2]])
    merged = rows(made.job)[0]
    # The second one's picture stays a candidate of the merged segment.
    assert made.choices[1].upload in [image["key"] for image in merged.images]
    assert_tiles_the_narration(made.job, execution)


# ---------------------------------------------------------------- sentences added and removed


def test_a_sentence_added_inside_a_segment_joins_it_and_every_segment_keeps_its_choices(made):
    patch_job(made, content=SENTENCES[0] + SENTENCES[1] + SENTENCES[2] + "花很香。" + SENTENCES[3])

    execution = render(made.job)

    assert_choices_survive(made, execution, made.choices)
    assert rows(made.job)[2].sentences == [SENTENCES[2], "花很香。", SENTENCES[3]]
    assert_tiles_the_narration(made.job, execution)


def test_a_sentence_added_between_segments_becomes_a_new_segment_and_every_segment_keeps_its_choices(made):
    patch_job(made, content=SENTENCES[0] + "下午没有风。" + SENTENCES[1] + SENTENCES[2] + SENTENCES[3])

    execution = render(made.job)

    assert_choices_survive(made, execution, made.choices)
    assert [row.sentences for row in rows(made.job)] == [
        [SENTENCES[0]],
        ["下午没有风。"],
        [SENTENCES[1]],
        [SENTENCES[2], SENTENCES[3]],
    ]
    assert_tiles_the_narration(made.job, execution)


def test_a_sentence_removed_from_a_segment_keeps_every_segment_and_its_choices(made):
    patch_job(made, content=SENTENCES[0] + SENTENCES[1] + SENTENCES[2])

    execution = render(made.job)

    assert_choices_survive(made, execution, made.choices)
    assert rows(made.job)[2].sentences == [SENTENCES[2]]
    assert_tiles_the_narration(made.job, execution)


def test_a_segment_whose_sentences_are_all_removed_goes_and_the_others_keep_their_choices(made):
    patch_job(made, content=SENTENCES[0] + SENTENCES[2] + SENTENCES[3])

    execution = render(made.job)

    assert_choices_survive(made, execution, [made.choices[0], made.choices[2]])
    assert len(rows(made.job)) == 2
    # Its upload is no longer referenced, so the storage clean-up may take it; this render deletes nothing.
    assert row_of(made.job, made.choices[1]) is None and default_storage.exists(made.choices[1].upload)
