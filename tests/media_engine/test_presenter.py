"""The digital human: fetching its clip from a local fake service, and composing it into a video
(over the pictures, under the subtitles and logo) with real ffmpeg on tiny lavfi-made inputs."""

import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media_engine import compose, ffmpeg, fonts, presenter
from media_engine.chunks import ChunkStore
from media_engine.errors import MediaError

W, H = 320, 180


def lavfi(out: Path, video: str | None, audio: str | None = None, extra: tuple[str, ...] = ()) -> Path:
    args = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    if video:
        args += ["-f", "lavfi", "-i", video]
    if audio:
        args += ["-f", "lavfi", "-i", audio]
    args += [*extra, "-t", "2", "-pix_fmt", "yuv420p", str(out)] if video else [*extra, "-t", "2", str(out)]
    subprocess.run(args, check=True, timeout=60)
    return out


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("presenter")
    logo = folder / "logo.png"
    Image.new("RGBA", (64, 32), (255, 0, 255, 255)).save(logo)
    return {
        # the picture: a still test pattern, under narration audio
        "picture": still(folder / "picture.png"),
        "narration": lavfi(folder / "narration.wav", None, "sine=frequency=220:sample_rate=24000:d=2"),
        # the presenter: pure green background with a red "person" box in the middle
        "presenter": lavfi(
            folder / "presenter.mp4",
            f"color=c=0x00FF00:s={W}x{H}:r=25:d=2,drawbox=x=120:y=40:w=80:h=140:color=red:t=fill",
            None,
            ("-c:v", "libx264", "-crf", "10"),
        ),
        "audio_only": lavfi(folder / "audio.m4a", None, "sine=d=2", ("-c:a", "aac")),
        "logo": logo,
        "subtitles": _subtitles(folder / "subtitles.ass"),
    }


