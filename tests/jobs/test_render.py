"""Rendering a job end to end with real espeak-ng and ffmpeg, on short inputs."""

import os
import re
import subprocess
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command

from jobs import services, storyboard
from jobs.models import ExecutionStatus, Job, JobSplit, StockClip
from jobs.render import loop as renders
from media_engine import ffmpeg
from tests.factories import make_account, make_language, make_preset_job, make_voice

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SHORT_TEXT = "今天天气很好。我们去公园散步吧。"


@pytest.fixture
def job(settings):
    settings.SEGMENT_TARGET_MS = 1500
    return make_preset_job(content=SHORT_TEXT, publish_title="公园散步")


def render(job: Job):
    execution = services.execution_create(job=job)
    return renders.execution_run(execution=execution)


def stored_path(key: str) -> Path:
    return Path(default_storage.path(key))


def srt_times(text: str) -> list[tuple[int, int]]:
    def ms(stamp: str) -> int:
        hours, minutes, rest = stamp.split(":")
        seconds, millis = rest.split(",")
        return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)

    return [(ms(a), ms(b)) for a, b in re.findall(r"(\S+) --> (\S+)", text)]


def test_render_makes_a_video_with_exact_subtitles_and_all_artifacts(job):
    execution = render(job)
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    assert execution.progress == 100
    assert "picture cards" in execution.detail and "espeak-ng voice" in execution.detail
    for key in ("narration", "srt", "ass", "video", "cover"):
        assert key in execution.results
        assert default_storage.exists(execution.results[key]), key
        assert execution.results[key].startswith(f"jobs/{job.pk}/{execution.pk}/")

    info = ffmpeg.probe(stored_path(execution.results["video"]))
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (1360, 768)
    assert video["codec_name"] == "h264"
    assert any(s["codec_type"] == "audio" for s in info["streams"])
    narration_s = ffmpeg.duration(stored_path(execution.results["narration"]))
    assert abs(float(info["format"]["duration"]) - narration_s) <= 0.1

    sentences = execution.steps["narration"]["data"]["sentences"]
    assert [s["text"] for s in sentences] == ["今天天气很好。", "我们去公园散步吧。"]
    cues = srt_times(stored_path(execution.results["srt"]).read_text(encoding="utf-8"))
    assert abs(cues[0][0] - sentences[0]["start_ms"]) <= 50
    assert abs(cues[-1][1] - sentences[-1]["end_ms"]) <= 50
    for sentence in sentences:
        assert any(abs(start - sentence["start_ms"]) <= 50 for start, _ in cues)
        assert any(abs(end - sentence["end_ms"]) <= 50 for _, end in cues)

    splits = list(job.splits.order_by("index"))
    assert splits and splits[0].start_ms == 0
    assert splits[-1].end_ms == execution.steps["narration"]["data"]["duration_ms"]
    assert all(split.selected and default_storage.exists(split.selected) for split in splits)
    assert all(step["status"] == "done" for step in execution.steps.values())


def test_rerender_reuses_everything_unchanged(job, monkeypatch):
    first = render(job)
    assert first.status == ExecutionStatus.SUCCESS, first.detail
    calls = []
    monkeypatch.setattr(
        "media_engine.tts.EspeakBackend.synthesize_sentence", lambda *args, **kwargs: calls.append(args)
    )
    second = render(job)
    assert second.status == ExecutionStatus.SUCCESS, second.detail
    assert {step["status"] for step in second.steps.values()} == {"reused"}
    assert second.results["video"] == first.results["video"]
    assert calls == []


def test_picture_change_reruns_composition_only(job, monkeypatch):
    first = render(job)
    assert first.status == ExecutionStatus.SUCCESS, first.detail
    split = job.splits.order_by("index").first()
    key = default_storage.save(f"jobs/{job.pk}/pictures/chosen.png", ContentFile(_png_bytes()))
    split.selected = key
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
    assert second.results["narration"] == first.results["narration"]
    assert second.results["video"] != first.results["video"]
    assert JobSplit.objects.get(pk=split.pk).selected == key


def test_karaoke_brand_highlights_every_spoken_character_in_the_burned_subtitles(job):
    job.account.extra = {**job.account.extra, "subtitle_karaoke": {"color": "#FFD400", "box": "#C00000"}}
    job.account.save()
    execution = render(job)
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    data = execution.steps["narration"]["data"]
    assert data["word_source"] == "espeak-ng word events"
    assert "".join(word["text"] for word in data["words"]) == "今天天气很好我们去公园散步吧"
    ass = stored_path(execution.results["ass"]).read_text()
    assert ass.count(",KaraokeBox,,0,0,0,,") == ass.count("\\1c&H00D4FF&\\3c&H0000C0&") == len(data["words"])
    assert "word times" not in execution.detail


