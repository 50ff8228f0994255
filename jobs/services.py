"""Jobs: creating them, and rendering them step by step.

The render is one readable loop (`execution_run`) over the steps in STEPS. Each step
computes a hash of its inputs; when an earlier run of the same job recorded the same hash
and its stored outputs still exist, the step is reused instead of re-run. That makes a
rerun after a crash cheap, and a changed picture re-runs composition only.
"""

import hashlib
import json
import logging
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from media_engine import cards, clips, compose, split, subtitles, tts
from media_engine.errors import Cancelled, MediaError
from media_engine.fonts import default_font_path
from media_engine.prompts import template_prompt
from media_engine.sentences import Narration, TimedSentence, split_sentences

from .models import ACTIVE_STATUSES, ExecutionStatus, Job, JobExecution, JobSplit, StockClip
from .validation import clean_job_input

logger = logging.getLogger(__name__)

# Share of the progress bar each step takes; they add up to 100.
STEPS: dict[str, int] = {
    "narration": 25,
    "subtitles": 3,
    "segments": 2,
    "pictures": 15,
    "compose": 50,
    "cover": 5,
}
STEP_OFFSETS: dict[str, int] = {name: sum(list(STEPS.values())[:i]) for i, name in enumerate(STEPS)}
PROGRESS_SAVE_INTERVAL_S = 1.0


# ---------------------------------------------------------------- jobs


@transaction.atomic
def job_create(*, user, title: str, content: str, **fields: Any) -> Job:
    data = clean_job_input(user, {"title": title, "content": content, **fields})
    job = Job(owner=user if user is not None and user.is_authenticated else None, **data)
    job.full_clean(exclude=["owner"])
    job.save()
    return job


@transaction.atomic
def job_update(*, job: Job, user, **fields: Any) -> Job:
    data = clean_job_input(user, fields)
    for name, value in data.items():
        setattr(job, name, value)
    job.full_clean(exclude=["owner"])
    job.save()
    return job


def job_soft_delete(*, job: Job) -> Job:
    """Hide a job; its executions and stored files stay until a clean-up removes them."""
    if job.deleted_at is None:
        job.deleted_at = timezone.now()
        job.save(update_fields=["deleted_at", "updated_at"])
    return job


def job_restore(*, job: Job) -> Job:
    if job.deleted_at is not None:
        job.deleted_at = None
        job.save(update_fields=["deleted_at", "updated_at"])
    return job


def execution_create(*, job: Job) -> JobExecution:
    """A PENDING execution, or the job's active one: a job never renders twice at once."""
    if job.deleted_at is not None:
        raise ValidationError("This job is deleted; restore it before rendering.")
    active = job.executions.filter(status__in=ACTIVE_STATUSES).first()
    if active is not None:
        return active
    try:
        with transaction.atomic():
            return JobExecution.objects.create(job=job, detail="Waiting for a worker")
    except IntegrityError:
        # Someone else created one between our check and our insert.
        return job.executions.get(status__in=ACTIVE_STATUSES)


def job_enqueue(*, job: Job) -> JobExecution:
    """Queue a render; the worker task is sent only once the execution is committed."""
    from django_q.tasks import async_task

    with transaction.atomic():
        execution = execution_create(job=job)
        if execution.status == ExecutionStatus.PENDING:
            transaction.on_commit(lambda: async_task("jobs.tasks.execution_task", execution.pk))
    return execution


# ---------------------------------------------------------------- progress


_last_saved: dict[int, float] = {}
_listeners: dict[int, Callable[[JobExecution], None]] = {}


def execution_report(
    execution: JobExecution, *, step: str, fraction: float, message: str, force: bool = False
) -> None:
    """Record progress 0-100 for a step; saved (and published) at most about once a second."""
    percent = int(STEP_OFFSETS[step] + STEPS[step] * max(0.0, min(1.0, fraction)))
    execution.progress = max(execution.progress, min(percent, 100))
    execution.current_step = step
    execution.detail = message[:500]
    now = time.monotonic()
    if not force and now - _last_saved.get(execution.pk, 0.0) < PROGRESS_SAVE_INTERVAL_S:
        return
    _last_saved[execution.pk] = now
    execution.heartbeat_at = timezone.now()
    execution.save(update_fields=["progress", "current_step", "detail", "heartbeat_at", "steps", "updated_at"])
    execution_publish(execution)


