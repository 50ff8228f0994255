"""A job rendered for publishing: clause cues burned in (or not), SRT/WebVTT files, loudness, cover.

Real espeak-ng, libass and ffmpeg on the first sentence of a real health article.
"""

import re
import subprocess
from pathlib import Path

import numpy as np
import pysubs2
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from accounts.models import Account
from accounts.storage import signed_key
from jobs import services
from jobs.models import ExecutionStatus, Job, JobExecution
from jobs.render import loop as renders
from media_engine import cards, compose
from tests.admin.conftest import client_for as admin_client_for
from tests.admin.conftest import make_operator
from tests.api.conftest import client_for as api_client_for
from tests.conftest import built_for_the_module, drop_module_rows, use_module_files
from tests.factories import make_preset_job

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

DATA = Path(__file__).resolve().parents[1] / "data"
FIRST_SENTENCE = (DATA / "health_article_zh.txt").read_text(encoding="utf-8").splitlines()[0]
BOX = np.array([0xE0, 0x00, 0xE0])  # a subtitle box colour no picture card of the topic has


def new_job() -> Job:
    operator = make_operator()
    job = make_preset_job(
        content=FIRST_SENTENCE, publish_title="Warm water every morning: why it helps", owner=operator
    )
    Account.objects.filter(pk=job.account_id).update(extra={"subtitle_background": "#E000E0"})
    return Job.objects.get(pk=job.pk)


@pytest.fixture(scope="module")
def rendered_once(django_db_setup, django_db_blocker, tmp_path_factory):
    """A job rendered once for the tests that start from its first render: (the execution's id, the
    folder of its files)."""
    folder = tmp_path_factory.mktemp("captions")
    with built_for_the_module(django_db_blocker, folder, SEGMENT_TARGET_MS=4000):
        execution = render(new_job())
    yield execution.pk, folder
    drop_module_rows(django_db_blocker)


@pytest.fixture
def rendered(rendered_once, settings) -> JobExecution:
    settings.SEGMENT_TARGET_MS = 4000
    execution_id, folder = rendered_once
    use_module_files(folder, settings)
    return JobExecution.objects.select_related("job").get(pk=execution_id)


@pytest.fixture
def job(rendered) -> Job:
    """A job of its own, not yet rendered, beside the module's (whose files hold the presets' logo)."""
    return new_job()


def render(job: Job):
    execution = renders.execution_run(execution=services.execution_create(job=job))
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    return execution


def stored(key: str) -> Path:
    return Path(default_storage.path(key))


def frame_at(execution, at_ms: int, tmp_path: Path, name: str, video: str = "video") -> np.ndarray:
    path = compose.extract_frame(stored(execution.results[video]), at_ms / 1000, tmp_path / f"{name}.png")
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def box_mask(frame: np.ndarray) -> np.ndarray:
    return np.abs(frame - BOX).sum(axis=2) < 60


def text_line_count(frame: np.ndarray) -> int:
    """Runs of pixel rows holding white glyph pixels inside the subtitle boxes (each row looked at
    between its own leftmost and rightmost box pixel, so the picture beside a box never counts)."""
    box, white = box_mask(frame), frame.min(axis=2) > 200
    inked = []
    for y in np.flatnonzero(box.any(axis=1)):
        xs = np.flatnonzero(box[y])
        if white[y, xs.min() : xs.max() + 1].sum() >= 3:
            inked.append(y)
    return 1 + int((np.diff(inked) > 3).sum()) if inked else 0


def ebur128(path: Path) -> tuple[float, float]:
    result = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-i",
            str(path),
            "-map",
            "0:a",
            "-af",
            "ebur128=peak=true",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = result.stderr[result.stderr.rindex("Summary:") :]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"True peak:\s+Peak:\s+(-?[\d.]+) dBFS", summary).group(1))
    return integrated, peak


def test_burned_cues_show_at_most_two_lines_and_a_no_burn_render_has_no_subtitle_pixels(rendered, tmp_path):
    burned, job = rendered, rendered.job
    clauses = burned.steps["narration"]["data"]["clauses"]
    assert len(clauses) >= 2  # the article's first sentence is read in clauses ...
    assert all(clause["end_ms"] - clause["start_ms"] <= 7500 for clause in clauses)  # ... of at most ~7 s
    cues = pysubs2.load(str(stored(burned.results["srt"])))
    widest = max(cues, key=lambda cue: cue.text.count(r"\N"))
    assert widest.text.count(r"\N") == 1  # a two-line cue
    at_ms = (widest.start + widest.end) // 2
    burned_frame = frame_at(burned, at_ms, tmp_path, "burned")
    assert box_mask(burned_frame).sum() > 2000
    assert text_line_count(burned_frame) == 2

    job.extra = {"burn_subtitles": False}
    job.save()
    plain = render(job)
    # Only the composition ran again: the subtitle files are still made (and the same).
    assert plain.steps["subtitles"]["status"] == "reused" and plain.steps["compose"]["status"] == "done"
    assert "srt" in plain.results and "vtt" in plain.results
    plain_frame = frame_at(plain, at_ms, tmp_path, "plain")
    where_burned = box_mask(burned_frame)
    assert not box_mask(plain_frame).any()
    # Where the burned frame shows the subtitle box and text, the plain one shows the picture.
    assert np.abs(plain_frame[where_burned] - BOX).sum(axis=1).min() > 60