def test_karaoke_with_a_voice_without_word_times_says_so_and_keeps_sentence_timing(job, monkeypatch):
    monkeypatch.setattr("media_engine.tts.EspeakBackend.word_source", "")
    job.account.extra = {**job.account.extra, "subtitle_karaoke": {}}
    job.account.save()
    execution = render(job)
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    assert "no word times for this narration: karaoke captions keep clause timing" in execution.detail
    ass = stored_path(execution.results["ass"]).read_text()
    srt = stored_path(execution.results["srt"]).read_text()
    assert "\\1c" not in ass and ass.count("Dialogue:") == len(srt_times(srt))


@pytest.mark.parametrize("karaoke", [None, {"color": "#FFD400"}], ids=["plain", "karaoke"])
def test_a_text_fix_in_one_segment_keeps_the_later_segments_video_chunks(job, karaoke):
    """A one-character fix makes its sentence longer: the later segments move by whole frames and show
    the same frames, so their chunks are reused by name, with karaoke captions as with plain ones."""
    job.account.extra = {**job.account.extra, "subtitle_karaoke": karaoke}
    job.account.save()
    job.content = "今天天气很好。我们去公园散步吧。公园里有很多花。孩子们在草地上玩。傍晚我们一起回家。"
    job.save()
    first = render(job)
    assert first.status == ExecutionStatus.SUCCESS, first.detail
    edited = job.splits.order_by("index")[1]
    storyboard.split_update(split_row=edited, text=edited.text.replace("散步", "散散步"))
    second = render(job)
    assert second.status == ExecutionStatus.SUCCESS, second.detail
    assert second.steps["narration"]["data"]["duration_ms"] > first.steps["narration"]["data"]["duration_ms"]
    if karaoke:
        assert "\\1c" in stored_path(second.results["ass"]).read_text()

    def video_chunks(execution) -> list[str]:
        return [
            name for name in execution.steps["compose"]["data"]["chunks"] if not name.startswith("audio-")
        ]

    before, after = video_chunks(first), video_chunks(second)
    assert len(before) == len(after)
    made = [number for number, name in enumerate(after) if name not in before]
    # Made again: the edited segment's own piece and the transitions into and out of it, nothing later.
    assert 1 <= len(made) <= 3 and made == list(range(made[0], made[0] + len(made))), made
    later = len(after) - made[-1] - 1
    assert later >= 4
    assert after[-later:] == before[-later:]


def test_real_clips_fill_their_share_of_segments(job, tmp_path):
    for number, colour in enumerate(["red", "blue", "green"]):
        path = tmp_path / f"clip{number}.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                f"color=c={colour}:s=320x180:r=30:d=1",
                "-pix_fmt",
                "yuv420p",
                str(path),
            ],
            check=True,
        )
        services.clip_import(path=path, tags="nature")
    job.extra = {"real_clip_ratio": 0.5, "segment_target_ms": 500}
    job.content = "一。二。三。四。五。六。"
    job.save()
    execution = render(job)
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    splits = list(job.splits.order_by("index"))
    with_clip = [split for split in splits if split.clip_id]
    assert len(with_clip) == round(0.5 * len(splits))
    for left, right in zip(splits, splits[1:]):
        assert not (left.clip_id and left.clip_id == right.clip_id)
    assert "clip library" in execution.detail
    # The same job renders with the same placement.
    placement = [split.clip_id for split in splits]
    job.splits.update(clip=None)
    storyboard._assign_clips(job, list(job.splits.order_by("index")))
    assert [split.clip_id for split in job.splits.order_by("index")] == placement


@pytest.mark.parametrize("content", ["。。。！！", "   ", "#@#only a note#@#"])
def test_content_without_speakable_text_fails_clearly(job, content):
    Job.objects.filter(pk=job.pk).update(content=content)
    job.refresh_from_db()
    execution = render(job)
    assert execution.status == ExecutionStatus.FAILED
    assert "narration failed" in execution.detail
    assert "speakable" in execution.error or "empty" in execution.error


def test_unknown_tts_platform_fails_naming_it(job):
    language = make_language(
        code="zh-YY", platform="telepathy"
    )  # the voice speaks it: only the platform is unknown
    job.language = language
    job.save()
    execution = render(job)
    assert execution.status == ExecutionStatus.FAILED
    assert "telepathy" in execution.error


def test_corrupt_voice_reference_fails_naming_the_file(job):
    voice = make_voice(name="clone")
    voice.reference.save("broken.wav", ContentFile(b"this is not audio"), save=True)
    job.voice = voice
    job.language = make_language(code="zh-XX", platform="seedvc")
    job.save()
    execution = render(job)
    assert execution.status == ExecutionStatus.FAILED
    assert "broken" in execution.error