def still(path: Path) -> Path:
    """A test pattern as a picture."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={W}x{H}"]
        + ["-frames:v", "1", str(path)],
        check=True,
        timeout=60,
    )
    return path


def _subtitles(path: Path) -> Path:
    """One cue the whole video long: white text on an opaque blue box at the bottom."""
    path.write_text(
        f"[Script Info]\nScriptType: v4.00+\nPlayResX: {W}\nPlayResY: {H}\n\n"
        "[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, "
        "Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"Style: Default,{fonts.FAMILY},24,&H00FFFFFF,&H00FFFFFF,&H00FF0000,&H00FF0000,0,0,0,0,100,100,0,0,"
        "4,0,6,2,20,20,12,1\n\n"
        "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        "Dialogue: 0,0:00:00.00,0:00:02.00,Default,,0,0,0,,字幕 subtitles\n",
        encoding="utf-8",
    )
    return path


def frame(path: Path, at_s: float) -> np.ndarray:
    raw = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-ss",
            f"{at_s}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(H, W, 3).astype(np.int16)


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


# A Placement takes every placement argument (the brand holds the defaults); these tests vary a few.
ALWAYS_IN_THE_CORNER = {
    "start_s": 0,
    "end_s": 0,
    "corner": "bottom-right",
    "scale": 0.3,
    "chroma_key": "#00FF00",
}


def plan(media: dict[str, Path], clip: Path | None = None, **changes) -> compose.Plan:
    """Two seconds of the picture (compose's own motion on it) over the narration, with the presenter
    placed as `changes` say when `clip` is given."""
    placement = {key: changes.pop(key) for key in [*ALWAYS_IN_THE_CORNER, "mode"] if key in changes}
    fields = {
        "width": W,
        "height": H,
        "visuals": [compose.Visual(media["picture"], "still", 0, 2000)],
        "narration_path": media["narration"],
        "fps": 25,
        "preset": "ultrafast",
        "presenter": presenter.Placement(clip_path=clip, **{**ALWAYS_IN_THE_CORNER, **placement})
        if clip
        else None,
    }
    return compose.Plan(**{**fields, **changes})


def place(media: dict[str, Path], out: Path, clip: Path | None = None, **placement) -> Path:
    return compose.render(plan(media, media["presenter"] if clip is None else clip, **placement), out).path


@pytest.fixture(scope="module")
def original(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same video without the presenter."""
    return compose.render(plan(media), tmp_path_factory.mktemp("original") / "original.mp4").path


# --- placing -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_pip_puts_the_keyed_presenter_in_the_corner(media, original, tmp_path: Path) -> None:
    out = place(media, tmp_path / "pip.mp4", mode="pip", corner="bottom-right", scale=0.5)

    assert abs(ffmpeg.duration(out) - ffmpeg.duration(original)) < 0.1
    unplaced, placed = frame(original, 1.0), frame(out, 1.0)
    # pip is 160x90 at (W-10-160, H-10-90); the red box (its middle 40x70) sits at its centre
    box = placed[H - 10 - 90 + 30 : H - 10 - 30, W - 10 - 160 + 65 : W - 10 - 65]
    assert box[..., 0].mean() > 180 and box[..., 1].mean() < 80  # red, over the test pattern
    # the keyed green around the box lets the video through; the rest of the frame is untouched
    keyed_margin = (slice(H - 10 - 90 + 5, H - 10 - 5), slice(W - 10 - 160 + 5, W - 10 - 160 + 40))
    assert difference(placed[keyed_margin], unplaced[keyed_margin]) < 20
    assert (placed[keyed_margin][..., 1] > 230).mean() < 0.5  # not the presenter's green
    assert difference(placed[:60, :150], unplaced[:60, :150]) < 6


@pytest.mark.slow
def test_pip_in_the_top_left_without_chroma_key(media, tmp_path: Path) -> None:
    out = place(media, tmp_path / "tl.mp4", mode="pip", corner="top-left", scale=0.25, chroma_key=None)
    placed = frame(out, 1.0)
    corner = placed[10 + 5 : 10 + 40, 10 + 5 : 10 + 20]  # the presenter's green background, unkeyed
    assert corner[..., 1].mean() > 200 and corner[..., 0].mean() < 60


@pytest.mark.slow
def test_fullscreen_at_start_and_end_only(media, original, tmp_path: Path) -> None:
    out = place(media, tmp_path / "full.mp4", mode="fullscreen", start_s=0.5, end_s=0.5, chroma_key=None)

    assert abs(ffmpeg.duration(out) - ffmpeg.duration(original)) < 0.1
    presenter_frame = frame(media["presenter"], 0.0)
    assert difference(frame(out, 0.0), presenter_frame) < 6  # the first frame is the presenter
    assert difference(frame(out, 0.0), frame(original, 0.0)) > 30
    assert difference(frame(out, 1.0), frame(original, 1.0)) < 6  # the middle is the video
    assert difference(frame(out, 1.8), presenter_frame) < 6


@pytest.mark.slow
def test_fullscreen_keyed_presenter_stands_in_front_of_the_pictures(media, original, tmp_path: Path) -> None:
    out = place(media, tmp_path / "fullkey.mp4", mode="fullscreen", start_s=1.0)
    first, unplaced = frame(out, 0.0), frame(original, 0.0)
    assert difference(first, unplaced) > 5  # the red presenter is there...
    assert difference(first[:, :100], unplaced[:, :100]) < 20  # ...and the keyed background shows the video


@pytest.mark.slow
def test_the_subtitles_and_the_logo_stand_in_front_of_the_presenter(media, tmp_path: Path) -> None:
    """An opaque presenter covers the pictures, not the subtitles and the logo drawn over them."""
    out = place(
        media,
        tmp_path / "front.mp4",
        mode="fullscreen",
        chroma_key=None,
        subtitles_path=media["subtitles"],
        logo_path=media["logo"],
    )
    picture = frame(out, 1.0)
    assert picture[H // 2 - 20 : H // 2 + 20, 140:180, 0].mean() > 180  # the presenter's red figure
    x, y, w, h = compose.logo_box(plan(media, logo_path=media["logo"]))
    red, green, blue = picture[y + h // 2, x + w // 2]
    assert red > 180 and blue > 180 and green < 90  # the magenta logo
    bottom = picture[H - 50 :]
    assert (
        (bottom[..., 2] > 200) & (bottom[..., 0] < 60) & (bottom[..., 1] < 60)
    ).sum() > 300  # the blue box
    assert (bottom.min(axis=2) > 200).sum() > 20  # its white text


@pytest.mark.slow
def test_outside_its_times_the_presenter_leaves_the_chunks_as_they_were(media, tmp_path: Path) -> None:
    """Only the pieces that show the presenter are named by its clip: the others are the same chunks."""
    store = ChunkStore(tmp_path / "chunks")
    two = [
        compose.Visual(media["picture"], "still", 0, 1000),
        compose.Visual(media["picture"], "still", 1000, 2000),
    ]
    without = compose.render(plan(media, visuals=two), tmp_path / "without.mp4", store=store)
    placed = compose.render(
        plan(media, media["presenter"], visuals=two, mode="fullscreen", start_s=0.5, end_s=0.0),
        tmp_path / "with.mp4",
        store=store,
    )
    video = [name for name in placed.chunks if not name.startswith("audio-")]
    assert len(video) == 2 and video[1] in placed.reused and video[0] not in without.chunks


def test_bad_arguments_are_refused(media, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="mode"):
        place(media, tmp_path / "x.mp4", mode="side")
    with pytest.raises(MediaError, match="corner"):
        place(media, tmp_path / "x.mp4", mode="pip", corner="middle")
    with pytest.raises(MediaError, match="#00FF00"):
        place(media, tmp_path / "x.mp4", mode="pip", chroma_key="green")
    with pytest.raises(MediaError, match="no video stream"):
        place(media, tmp_path / "x.mp4", media["audio_only"], mode="pip")


# --- fetching ----------------------------------------------------------------------------------


@dataclass
class FakeService:
    """Answers each request with the next (status, body, delay); the last one repeats."""

    answers: list[tuple[int, bytes, float]]
    uploads: list[bytes] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def service(media: dict[str, Path]) -> Iterator[FakeService]:
    fake = FakeService(answers=[(200, media["presenter"].read_bytes(), 0.0)])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            fake.uploads.append(self.rfile.read(int(self.headers["Content-Length"])))
            status, body, delay = fake.answers[min(len(fake.uploads), len(fake.answers)) - 1]
            time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "video/mp4" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}/human"
    yield fake
    httpd.shutdown()
    httpd.server_close()


def fetch(service: FakeService, media: dict[str, Path], out: Path, **kwargs) -> Path:
    return presenter.fetch_presenter_clip(
        media["narration"], url=service.url, out_path=out, **{"timeout": 5, "backoff": 0.01, **kwargs}
    )


def test_fetch_uploads_the_narration_and_saves_the_mp4(service, media, tmp_path) -> None:
    out = fetch(service, media, tmp_path / "clip" / "human.mp4")
    assert out.read_bytes() == media["presenter"].read_bytes()
    [upload] = service.uploads
    assert b'name="audio"' in upload and media["narration"].read_bytes() in upload


def test_fetch_retries_5xx_then_succeeds(service, media, tmp_path) -> None:
    service.answers = [(503, b"warming up", 0.0), (200, media["presenter"].read_bytes(), 0.0)]
    assert fetch(service, media, tmp_path / "human.mp4").exists()
    assert len(service.uploads) == 2


def test_fetch_persistent_5xx_is_transient(service, media, tmp_path) -> None:
    service.answers = [(500, b"crash", 0.0)]
    with pytest.raises(MediaError, match="after 3 attempt.*HTTP 500") as caught:
        fetch(service, media, tmp_path / "human.mp4")
    assert not caught.value.permanent and len(service.uploads) == 3
    assert not list(tmp_path.iterdir())


def test_fetch_timeout_is_transient(service, media, tmp_path) -> None:
    service.answers = [(200, media["presenter"].read_bytes(), 1.5)]
    with pytest.raises(MediaError, match="did not answer within") as caught:
        fetch(service, media, tmp_path / "human.mp4", timeout=0.3, retries=2)
    assert not caught.value.permanent and len(service.uploads) == 2


def test_fetch_reply_that_is_not_a_video_is_permanent(service, media, tmp_path) -> None:
    service.answers = [(200, media["audio_only"].read_bytes(), 0.0)]
    with pytest.raises(MediaError, match="did not return a video") as caught:
        fetch(service, media, tmp_path / "human.mp4")
    assert caught.value.permanent and len(service.uploads) == 1
    service.answers = [(200, b"<html>oops</html>", 0.0)]
    with pytest.raises(MediaError, match="did not return a video"):
        fetch(service, media, tmp_path / "human.mp4")
    assert not list(tmp_path.iterdir())


def test_fetch_4xx_is_permanent(service, media, tmp_path) -> None:
    service.answers = [(413, b"narration too long", 0.0)]
    with pytest.raises(MediaError, match="HTTP 413.*narration too long") as caught:
        fetch(service, media, tmp_path / "human.mp4")
    assert caught.value.permanent and len(service.uploads) == 1