def test_render_is_loudness_normalized_and_links_srt_and_vtt_of_the_exact_cues(rendered, tmp_path):
    execution, job = rendered, rendered.job
    integrated, peak = ebur128(stored(execution.results["video"]))
    assert abs(integrated - (-14.0)) <= 1.0
    assert peak <= -1.0

    clauses = execution.steps["narration"]["data"]["clauses"]
    srt = pysubs2.load(str(stored(execution.results["srt"])))
    vtt = pysubs2.load(str(stored(execution.results["vtt"])))
    assert stored(execution.results["vtt"]).read_text(encoding="utf-8").startswith("WEBVTT")
    assert [(cue.start, cue.end, cue.plaintext) for cue in srt] == [
        (cue.start, cue.end, cue.plaintext) for cue in vtt
    ]
    # One cue per clause, at the clause audio's exact times, holding its text.
    assert [(cue.start, cue.end) for cue in srt] == [(c["start_ms"], c["end_ms"]) for c in clauses]
    assert [cue.plaintext.replace("\n", "") for cue in srt] == [c["text"] for c in clauses]
    assert all(cue.plaintext.count("\n") <= 1 for cue in srt)

    owner = job.owner
    api = api_client_for(owner).get(f"/api/v1/executions/{execution.pk}/")
    assert api.status_code == 200
    assert {"srt", "vtt", "video"} <= set(api.data["urls"])
    page = admin_client_for(owner).get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    for name in ("srt", "vtt"):
        # The same file (signed key) in both; the admin's link expires sooner, a token of its own.
        [href] = re.findall(rf'href="([^"]*)" download>{name}</a>', page)
        assert signed_key(href.rsplit("/", 1)[-1]) == signed_key(api.data["urls"][name].rsplit("/", 1)[-1])
        assert admin_client_for(owner).get(href.replace("&amp;", "&")).status_code == 200


def test_every_rendition_has_its_caption_files_and_loudness_and_follows_burn_subtitles(job, tmp_path):
    Account.objects.filter(pk=job.account_id).update(
        extra={"subtitle_background": "#E000E0", "renditions": ["16:9", "9:16"]}
    )
    burned = render(job)
    [suffix] = [name.removeprefix("video") for name in burned.results if name.startswith("video_")]
    own = pysubs2.load(str(stored(burned.results["srt"])))
    for name in ("srt", "vtt"):
        # The rendition's cues: the same clauses at the same times, wrapped for its own frame.
        other = pysubs2.load(str(stored(burned.results[name + suffix])))
        assert [(cue.start, cue.end, cue.plaintext.replace("\n", "")) for cue in other] == [
            (cue.start, cue.end, cue.plaintext.replace("\n", "")) for cue in own
        ]
    integrated, peak = ebur128(stored(burned.results["video" + suffix]))
    assert abs(integrated - (-14.0)) <= 1.0 and peak <= -1.0
    cue = own[len(own) // 2]
    at_ms = (cue.start + cue.end) // 2
    assert box_mask(frame_at(burned, at_ms, tmp_path, "burned", "video" + suffix)).sum() > 2000

    job.extra = {"burn_subtitles": False}
    job.save()
    plain = render(job)
    assert {"srt" + suffix, "vtt" + suffix} <= set(plain.results)
    assert not box_mask(frame_at(plain, at_ms, tmp_path, "plain", "video" + suffix)).any()


def test_cover_shows_only_its_title_over_the_first_picture_without_card_text(rendered, tmp_path):
    """The cover used to be a video frame: its title band lay over the card's own big phrase (and a subtitle)."""
    execution, job = rendered, rendered.job
    width, height = job.frame_size
    first = job.splits.order_by("index").first()
    background = cards.render_card(
        "",
        width=width,
        height=height,
        palette=job.topic.palette,
        out_path=tmp_path / "bg.png",
        seed=job.pk * 1000 + first.index,
    )
    card = np.asarray(Image.open(background).convert("RGB")).astype(int)
    cover = np.asarray(Image.open(stored(execution.results["cover"])).convert("RGB")).astype(int)
    layout = compose.cover_layout(job.publish_title, width=width, height=height)
    top, bottom = layout.band
    feather = (bottom - top) * 0.35 + 2
    outside = np.ones((height, width), dtype=bool)
    outside[max(0, int(top - feather)) : int(bottom + feather) + 1] = False
    assert np.abs(cover[outside] - card[outside]).max() < 24