def execution_publish(execution: JobExecution) -> None:
    """Tell listeners (websocket progress views, a command's progress bar) about the execution."""
    logger.debug("execution %s %s %s%%", execution.pk, execution.status, execution.progress)
    listener = _listeners.get(execution.pk)
    if listener is not None:
        listener(execution)


def _cancel_check(execution: JobExecution) -> Callable[[], bool]:
    last_check = [0.0]
    cancelled = [False]

    def check() -> bool:
        now = time.monotonic()
        if not cancelled[0] and now - last_check[0] >= PROGRESS_SAVE_INTERVAL_S:
            last_check[0] = now
            cancelled[0] = JobExecution.objects.filter(pk=execution.pk, cancel_requested=True).exists()
        return cancelled[0]

    return check


# ---------------------------------------------------------------- the render


@dataclass
class RenderContext:
    """What the steps of one execution share."""

    execution: JobExecution
    job: Job
    workdir: Path
    cancel: Callable[[], bool]
    fallbacks: list[str] = field(default_factory=list)
    narration: Narration | None = None
    subtitles_key: str = ""

    def key(self, name: str) -> str:
        return f"jobs/{self.job.pk}/{self.execution.pk}/{name}"


def execution_run(
    *, execution: JobExecution, on_progress: Callable[[JobExecution], None] | None = None
) -> JobExecution:
    """Render an execution to the end, reusing every step whose inputs did not change."""
    if on_progress is not None:
        _listeners[execution.pk] = on_progress
    try:
        return _execution_render(execution)
    finally:
        _listeners.pop(execution.pk, None)


def _execution_render(execution: JobExecution) -> JobExecution:
    job = execution.job
    execution.status = ExecutionStatus.RUNNING
    execution.started_at = execution.started_at or timezone.now()
    execution.worker_host = socket.gethostname()
    execution.error = ""
    execution.save()
    context = RenderContext(
        execution=execution,
        job=job,
        workdir=Path(settings.WORK_ROOT) / f"job-{job.pk}" / f"execution-{execution.pk}",
        cancel=_cancel_check(execution),
    )
    context.workdir.mkdir(parents=True, exist_ok=True)
    steps = {
        "narration": _step_narration,
        "subtitles": _step_subtitles,
        "segments": _step_segments,
        "pictures": _step_pictures,
        "compose": _step_compose,
        "cover": _step_cover,
    }
    current = ""
    try:
        for current, run_step in steps.items():
            if context.cancel():
                raise Cancelled("cancelled by an operator")
            _run_recorded(context, current, run_step)
    except Cancelled:
        _finish(execution, ExecutionStatus.CANCELLED, f"Cancelled during {current}")
        shutil.rmtree(context.workdir, ignore_errors=True)
    except (MediaError, ValidationError) as error:
        message = _error_text(error)
        _finish(execution, ExecutionStatus.FAILED, f"{current} failed: {message}", error=message)
    else:
        fallbacks = "; ".join(dict.fromkeys(context.fallbacks))
        detail = "Done" + (f" (fallbacks: {fallbacks})" if fallbacks else "")
        execution.progress = 100
        _finish(execution, ExecutionStatus.SUCCESS, detail)
        shutil.rmtree(context.workdir, ignore_errors=True)
    return execution


def _error_text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(error.messages)
    return str(error)


def _finish(execution: JobExecution, status: str, detail: str, *, error: str = "") -> None:
    execution.status = status
    execution.detail = detail[:500]
    execution.error = error
    execution.finished_at = timezone.now()
    execution.save()
    _last_saved.pop(execution.pk, None)
    execution_publish(execution)


