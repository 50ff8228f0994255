"""The render with the model backends configured: tiny Flux pictures, uploaded narration through FunASR."""

import subprocess
from pathlib import Path

import pytest
from django.core.files import File
from django.core.files.storage import default_storage

from jobs import services
from jobs.benchmarks.tiny_models import build_tiny_flux
from jobs.models import FRAME_SIZES, ExecutionStatus, Orientation
from jobs.render import loop
from media_engine import compose
from tests.factories import make_preset_job
from tests.media_engine.tiny_models import build_tiny_ct_punc, build_tiny_fsmn_vad, build_tiny_paraformer

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def job(settings, monkeypatch):
    # Small frames: the tiny models run on the CPU here (a real Flux runs at full size on a GPU).
    monkeypatch.setitem(FRAME_SIZES, Orientation.HORIZONTAL, (320, 176))
    settings.SEGMENT_TARGET_MS = 60000  # one segment
    return make_preset_job(title="模型", speech_speed=1.3)


def test_flux_candidates_fill_the_storyboard_and_the_first_is_shown(job, settings, tmp_path):
    settings.FLUX_MODEL_DIR = str(build_tiny_flux(tmp_path / "flux"))
    settings.IMAGE_CANDIDATES = 2
    settings.IMAGE_STEPS = 2
    execution = loop.execution_run(execution=services.execution_create(job=job))
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    assert "picture cards" not in execution.detail
    for split in job.splits.all():
        generated = [image for image in split.images if image["source"] == "flux"]
        assert len(generated) == 2 and len({image["seed"] for image in generated}) == 2
        assert split.selected == generated[0]["key"]
        assert all(default_storage.exists(image["key"]) for image in generated)
    # The cover comes from the topic's cover prompt, not from a video frame.
    assert execution.steps["cover"]["status"] == "done"
    assert not any((Path(settings.WORK_ROOT) / "runs").iterdir())  # the attempt's folder went with it
    from PIL import Image

    with Image.open(default_storage.path(execution.results["cover"])) as cover:
        assert cover.size == (320, 176)
    # The pictures the step generated and chose are its outputs, not its inputs: a rerender (and the
    # next step task, on another worker) reuses the step instead of generating again.
    again = loop.execution_run(execution=services.execution_create(job=job))
    assert again.status == ExecutionStatus.SUCCESS, again.detail
    assert again.steps["pictures"]["status"] == "reused"


def test_uploaded_narration_is_aligned_to_the_script(job, settings, tmp_path):
    settings.FUNASR_MODEL_DIR = str(build_tiny_paraformer(tmp_path / "paraformer"))
    settings.FUNASR_VAD_DIR = str(build_tiny_fsmn_vad(tmp_path / "vad"))
    settings.FUNASR_PUNC_DIR = str(build_tiny_ct_punc(tmp_path / "punc"))
    audio = tmp_path / "narration.m4a"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            "-c:a",
            "aac",
            str(audio),
        ],
        check=True,
    )
    with open(audio, "rb") as handle:
        job.narration_audio.save("narration.m4a", File(handle), save=True)
    execution = loop.execution_run(execution=services.execution_create(job=job))
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    data = execution.steps["narration"]["data"]
    assert abs(data["duration_ms"] - 3000) < 100
    # The subtitles show the script's own sentences at times inside the uploaded audio.
    assert [s["text"] for s in data["sentences"]] == ["今天天气很好。", "我们去公园散步吧。"]
    assert 0 <= data["sentences"][0]["start_ms"] < data["sentences"][1]["end_ms"] <= data["duration_ms"]
    assert "espeak" not in execution.detail
    # FunASR's token times give the script's characters their times, inside their sentences.
    assert data["word_source"] == "FunASR token timestamps" and data["words"]
    previous_end = 0
    for word in data["words"]:
        sentence = data["sentences"][word["sentence"]]
        assert word["text"] in sentence["text"]
        assert (
            max(previous_end, sentence["start_ms"])
            <= word["start_ms"]
            <= word["end_ms"]
            <= sentence["end_ms"]
        )
        previous_end = word["end_ms"]


def test_uploaded_narration_without_funasr_fails_clearly(job, settings, tmp_path):
    settings.FUNASR_MODEL_DIR = ""
    audio = tmp_path / "n.wav"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=1", str(audio)],
        check=True,
    )
    with open(audio, "rb") as handle:
        job.narration_audio.save("n.wav", File(handle), save=True)
    execution = loop.execution_run(execution=services.execution_create(job=job))
    assert execution.status == ExecutionStatus.FAILED
    assert "FUNASR_MODEL_DIR" in execution.error
    assert Path(default_storage.path(job.narration_audio.name)).exists()


def test_presenter_is_placed_where_the_brand_profile_says(job, settings, tmp_path, monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    clip = tmp_path / "presenter.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=160x90:r=30:d=2",
            "-pix_fmt",
            "yuv420p",
            str(clip),
        ],
        check=True,
    )
    received = []

    class PresenterServer(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(len(self.rfile.read(int(self.headers["Content-Length"]))))
            body = clip.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), PresenterServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.PRESENTER_URL = f"http://127.0.0.1:{server.server_port}/presenter"
        job.extra = {"enable_digital_human": True}
        job.save()
        job.account.extra = {
            **job.account.extra,
            "human_insertion_mode": "pip",
            "human_config": {
                "start_s": 1,
                "end_s": 1.5,
                "corner": "top-left",
                "scale": 0.4,
                "chroma_key": None,
            },
        }
        job.account.save()
        placed = []
        render = compose.render
        monkeypatch.setattr(
            compose,
            "render",
            lambda plan, *args, **kwargs: (
                placed.append(vars(plan.presenter)) or render(plan, *args, **kwargs)
            ),
        )
        execution = loop.execution_run(execution=services.execution_create(job=job))
    finally:
        server.shutdown()
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    assert received and received[0] > 1000  # the narration went to the presenter server
    # Every documented human_config key reaches the placement (the seed's names, not duration/end_duration).
    assert {key: placed[0][key] for key in ("mode", "start_s", "end_s", "corner", "scale", "chroma_key")} == {
        "mode": "pip",
        "start_s": 1.0,
        "end_s": 1.5,
        "corner": "top-left",
        "scale": 0.4,
        "chroma_key": None,
    }
    from media_engine import ffmpeg

    video = Path(default_storage.path(execution.results["video"]))
    narration = Path(default_storage.path(execution.results["narration"]))
    assert abs(ffmpeg.duration(video) - ffmpeg.duration(narration)) <= 0.1
