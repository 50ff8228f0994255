"""The digital human: fetching its clip from a local fake service, and placing it with real
ffmpeg on tiny lavfi-made inputs."""

import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from media_engine import ffmpeg, presenter
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
    return {
        # the rendered video: a blue frame with a moving test pattern, and narration audio
        "video": lavfi(
            folder / "video.mp4",
            f"testsrc2=s={W}x{H}:r=25:d=2",
            "sine=frequency=330:sample_rate=44100:d=2",
            ("-c:v", "libx264", "-c:a", "aac"),
        ),
        # the presenter: pure green background with a red "person" box in the middle
        "presenter": lavfi(
            folder / "presenter.mp4",
            f"color=c=0x00FF00:s={W}x{H}:r=25:d=2,drawbox=x=120:y=40:w=80:h=140:color=red:t=fill",
            None,
            ("-c:v", "libx264", "-crf", "10"),
        ),
        "narration": lavfi(folder / "narration.wav", None, "sine=frequency=220:sample_rate=16000:d=2"),
        "audio_only": lavfi(folder / "audio.m4a", None, "sine=d=2", ("-c:a", "aac")),
    }


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


# place_presenter takes every placement argument (the brand holds the defaults); these tests vary a few.
ALWAYS_IN_THE_CORNER = {
    "start_s": 0,
    "end_s": 0,
    "corner": "bottom-right",
    "scale": 0.3,
    "chroma_key": "#00FF00",
    "crf": 20,
    "preset": "veryfast",
}


def place(video: Path, clip: Path, out: Path, **placement) -> Path:
    return presenter.place_presenter(video, clip, out, **{**ALWAYS_IN_THE_CORNER, **placement})


# --- placing -----------------------------------------------------------------------------------


def test_pip_puts_the_keyed_presenter_in_the_corner(media: dict[str, Path], tmp_path: Path) -> None:
    progress: list[float] = []
    out = place(
        media["video"],
        media["presenter"],
        tmp_path / "pip.mp4",
        mode="pip",
        corner="bottom-right",
        scale=0.5,
        on_progress=progress.append,
    )

    assert abs(ffmpeg.duration(out) - ffmpeg.duration(media["video"])) < 0.1
    original, placed = frame(media["video"], 1.0), frame(out, 1.0)
    # pip is 160x90 at (W-10-160, H-10-90); the red box (its middle 40x70) sits at its centre
    box = placed[H - 10 - 90 + 30 : H - 10 - 30, W - 10 - 160 + 65 : W - 10 - 65]
    assert box[..., 0].mean() > 180 and box[..., 1].mean() < 80  # red, over the test pattern
    # the keyed green around the box lets the video through; the rest of the frame is untouched
    keyed_margin = (slice(H - 10 - 90 + 5, H - 10 - 5), slice(W - 10 - 160 + 5, W - 10 - 160 + 40))
    assert difference(placed[keyed_margin], original[keyed_margin]) < 20
    assert (placed[keyed_margin][..., 1] > 230).mean() < 0.5  # not the presenter's green
    assert difference(placed[:60, :150], original[:60, :150]) < 6
    assert progress[-1] == 1.0


def test_pip_keeps_the_narration_audio(media: dict[str, Path], tmp_path: Path) -> None:
    out = place(media["video"], media["presenter"], tmp_path / "pip.mp4", mode="pip")
    streams = ffmpeg.probe(out)["streams"]
    audio = [stream for stream in streams if stream["codec_type"] == "audio"]
    assert len(audio) == 1 and audio[0]["codec_name"] == "aac" and audio[0]["sample_rate"] == "44100"


def test_pip_in_the_top_left_without_chroma_key(media: dict[str, Path], tmp_path: Path) -> None:
    out = place(
        media["video"],
        media["presenter"],
        tmp_path / "tl.mp4",
        mode="pip",
        corner="top-left",
        scale=0.25,
        chroma_key=None,
    )
    placed = frame(out, 1.0)
    corner = placed[10 + 5 : 10 + 40, 10 + 5 : 10 + 20]  # the presenter's green background, unkeyed
    assert corner[..., 1].mean() > 200 and corner[..., 0].mean() < 60


def test_fullscreen_at_start_and_end_only(media: dict[str, Path], tmp_path: Path) -> None:
    out = place(
        media["video"],
        media["presenter"],
        tmp_path / "full.mp4",
        mode="fullscreen",
        start_s=0.5,
        end_s=0.5,
        chroma_key=None,
    )

    assert abs(ffmpeg.duration(out) - ffmpeg.duration(media["video"])) < 0.1
    presenter_frame = frame(media["presenter"], 0.0)
    assert difference(frame(out, 0.0), presenter_frame) < 6  # the first frame is the presenter
    assert difference(frame(out, 0.0), frame(media["video"], 0.0)) > 30
    assert difference(frame(out, 1.0), frame(media["video"], 1.0)) < 6  # the middle is the video
    assert difference(frame(out, 1.8), presenter_frame) < 6


def test_fullscreen_keyed_presenter_stands_in_front_of_the_video(
    media: dict[str, Path],
    tmp_path: Path,
) -> None:
    out = place(media["video"], media["presenter"], tmp_path / "fullkey.mp4", mode="fullscreen", start_s=1.0)
    first, original = frame(out, 0.0), frame(media["video"], 0.0)
    assert difference(first, original) > 5  # the red presenter is there...
    assert difference(first[:, :100], original[:, :100]) < 20  # ...and the keyed background shows the video


def test_the_brands_crf_and_preset_encode_the_result(media: dict[str, Path], tmp_path: Path) -> None:
    out = place(media["video"], media["presenter"], tmp_path / "enc.mp4", mode="pip", crf=31, preset="faster")
    data = out.read_bytes()
    options = data[data.index(b"x264 - core") :][:2000]
    assert b"crf=31.0" in options and b" subme=4 " in options  # faster's subme; veryfast has 2


def test_bad_arguments_are_refused(media: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="mode"):
        place(media["video"], media["presenter"], tmp_path / "x.mp4", mode="side")
    with pytest.raises(MediaError, match="corner"):
        place(media["video"], media["presenter"], tmp_path / "x.mp4", mode="pip", corner="middle")
    with pytest.raises(MediaError, match="#00FF00"):
        place(media["video"], media["presenter"], tmp_path / "x.mp4", mode="pip", chroma_key="green")
    with pytest.raises(MediaError, match="no video stream"):
        place(media["video"], media["audio_only"], tmp_path / "x.mp4", mode="pip")


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
