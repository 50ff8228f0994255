"""Re-render benchmark: what an operator's edit costs next to the full render.

The case: a job of about 10 minutes and 100 segments on the offline defaults (espeak-ng voice,
picture cards, the demo channel's logo, 1360x768, fades, burned subtitles), rendered through the
real render loop. Then, each timed: a re-render after one segment gets another picture, a
re-render after one sentence of the script is edited, and a preview of the segment whose picture
changed. `identical_outside` compares ffmpeg's per-frame hashes (framemd5): outside the changed
segment (and its transitions) the frames must be bit-identical to the previous render; after the
sentence edit, the later frames must be the previous ones, moved by whole frames.

With `karaoke`, the same on a channel whose brand highlights the spoken word (`subtitle_karaoke`):
its captions change with every word, so each chunk's subtitle events are many, and they must
still move by whole frames with the sentence edit for the later chunks to be reused.

The job, its stored files, the chunks it made and its work folder are removed afterwards (run it
on an idle system: chunks that appear in the storage meanwhile count as its own), and so is the
karaoke channel.
"""

import io
import shutil
import time

from django.conf import settings
from django.core.files.storage import default_storage

from accounts.brand import Brand
from accounts.models import Account
from jobs import services, storyboard
from jobs.benchmarks.compose import CUE_TEXTS
from jobs.files import CHUNKS_FOLDER, chunk_store, fetch
from jobs.maintenance.cleanup import storage_walk
from jobs.maintenance.presets import presets_seed
from jobs.models import ExecutionStatus, Job, JobExecution
from jobs.records import step_record
from jobs.render import previews
from jobs.render.loop import execution_run
from jobs.render.workspace import cache_root
from media_engine import ffmpeg
from media_engine.cards import render_card
from topics.models import Topic
from voices.models import Language, Voice

TITLE = "rerender benchmark"
# espeak-ng's Mandarin at speed 1.2 says one of CUE_TEXTS with its number and pause in about 5.8 s.
SECONDS_PER_SENTENCE = 5.8
# The karaoke variant's channel: the demo channel's brand, highlighting the spoken word.
KARAOKE_CHANNEL = "rerender-benchmark-karaoke"
KARAOKE = {"color": "#FFD400"}


def rerender_benchmark(*, minutes: float = 10.0, karaoke: bool = False) -> dict:
    presets_seed()
    account = Account.objects.get(team=None, username="demo-channel")
    if karaoke:
        account, _ = Account.objects.update_or_create(
            team=None,
            username=KARAOKE_CHANNEL,
            defaults={
                "logo": account.logo.name,  # the same stored file: deleting this row keeps it
                "platform": account.platform,
                "extra": {**account.extra, "subtitle_karaoke": KARAOKE},
            },
        )
    sentences = [
        f"第{number + 1}条，{CUE_TEXTS[number % len(CUE_TEXTS)]}。"
        for number in range(max(3, round(minutes * 60 / SECONDS_PER_SENTENCE)))
    ]
    job = services.job_create(
        user=None,
        team=None,
        title=TITLE,
        content="".join(sentences),
        speech_speed=1.2,
        language=Language.objects.get(team=None, code="zh-CN"),
        voice=Voice.objects.get(team=None, name="cmn"),
        topic=Topic.objects.get(team=None, name="Health tips"),
        account=account,
    )
    chunks_before = set(storage_walk(CHUNKS_FOLDER))
    try:
        return {**_measure(job, sentences), "karaoke": karaoke}
    finally:
        _remove(job, chunks=set(storage_walk(CHUNKS_FOLDER)) - chunks_before)
        if karaoke:
            account.delete()


