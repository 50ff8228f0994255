"""What a job renders, end to end with espeak-ng and ffmpeg on small frames: h2v, several renditions from
one storyboard, the plain (logo-free) videos, the job's text lines, the presenter's default placement and
transitions at subtitle joins, checked with ffprobe and decoded frames."""

import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from accounts.brand import Brand
from accounts.storage import signed_key
from jobs import services
from jobs.models import FRAME_SIZES, ExecutionStatus, Orientation
from jobs.render import loop, steps
from media_engine import ffmpeg, subtitles
from media_engine.compose import extract_frame
from tests.admin.conftest import client_for as admin_client_for
from tests.admin.conftest import make_operator
from tests.api.conftest import client_for as api_client_for
from tests.factories import make_preset_job

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

W, H = 320, 176


@pytest.fixture(autouse=True)
def small_frames(monkeypatch, settings):
    monkeypatch.setitem(FRAME_SIZES, Orientation.HORIZONTAL, (W, H))
    monkeypatch.setitem(FRAME_SIZES, Orientation.VERTICAL, (H, W))
    settings.SEGMENT_TARGET_MS = 60000  # one segment


def run(job):
    execution = loop.execution_run(execution=services.execution_create(job=job))
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    return execution


def stored(key: str) -> Path:
    return Path(default_storage.path(key))


def size_of(key: str) -> tuple[int, int]:
    video = next(s for s in ffmpeg.probe(stored(key))["streams"] if s["codec_type"] == "video")
    return video["width"], video["height"]


def frame(key: str, at_s: float, tmp_path: Path) -> np.ndarray:
    path = extract_frame(stored(key), at_s, tmp_path / f"{key.replace('/', '-')}-{at_s}.png")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def key_green(area: np.ndarray) -> float:
    """Share of the area in the presenter clip's pure green background."""
    return float(((area[..., 0] < 80) & (area[..., 1] > 200) & (area[..., 2] < 80)).mean())


def detail(area: np.ndarray) -> float:
    return float(np.abs(np.diff(area, axis=1)).mean())


def give_logo(job, tmp_path: Path) -> None:
    """A magenta logo, easy to find in a frame."""
    path = tmp_path / "logo.png"
    Image.new("RGBA", (64, 32), (255, 0, 255, 255)).save(path)
    job.account.logo.save(f"logo-{job.pk}.png", ContentFile(path.read_bytes()), save=True)


@pytest.mark.parametrize("orientation", [Orientation.HORIZONTAL, Orientation.VERTICAL])
def test_h2v_shows_horizontal_pictures_in_a_vertical_frame(orientation, tmp_path):
    job = make_preset_job(title="横转竖", orientation=orientation, extra={"h2v": True})
    execution = run(job)
    assert size_of(execution.results["video"]) == (H, W)  # vertical, whatever the orientation
    [split] = job.splits.all()
    with Image.open(stored(split.selected)) as picture:
        assert picture.size == (W, H)  # the pictures are made horizontal
    picture = frame(execution.results["video"], 0.5, tmp_path)
    # The 16:9 picture (176x99) sits in the middle third; above it a blurred fill, not a crop.
    fill, middle = picture[10:100], picture[125:195]
    assert fill.mean() > 20 and detail(fill) < detail(middle)
    with Image.open(stored(execution.results["cover"])) as cover:
        assert cover.size == (H, W)