def test_corrupt_logo_fails_and_loses_nothing_stored(job):
    first = render(job)
    assert first.status == ExecutionStatus.SUCCESS, first.detail
    account = make_account(username="broken-logo")
    account.logo.save("logo.png", ContentFile(b"not a picture"), save=True)
    job.account = account
    job.save()
    second = render(job)
    assert second.status == ExecutionStatus.FAILED
    assert "logo" in second.error
    assert default_storage.exists(first.results["video"])
    assert Job.objects.filter(pk=job.pk).exists()


def test_vertical_job_renders_vertical(job):
    job.orientation = "vertical"
    job.save()
    execution = render(job)
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    video = next(
        s
        for s in ffmpeg.probe(stored_path(execution.results["video"]))["streams"]
        if s["codec_type"] == "video"
    )
    assert (video["width"], video["height"]) == (768, 1360)


def test_import_clips_command(tmp_path, capsys):
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=s=320x180:r=25:d=2",
            "-pix_fmt",
            "yuv420p",
            str(tmp_path / "a.mp4"),
        ],
        check=True,
    )
    (tmp_path / "b.mp4").write_bytes(b"broken")
    call_command("import_clips", str(tmp_path), "--tags", "Sea, Landscape", "--licence", "CC0")
    out = capsys.readouterr()
    clip = StockClip.objects.get()
    assert clip.tag_set == {"sea", "landscape"} and clip.licence == "CC0"
    assert abs(clip.duration_ms - 2000) < 100 and (clip.width, clip.height) == (320, 180)
    assert "Imported 1 clip(s), skipped 1" in out.out
    assert "b.mp4" in out.err


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (1360, 768), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_demo_command_prints_the_video_path_last(settings, capsys, tmp_path):
    text = tmp_path / "article.txt"
    text.write_text("你好。这是演示。", encoding="utf-8")
    call_command("demo", "--text", str(text))
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert last_line.endswith(".mp4") and Path(last_line).exists()
    assert ffmpeg.duration(last_line) > 0.5


def test_regenerate_pictures_gives_the_segment_a_new_picture_and_keeps_uploads(job):
    first = render(job)
    assert first.status == ExecutionStatus.SUCCESS, first.detail
    split = job.splits.order_by("index").first()
    old_card = split.selected
    upload = default_storage.save(f"jobs/{job.pk}/pictures/mine.png", ContentFile(_png_bytes()))
    split.images = [*split.images, {"key": upload, "seed": None, "source": "upload"}]
    split.save()
    storyboard.split_regenerate(split_row=split)
    second = render(job)
    assert second.status == ExecutionStatus.SUCCESS, second.detail
    split.refresh_from_db()
    assert split.selected and split.selected != old_card
    assert [image["source"] for image in split.images] == ["upload", "card"]
    assert second.steps["narration"]["status"] == "reused"


def _mean_volume_db(video: Path, band_hz: int | None = None) -> float:
    """Mean audio level, or the level in a narrow band around `band_hz`."""
    chain = f"bandpass=f={band_hz}:width_type=h:w=30,volumedetect" if band_hz else "volumedetect"
    result = subprocess.run(
        ["ffmpeg", "-hide_banner", "-i", str(video), "-map", "0:a", "-af", chain, "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(re.search(r"mean_volume: (-?[\d.]+) dB", result.stderr).group(1))


def test_music_comes_from_storage_and_a_missing_file_fails_naming_it(job, tmp_path):
    first = render(job)
    assert first.status == ExecutionStatus.SUCCESS, first.detail
    tone = tmp_path / "tone.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "aevalsrc=sin(440*2*PI*t):d=3", "-ac", "2", str(tone)],
        check=True,
    )
    job.extra = {"music": default_storage.save("music/tone.wav", ContentFile(tone.read_bytes()))}
    job.save()

    with_music = render(job)

    assert with_music.status == ExecutionStatus.SUCCESS, with_music.detail
    assert with_music.steps["compose"]["status"] == "done"
    plain, mixed = stored_path(first.results["video"]), stored_path(with_music.results["video"])
    # The tone is in, under the voice, and the voice is as loud as without music.
    assert _mean_volume_db(mixed, band_hz=440) > _mean_volume_db(plain, band_hz=440) + 1
    assert abs(_mean_volume_db(mixed) - _mean_volume_db(plain)) < 1.5
    job.extra = {"music": "music/missing.wav"}
    job.save()
    missing = render(job)
    assert missing.status == ExecutionStatus.FAILED
    assert "music music/missing.wav is not in storage" in missing.error


def test_render_prunes_work_files_unused_for_work_cache_days(job, settings):
    settings.WORK_CACHE_DAYS = 7
    stale = Path(settings.WORK_ROOT) / "cache" / "jobs" / "old" / "video.mp4"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"x")
    os.utime(stale, (0, 0))

    execution = render(job)

    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    assert not stale.exists()
    assert any((Path(settings.WORK_ROOT) / "cache").rglob("*.png"))  # this render's copies stay