def _measure(job: Job, sentences: list[str]) -> dict:
    full_s, full = _render(job)
    playback = _playback(full)
    segments = list(job.splits.order_by("index"))
    # A fade's frames, counted on either side of a segment.
    transition = round(Brand.of(job.account).transition_s * settings.VIDEO_FPS)
    # One picture, two thirds of the way in.
    changed = segments[len(segments) * 2 // 3]
    card = render_card(
        "换一张图片",
        width=1360,
        height=768,
        palette=["#5d1436", "#a53a7c", "#4ef2c1"],
        out_path=cache_root() / "jobs" / str(job.pk) / "benchmark-card.png",
        seed=7,
    )
    upload = io.BytesIO(card.read_bytes())
    upload.name = "new-picture.png"
    storyboard.split_add_image(split_row=changed, uploaded=upload)
    picture_s, picture = _render(job)
    frames_before, frames_picture = _frame_hashes(full), _frame_hashes(picture)
    first, end = _frames(changed.start_ms) - transition, _frames(changed.end_ms) + transition
    picture_same = (
        len(frames_before) == len(frames_picture)
        and frames_before[:first] == frames_picture[:first]
        and frames_before[end:] == frames_picture[end:]
    )

    # One sentence, a third of the way in, says a little more.
    edited = len(sentences) // 3
    edited_row = next(row for row in job.splits.order_by("index") if sentences[edited] in row.sentences)
    longer = sentences[edited].replace("。", "，真的很重要。", 1)
    sentences = [*sentences[:edited], longer, *sentences[edited + 1 :]]
    services.job_update(job=job, user=None, content="".join(sentences))
    sentence_s, sentence = _render(job)
    frames_sentence = _frame_hashes(sentence)
    shift = len(frames_sentence) - len(frames_picture)
    first, end = _frames(edited_row.start_ms) - transition, _frames(edited_row.end_ms) + transition
    sentence_same = (
        shift > 0
        and frames_picture[:first] == frames_sentence[:first]
        and frames_picture[end:] == frames_sentence[end + shift :]
    )

    changed.refresh_from_db()
    started = time.perf_counter()
    previews.split_preview(split_row=changed)
    preview_s = time.perf_counter() - started
    return {
        "video_s": len(frames_before) / settings.VIDEO_FPS,
        "segments": len(segments),
        "full_s": full_s,
        "picture_s": picture_s,
        "picture_ratio": picture_s / full_s,
        "sentence_s": sentence_s,
        "sentence_ratio": sentence_s / full_s,
        "preview_s": preview_s,
        "picture_chunks": _made(picture),
        "sentence_chunks": _made(sentence),
        **playback,
        "identical_outside": picture_same and sentence_same,
    }


def _render(job: Job) -> tuple[float, JobExecution]:
    started = time.perf_counter()
    execution = execution_run(execution=services.execution_create(job=job))
    seconds = time.perf_counter() - started
    if execution.status != ExecutionStatus.SUCCESS:
        raise RuntimeError(f"the benchmark's render failed: {execution.detail}")
    return seconds, execution


def _made(execution: JobExecution) -> str:
    chunks = step_record(execution.steps, "compose").chunks or {"reused": 0, "total": 0}
    return f"{chunks['total'] - chunks['reused']}/{chunks['total']}"


def _frames(ms: int) -> int:
    return round(ms * settings.VIDEO_FPS / 1000)


def _frame_hashes(execution: JobExecution) -> list[str]:
    """The md5 of every decoded frame of the execution's video, in order."""
    return [md5 for _, md5 in _frames_of(execution)]


def _frames_of(execution: JobExecution) -> list[tuple[int, str]]:
    """(pts in frames, md5) of every decoded frame of the execution's video."""
    video = fetch(execution.results["video"])
    out = video.with_suffix(".framemd5")
    ffmpeg.run(
        ["-i", str(video), "-map", "0:v", "-vf", f"settb=1/{settings.VIDEO_FPS}", "-f", "framemd5", str(out)]
    )
    rows = [line.split(",") for line in out.read_text().splitlines() if line and not line.startswith("#")]
    out.unlink()
    return [(int(row[2]), row[-1].strip()) for row in rows]


def _playback(execution: JobExecution) -> dict:
    """Continuity across chunk joins: frames as many as the narration's length says, one after
    another (no timestamp repeated or skipped), and the picture's end against the sound's."""
    frames = [pts for pts, _ in _frames_of(execution)]
    streams = {s["codec_type"]: s for s in ffmpeg.probe(fetch(execution.results["video"]))["streams"]}
    narration_s = ffmpeg.duration(fetch(execution.results["narration"]))
    return {
        "frames": len(frames),
        "expected_frames": round(narration_s * settings.VIDEO_FPS),
        "continuous": frames == list(range(len(frames))),
        "av_drift_ms": abs(float(streams["video"]["duration"]) - float(streams["audio"]["duration"])) * 1000,
    }


def _remove(job: Job, *, chunks: set[str]) -> None:
    """The job's rows, stored files and work folder, and the chunks that appeared while it ran."""
    keys = list(storage_walk(f"jobs/{job.pk}"))
    Job.objects.filter(pk=job.pk).delete()
    for key in [*keys, *chunks]:
        default_storage.delete(key)
    folder = chunk_store().folder
    for key in chunks:
        (folder / key.rsplit("/", 1)[-1]).unlink(missing_ok=True)
    shutil.rmtree(cache_root() / "jobs" / str(job.pk), ignore_errors=True)


def format_rerender_line(result: dict) -> str:
    return (
        "full_s={full_s:.2f} picture_s={picture_s:.2f} picture_ratio={picture_ratio:.3f} "
        "sentence_s={sentence_s:.2f} sentence_ratio={sentence_ratio:.3f} preview_s={preview_s:.2f} "
        "identical_outside={identical}"
    ).format(**result, identical=str(result["identical_outside"]).lower())


def format_rerender_details(result: dict) -> str:
    return (
        "video_s={video_s:.1f} segments={segments} karaoke={karaoke} frames={frames} expected_frames={expected_frames} "
        "continuous={continuous} av_drift_ms={av_drift_ms:.1f} chunks made: picture {picture_chunks}, "
        "sentence {sentence_chunks}"
    ).format(**{**result, "karaoke": str(result["karaoke"]).lower()})