def test_renditions_and_plain_videos_are_stored_linked_and_downloadable(tmp_path):
    operator = make_operator()
    job = make_preset_job(title="两种画幅", owner=operator)
    job.account.extra = {
        **job.account.extra,
        "renditions": ["16:9", "9:16"],
        "keep_plain_video": True,
        "logo_corner": "top-left",
    }
    job.account.save()
    give_logo(job, tmp_path)
    execution = run(job)
    results = execution.results
    # The job's own frame stays `video`; 16:9 is that frame, so only 9:16 is added.
    assert size_of(results["video"]) == (W, H) and size_of(results["video_plain"]) == (W, H)
    assert size_of(results["video_9x16"]) == (H, W) and size_of(results["video_plain_9x16"]) == (H, W)
    assert "ass_9x16" in results and f"PlayResX: {H}" in stored(results["ass_9x16"]).read_text()
    narration_s = ffmpeg.duration(stored(results["narration"]))
    for name in ("video", "video_plain", "video_9x16", "video_plain_9x16"):
        assert abs(ffmpeg.duration(stored(results[name])) - narration_s) <= 0.1, name

    # The branded videos carry the logo (magenta) in the top-left corner; the plain ones do not.
    for branded, plain, width, height in (
        ("video", "video_plain", W, H),
        ("video_9x16", "video_plain_9x16", H, W),
    ):
        x, y, w, h = steps._subtitle_layout(job, Brand.of(job.account), width, height)[1]
        logo_area, plain_area = (
            frame(results[name], 1.0, tmp_path)[y : y + h, x : x + w] for name in (branded, plain)
        )
        red, green, blue = logo_area[h // 2, w // 2]
        assert red > 180 and blue > 180 and green < 90
        assert np.abs(logo_area - plain_area).mean() > 40
    # The vertical rendition shows the same horizontal picture over a blurred fill.
    vertical = frame(results["video_9x16"], 1.0, tmp_path)
    assert detail(vertical[10:60]) < detail(vertical[130:190])

    # Linked in the API's execution representation and on the admin job page, and downloadable.
    api = api_client_for(operator)
    urls = api.get(f"/api/v1/executions/{execution.pk}/").data["urls"]
    assert {"video", "video_9x16", "video_plain", "video_plain_9x16", "cover"} <= set(urls)
    download = api.get(urls["video_9x16"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == stored(results["video_9x16"]).read_bytes()
    page = admin_client_for(operator).get(reverse("admin:jobs_job_change", args=[job.pk]))
    html = page.content.decode()
    for name in ("video_9x16", "video_plain", "video_plain_9x16"):
        # The same file as the API's link (the admin's own link expires sooner: a token of its own).
        [href] = re.findall(rf'href="([^"]*)" download>{name}</a>', html.replace("&amp;", "&"))
        assert signed_key(href.rsplit("/", 1)[-1]) == signed_key(urls[name].rsplit("/", 1)[-1])


def test_the_jobs_text_lines_are_drawn_for_the_whole_video(tmp_path):
    job = make_preset_job(title="有字")
    plain = run(job)  # the same job (the same pictures and motion) without and with its texts
    job.extra = {"index_text": "第12集", "title_text": "老照片里的童年", "desc_text": "每天一个健康小知识"}
    job.save()
    texts = run(job)
    for at_s in (0.2, ffmpeg.duration(stored(texts.results["video"])) - 0.2):
        with_texts, without = (
            frame(texts.results["video"], at_s, tmp_path),
            frame(plain.results["video"], at_s, tmp_path),
        )
        rows = np.flatnonzero(np.abs(with_texts - without).max(axis=(1, 2)) > 60)
        assert rows.min() < H * 0.2  # index and title at the top
        assert H * 0.6 < rows.max() < H * 0.9  # the description above the subtitles, at the bottom


@pytest.fixture
def presenter_server():
    """A presenter service answering a 4 s green clip with a red figure in the middle."""
    clip = Path(default_storage.path("presenter-fixture.mp4"))
    clip.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"color=c=0x00FF00:s={W}x{H}:r=30:d=8,drawbox=x=130:y=40:w=60:h=100:color=red:t=fill",
            "-pix_fmt",
            "yuv420p",
            "-crf",
            "10",
            str(clip),
        ],
        check=True,
    )

    class Presenter(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            self.rfile.read(int(self.headers["Content-Length"]))
            body = clip.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Presenter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/presenter"
    server.shutdown()
    server.server_close()


def test_the_presenter_by_default_stands_full_screen_keyed_over_the_video(
    presenter_server, settings, tmp_path
):
    """The seed's defaults: fullscreen, the first and last 120 s (all of a short video), keyed on green."""
    settings.PRESENTER_URL = presenter_server
    job = make_preset_job(title="数字人", extra={"enable_digital_human": True})
    execution = run(job)
    for at_s in (0.3, 1.5):
        picture = frame(execution.results["video"], at_s, tmp_path)
        figure = picture[60:120, 140:180]
        assert figure[..., 0].mean() > 180 and figure[..., 1].mean() < 80  # the red figure, full size
        assert key_green(picture[:, :100]) < 0.05  # keyed: the video shows around the figure, not the green


def test_a_full_screen_presenter_stands_behind_the_subtitles_and_the_logo(
    presenter_server, settings, tmp_path
):
    """The presenter is a layer of the picture: the subtitles and the logo are drawn over it, as over the
    pictures (an opaque one, unkeyed, hid them both when it was laid over the finished video)."""
    settings.PRESENTER_URL = presenter_server
    job = make_preset_job(title="数字人", extra={"enable_digital_human": True})
    job.account.extra = {
        **job.account.extra,
        "subtitle_background": "#0000FF",
        "human_config": {"chroma_key": None},
    }
    job.account.save()
    give_logo(job, tmp_path)
    execution = run(job)
    picture = frame(execution.results["video"], 1.0, tmp_path)
    style, logo_box = steps._subtitle_layout(job, Brand.of(job.account), W, H)
    # The presenter fills the frame (its green background, its red figure) ...
    assert key_green(picture[: H // 2, : W // 3]) > 0.9
    figure = picture[60:100, 140:180]
    assert figure[..., 0].mean() > 180 and figure[..., 1].mean() < 80
    # ... and the logo (magenta) and the subtitles (on a blue box, with white text) are on top of it.
    x, y, w, h = logo_box
    red, green, blue = picture[y + h // 2, x + w // 2]
    assert red > 180 and blue > 180 and green < 90
    _, band_top, _, band_height = subtitles.subtitle_area(W, H, style, logo_box)
    band = picture[band_top : band_top + band_height]
    assert ((band[..., 2] > 200) & (band[..., 0] < 60) & (band[..., 1] < 60)).sum() > 500
    assert (band.min(axis=2) > 140).sum() > 20  # its white text (small: blended with the blue)


def test_pip_presenter_honours_corner_scale_and_times(presenter_server, settings, tmp_path):
    settings.PRESENTER_URL = presenter_server
    job = make_preset_job(title="画中画", extra={"enable_digital_human": True})
    job.account.extra = {
        **job.account.extra,
        "human_insertion_mode": "pip",
        "human_config": {"start_s": 1, "end_s": 0, "corner": "top-left", "scale": 0.5, "chroma_key": None},
    }
    job.account.save()
    execution = run(job)
    early, late = (
        frame(execution.results["video"], 0.5, tmp_path),
        frame(execution.results["video"], 1.8, tmp_path),
    )
    margin = round(W * 0.03)  # presenter.CORNER_MARGIN
    pip = early[margin : margin + H // 2, margin : margin + W // 2]  # 160x88 in the top-left corner
    assert key_green(pip) > 0.5  # not keyed: its green background shows
    assert key_green(early[H // 2 + 20 :, W // 2 + 20 :]) < 0.01  # nothing elsewhere
    assert key_green(late[margin : margin + H // 2, margin : margin + W // 2]) < 0.01  # gone after start_s


def test_transitions_at_subtitle_joins_reframe_a_still_between_its_sentences(settings):
    job = make_preset_job(title="转场", content="今天天气很好，阳光明媚。我们去公园散步吧，走一走。")
    job.account.extra = {
        **job.account.extra,
        "enable_srt_concat_transition": True,
        "srt_concat_transition_types": ["dissolve"],
    }
    job.account.save()
    execution = run(job)
    [split] = job.splits.all()
    sentences = execution.steps["narration"]["data"]["sentences"]
    starts = [sentence["start_ms"] for sentence in sentences]
    visuals, joins, _split_of = steps.compose_visuals(job, Brand.of(job.account), starts)
    # One segment, one picture, cut where the second sentence starts: two framings, one "cue" join.
    assert [visual.start_ms for visual in visuals] == [0, sentences[1]["start_ms"]]
    assert {visual.path for visual in visuals} == {steps.fetch(split.selected)} and joins == ["cue"]
    assert Brand.of(job.account).transitions(joins, seed=job.pk) == ("dissolve",)
    narration_s = ffmpeg.duration(stored(execution.results["narration"]))
    assert abs(ffmpeg.duration(stored(execution.results["video"])) - narration_s) <= 0.1
    # Switched off (the default), the still is not cut.
    job.account.extra = {}
    assert steps.compose_visuals(job, Brand.of(job.account), starts)[1] == []