def _run_recorded(context: RenderContext, step: str, run_step) -> None:
    """Run one step, or reuse an earlier run's outputs when its inputs are unchanged."""
    execution = context.execution
    inputs = run_step(context, None)  # a step called with None returns its inputs
    input_hash = _hash(inputs)
    started = timezone.now()
    reused = _find_reusable(context.job, step, input_hash)
    if reused is not None:
        record = {**reused, "status": "reused", "started_at": started.isoformat(),
                  "finished_at": started.isoformat(), "duration_s": 0.0}
        _apply_outputs(context, step, record)
        execution.steps = {**execution.steps, step: record}
        execution_report(execution, step=step, fraction=1.0, message=f"{step}: unchanged, reused", force=True)
        return
    execution.steps = {**execution.steps, step: {"status": "running", "started_at": started.isoformat()}}
    execution_report(execution, step=step, fraction=0.0, message=f"{step}: started", force=True)
    clock = time.monotonic()
    try:
        outputs, data = run_step(context, inputs)
    except (MediaError, ValidationError, Cancelled) as error:
        execution.steps = {**execution.steps, step: {
            "status": "cancelled" if isinstance(error, Cancelled) else "failed",
            "started_at": started.isoformat(), "finished_at": timezone.now().isoformat(),
            "duration_s": round(time.monotonic() - clock, 3), "error": _error_text(error),
        }}
        raise
    record = {
        "status": "done",
        "input_hash": input_hash,
        "outputs": outputs,
        "data": data,
        "started_at": started.isoformat(),
        "finished_at": timezone.now().isoformat(),
        "duration_s": round(time.monotonic() - clock, 3),
    }
    execution.steps = {**execution.steps, step: record}
    execution.results = {**execution.results, **outputs}
    execution_report(execution, step=step, fraction=1.0, message=f"{step}: done", force=True)


def _hash(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _find_reusable(job: Job, step: str, input_hash: str) -> dict | None:
    for steps in job.executions.order_by("-id").values_list("steps", flat=True)[:20]:
        record = (steps or {}).get(step)
        if not record or record.get("input_hash") != input_hash or record.get("status") not in ("done", "reused"):
            continue
        if all(default_storage.exists(key) for key in record.get("outputs", {}).values()):
            return record
    return None


def _apply_outputs(context: RenderContext, step: str, record: dict) -> None:
    """Restore what later steps need from a reused step's record."""
    context.execution.results = {**context.execution.results, **record.get("outputs", {})}
    context.fallbacks.extend(record.get("data", {}).get("fallbacks", []))
    if step == "narration":
        data = record["data"]
        context.narration = Narration(
            path=Path(""),
            duration_ms=data["duration_ms"],
            sentences=[TimedSentence(**sentence) for sentence in data["sentences"]],
        )


def _fetch(context: RenderContext, key: str) -> Path:
    """A local copy of a stored file: the worker's disk is only a cache of the storage."""
    target = Path(settings.WORK_ROOT) / "cache" / key
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with default_storage.open(key, "rb") as source, open(target.with_suffix(".part"), "wb") as out:
            shutil.copyfileobj(source, out, length=1024 * 1024)
        target.with_suffix(".part").rename(target)
    return target


def _store(local_path: Path, key: str) -> str:
    """Save a file under exactly `key` (replacing an older file there) and return the key."""
    if default_storage.exists(key):
        default_storage.delete(key)
    with open(local_path, "rb") as handle:
        saved = default_storage.save(key, File(handle, name=local_path.name))
    return saved


def _file_digest(field_file) -> str:
    """A cheap identity for an uploaded file: its name and size (content hashing costs a download)."""
    if not field_file:
        return ""
    try:
        return f"{field_file.name}:{field_file.size}"
    except (OSError, ValueError):
        return f"{field_file.name}:missing"


# ---------------------------------------------------------------- steps
# Each step is called twice: with inputs=None it returns the dict its result depends on;
# with the inputs it does the work and returns (storage keys, data for later steps).


def _step_narration(context: RenderContext, inputs: dict | None):
    job = context.job
    if inputs is None:
        if job.language is None:
            raise ValidationError("The job has no language; choose one to narrate it.")
        return {
            "sentences": split_sentences(job.content),
            "platform": job.language.platform,
            "language": job.language.code,
            "voice": job.voice.name if job.voice else "",
            "reference": _file_digest(job.voice.reference) if job.voice else "",
            "speed": job.speech_speed,
        }
    voice = job.voice
    reference_path = None
    if voice is not None and voice.reference:
        try:
            reference_path = _fetch(context, voice.reference.name)
        except (OSError, FileNotFoundError) as error:
            raise MediaError(f"voice {voice.name!r}: reference file {voice.reference.name} is missing") from error
    spec = tts.VoiceSpec(name=inputs["voice"], language=inputs["language"], reference_path=reference_path)
    narration = tts.synthesize(
        inputs["sentences"],
        platform=inputs["platform"],
        voice=spec,
        speed=inputs["speed"],
        out_dir=Path(settings.WORK_ROOT) / f"job-{job.pk}" / "narration",
        options=settings.TTS_OPTIONS.get(inputs["platform"], {}),
        on_progress=lambda fraction: execution_report(
            context.execution, step="narration", fraction=fraction, message="Narrating"
        ),
        cancel=context.cancel,
    )
    context.narration = narration
    fallbacks = ["espeak-ng voice"] if inputs["platform"] == "espeak" else []
    context.fallbacks.extend(fallbacks)
    key = _store(narration.path, context.key("narration.wav"))
    return {"narration": key}, {
        "duration_ms": narration.duration_ms,
        "sentences": [vars(sentence) for sentence in narration.sentences],
        "fallbacks": fallbacks,
    }


def _brand(job: Job) -> dict:
    return dict(job.account.extra) if job.account else {}


def _logo_plan(context: RenderContext) -> compose.Plan:
    """The parts of the composition plan that decide where the logo goes."""
    job = context.job
    width, height = job.frame_size
    return compose.Plan(
        width=width, height=height, visuals=[], narration_path=Path(""),
        logo_path=Path("logo") if job.account and job.account.logo else None,
        logo_corner=_brand(job).get("logo_corner", "top-right"),
    )


def _step_subtitles(context: RenderContext, inputs: dict | None):
    job = context.job
    width, height = job.frame_size
    if inputs is None:
        return {
            "sentences": [vars(sentence) for sentence in context.narration.sentences],
            "brand": _brand(job),
            "size": [width, height],
            "logo_box": compose.logo_box(_logo_plan(context)),
        }
    style = subtitles.style_from_brand(inputs["brand"], width=width, height=height)
    logo_box = inputs["logo_box"]
    cues = subtitles.make_cues(
        context.narration.sentences,
        font_path=default_font_path(),
        font_size=style.font_size,
        max_width_px=subtitles.safe_text_width(width, style, logo_box),
    )
    srt_path = context.workdir / "subtitles.srt"
    ass_path = context.workdir / "subtitles.ass"
    subtitles.write_srt(cues, srt_path)
    subtitles.write_ass(cues, ass_path, width=width, height=height, style=style, logo_box=logo_box)
    return {
        "srt": _store(srt_path, context.key("subtitles.srt")),
        "ass": _store(ass_path, context.key("subtitles.ass")),
    }, {"cues": len(cues)}


def _step_segments(context: RenderContext, inputs: dict | None):
    job = context.job
    if inputs is None:
        return {
            "sentences": [vars(sentence) for sentence in context.narration.sentences],
            "duration_ms": context.narration.duration_ms,
            "target_ms": int(job.extra.get("segment_target_ms") or settings.SEGMENT_TARGET_MS),
            "topic": job.topic_id,
            "ratio": _clip_ratio(job),
        }
    segments = split.group_segments(
        context.narration.sentences, target_ms=inputs["target_ms"], duration_ms=inputs["duration_ms"]
    )
    _segments_save(job, segments)
    return {}, {"segments": len(segments)}


def _clip_ratio(job: Job) -> float:
    if "real_clip_ratio" in job.extra:
        return float(job.extra["real_clip_ratio"])
    return job.topic.real_clip_ratio if job.topic else 0.0


@transaction.atomic
def _segments_save(job: Job, segments: list[split.Segment]) -> None:
    """Replace the job's splits, keeping pictures and clips of splits whose text is unchanged."""
    previous = {split_row.text: split_row for split_row in job.splits.all()}
    topic = job.topic
    job.splits.all().delete()
    rows = []
    for segment in segments:
        kept = previous.get(segment.text)
        prompt = kept.prompt if kept else template_prompt(
            prefix=topic.prompt_image_prefix if topic else "",
            image_prompt=topic.prompt_gen_image if topic else "",
            text=segment.text,
        )
        rows.append(JobSplit(
            job=job, index=segment.index, start_ms=segment.start_ms, end_ms=segment.end_ms,
            text=segment.text, prompt=prompt,
            images=kept.images if kept else [], selected=kept.selected if kept else "",
            clip=kept.clip if kept else None,
        ))
    JobSplit.objects.bulk_create(rows)
    if not any(row.clip_id for row in rows):
        _assign_clips(job, rows)


def _assign_clips(job: Job, rows: list[JobSplit]) -> None:
    library = list(StockClip.objects.visible_to(job.owner) if job.owner else StockClip.objects.filter(owner=None))
    if not library:
        return
    choices = [clips.ClipChoice(id=clip.pk, duration_ms=clip.duration_ms, tags=clip.tag_set) for clip in library]
    wanted = job.topic.tag_set if job.topic else set()
    assignment = clips.assign_clips(len(rows), ratio=_clip_ratio(job), clips=choices, seed=job.pk, wanted_tags=wanted)
    for row in rows:
        if row.index in assignment:
            row.clip_id = assignment[row.index]
            row.save(update_fields=["clip", "updated_at"])


def _step_pictures(context: RenderContext, inputs: dict | None):
    job = context.job
    width, height = job.frame_size
    splits = list(job.splits.order_by("index"))
    palette = job.topic.palette if job.topic else []
    if inputs is None:
        return {
            "splits": [(s.index, s.text, s.selected, s.clip_id) for s in splits],
            "palette": palette,
            "size": [width, height],
        }
    fallbacks: list[str] = []
    for number, split_row in enumerate(splits):
        if context.cancel():
            raise Cancelled("cancelled by an operator")
        if split_row.clip_id:
            fallbacks.append("clip library")
        elif not split_row.selected or not default_storage.exists(split_row.selected):
            card_hash = _hash({"text": split_row.text, "palette": palette, "size": [width, height]})[:16]
            key = f"jobs/{job.pk}/pictures/{split_row.index:03d}-card-{card_hash}.png"
            if not default_storage.exists(key):
                local = context.workdir / f"card-{split_row.index:03d}.png"
                cards.render_card(split_row.text, width=width, height=height, palette=palette,
                                  out_path=local, seed=job.pk * 1000 + split_row.index)
                key = _store(local, key)
            split_row.images = [image for image in split_row.images if image.get("key") != key]
            split_row.images.append({"key": key, "seed": None, "source": "card"})
            split_row.selected = key
            split_row.save(update_fields=["images", "selected", "updated_at"])
            fallbacks.append("picture cards")
        execution_report(context.execution, step="pictures", fraction=(number + 1) / len(splits),
                         message=f"Pictures {number + 1}/{len(splits)}")
    context.fallbacks.extend(fallbacks)
    return {}, {"fallbacks": sorted(set(fallbacks))}


def _step_compose(context: RenderContext, inputs: dict | None):
    job = context.job
    width, height = job.frame_size
    splits = list(job.splits.select_related("clip").order_by("index"))
    brand = _brand(job)
    music = job.extra.get("music") or settings.BACKGROUND_MUSIC
    if inputs is None:
        return {
            "narration": context.execution.results.get("narration"),
            "subtitles": context.execution.results.get("ass"),
            "visuals": [(s.start_ms, s.end_ms, s.clip.file.name if s.clip else s.selected) for s in splits],
            "logo": _file_digest(job.account.logo) if job.account else "",
            "brand": brand,
            "texts": [job.extra.get(name, "") for name in ("index_text", "title_text", "desc_text")],
            "music": music,
            "h2v": bool(job.extra.get("h2v")),
            "size": [width, height],
        }
    visuals = []
    for split_row in splits:
        if split_row.clip:
            path, kind = _fetch(context, split_row.clip.file.name), "clip"
        else:
            path, kind = _fetch(context, split_row.selected), "still"
        visuals.append(compose.Visual(path=path, kind=kind, start_ms=split_row.start_ms, end_ms=split_row.end_ms))
    logo_path = None
    if job.account and job.account.logo:
        logo_path = _fetch(context, job.account.logo.name)
    transitions = brand.get("transition_types") or ["fade"]
    plan = compose.Plan(
        width=width,
        height=height,
        visuals=visuals,
        narration_path=_fetch(context, inputs["narration"]),
        subtitles_path=_fetch(context, inputs["subtitles"]),
        logo_path=logo_path,
        logo_corner=brand.get("logo_corner", "top-right"),
        music_path=Path(music) if music else None,
        transition=transitions[0] if brand.get("enable_transition", True) else "none",
        transition_s=float(brand.get("transition_s", 0.5)),
        texts=_text_overlays(job),
        fps=settings.VIDEO_FPS,
        seed=job.pk,
        h2v=bool(job.extra.get("h2v")),
        preset=settings.VIDEO_PRESET,
    )
    out_path = context.workdir / "video.mp4"
    compose.render(
        plan, out_path,
        on_progress=lambda fraction: execution_report(
            context.execution, step="compose", fraction=fraction, message="Composing the video"
        ),
        cancel=context.cancel,
        timeout=settings.FFMPEG_TIMEOUT_S,
    )
    return {"video": _store(out_path, context.key("video.mp4"))}, {}


def _text_overlays(job: Job) -> list[compose.TextOverlay]:
    overlays = []
    if job.extra.get("index_text"):
        overlays.append(compose.TextOverlay(text=str(job.extra["index_text"]), position="top"))
    if job.extra.get("title_text"):
        overlays.append(compose.TextOverlay(text=str(job.extra["title_text"]), position="center", end_ms=4000))
    if job.extra.get("desc_text"):
        overlays.append(compose.TextOverlay(text=str(job.extra["desc_text"]), position="center",
                                            start_ms=1000, end_ms=4000))
    return overlays


def _step_cover(context: RenderContext, inputs: dict | None):
    job = context.job
    width, height = job.frame_size
    title = job.publish_title or job.title
    if inputs is None:
        return {"video": context.execution.results.get("video"), "title": title}
    video = _fetch(context, inputs["video"])
    frame = compose.extract_frame(video, 1.0, context.workdir / "cover-frame.png")
    cover = compose.make_cover(frame, title, context.workdir / "cover.jpg", width=width, height=height)
    return {"cover": _store(cover, context.key("cover.jpg"))}, {}


# ---------------------------------------------------------------- clip library


def clip_import(*, path: Path, owner=None, tags: str = "", source: str = "", licence: str = "") -> StockClip:
    """Add a video file to the clip library after checking that ffprobe can read it."""
    from media_engine import ffmpeg

    info = ffmpeg.probe(path)
    video = next((s for s in info.get("streams", []) if s.get("codec_type") == "video"), None)
    if video is None:
        raise MediaError(f"{path.name} has no video stream")
    clip = StockClip(
        owner=owner, title=path.stem, tags=tags, source=source, licence=licence,
        duration_ms=int(float(info["format"]["duration"]) * 1000),
        width=int(video.get("width", 0)), height=int(video.get("height", 0)),
    )
    with open(path, "rb") as handle:
        clip.file.save(path.name, File(handle), save=False)
    clip.save()
    return clip
