"""Jobs: creating them, and rendering them step by step.

The render is one readable loop (`execution_run`) over the steps in STEPS. Each step
computes a hash of its inputs; when an earlier run of the same job recorded the same hash
and its stored outputs still exist, the step is reused instead of re-run. That makes a
rerun after a crash cheap, and a changed picture re-runs composition only.
"""

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
from datetime import datetime, timedelta
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asgiref.sync import async_to_sync
from botocore.exceptions import BotoCoreError, ClientError
from channels.layers import get_channel_layer
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Min, Q, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from media_engine import cards, clips, compose, split, subtitles, tts
from media_engine.errors import Cancelled, MediaError
from media_engine.fonts import default_font_path
from media_engine.prompts import build_prompts
from media_engine.sentences import Narration, TimedSentence, split_sentences

from .models import ACTIVE_STATUSES, ExecutionStatus, Job, JobExecution, JobSplit, StockClip
from .validation import check_content, clean_job_input

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
    """Queue a render. The worker task is sent once the execution is committed.

    Tasks carry no execution id: each one runs the best waiting execution (lowest runorder,
    then oldest), so priority holds however many workers take tasks at once.
    """
    from django_q.tasks import async_task

    with transaction.atomic():
        execution = execution_create(job=job)
        if execution.status == ExecutionStatus.PENDING:
            transaction.on_commit(lambda: async_task("jobs.tasks.run_next_execution", cluster=settings.RENDER_CLUSTER))
    return execution


@transaction.atomic
def job_increase_priority(*, job: Job) -> Job:
    """Put the job ahead of everything queued."""
    lowest = Job.objects.alive().exclude(pk=job.pk).aggregate(lowest=Min("runorder"))["lowest"]
    if lowest is not None and job.runorder >= lowest:
        job.runorder = lowest - 1
        job.save(update_fields=["runorder", "updated_at"])
    return job


def execution_cancel(*, execution: JobExecution) -> JobExecution:
    """A waiting execution is cancelled at once; a running one stops at its next progress point."""
    updated = JobExecution.objects.filter(pk=execution.pk, status=ExecutionStatus.PENDING).update(
        status=ExecutionStatus.CANCELLED, detail="Cancelled before it started", finished_at=timezone.now(),
        cancel_requested=True,
    )
    if not updated:
        JobExecution.objects.filter(pk=execution.pk, status=ExecutionStatus.RUNNING).update(cancel_requested=True)
    execution.refresh_from_db()
    execution_publish(execution)
    return execution


def execution_claim(*, execution: JobExecution) -> bool:
    """Take a PENDING execution (or a RUNNING one whose worker went silent) for this process."""
    stale_before = timezone.now() - timedelta(seconds=settings.EXECUTION_STALE_S)
    now = timezone.now()
    claimable = Q(status=ExecutionStatus.PENDING) | Q(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, updated_at__lt=stale_before),
        status=ExecutionStatus.RUNNING,
    )
    # Compare-and-set on the status and heartbeat we saw: of two workers, only one wins.
    claimed = JobExecution.objects.filter(
        claimable, pk=execution.pk, status=execution.status, heartbeat_at=execution.heartbeat_at,
        cancel_requested=False,
    ).update(
        status=ExecutionStatus.RUNNING, worker_host=socket.gethostname(), heartbeat_at=now, updated_at=now,
        started_at=Coalesce("started_at", Value(now)),
        # A taken-over or reset execution (it had a worker) counts one more attempt.
        retry_count=F("retry_count") + (1 if execution.status == ExecutionStatus.RUNNING or execution.worker_host else 0),
    )
    if claimed:
        execution.refresh_from_db()
    return bool(claimed)


def execution_claim_next() -> JobExecution | None:
    stale_before = timezone.now() - timedelta(seconds=settings.EXECUTION_STALE_S)
    candidates = (
        JobExecution.objects.filter(job__deleted_at__isnull=True, cancel_requested=False)
        .filter(
            Q(status=ExecutionStatus.PENDING)
            | Q(Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, updated_at__lt=stale_before),
                status=ExecutionStatus.RUNNING)
        )
        .order_by("job__runorder", "created_at", "id")
        .select_related("job")
    )
    for execution in candidates[:20]:
        if execution_claim(execution=execution):
            return execution
    return None


def execution_run_next() -> JobExecution | None:
    """Claim the best waiting execution and render it; None when nothing waits."""
    execution = execution_claim_next()
    if execution is not None:
        execution_run(execution=execution)
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
    execution.save(update_fields=["progress", "current_step", "detail", "heartbeat_at", "steps",
                                  "retry_count", "updated_at"])
    execution_publish(execution)


def execution_publish(execution: JobExecution) -> None:
    """Tell listeners (websocket progress views, a command's progress bar) about the execution.

    Through the channel layer: channels-redis reaches browsers from any worker process;
    without Redis the consumers read the database instead (see jobs.consumers).
    """
    listener = _listeners.get(execution.pk)
    if listener is not None:
        listener(execution)
    layer = get_channel_layer()
    if layer is None or not settings.REDIS_URL:
        return
    event = execution_event(execution)
    message = {"type": "job.event", "event": event}
    try:
        async_to_sync(layer.group_send)(f"job-{execution.job_id}", message)
        if execution.job.owner_id:
            async_to_sync(layer.group_send)(f"user-{execution.job.owner_id}", message)
        async_to_sync(layer.group_send)("all-jobs", message)
    except Exception:  # progress must never break a render (e.g. Redis restarting)
        logger.warning("could not publish progress of execution %s", execution.pk, exc_info=True)


def _cancel_check(execution: JobExecution, deadline: float) -> Callable[[], bool]:
    """True once an operator asked to cancel, or the time limit passed (checked about once a second)."""
    last_check = [0.0]
    stop = [False]

    def check() -> bool:
        now = time.monotonic()
        if not stop[0] and now - last_check[0] >= PROGRESS_SAVE_INTERVAL_S:
            last_check[0] = now
            stop[0] = now >= deadline or JobExecution.objects.filter(
                pk=execution.pk, cancel_requested=True
            ).exists()
        return stop[0]

    return check


# ---------------------------------------------------------------- the render


@dataclass
class RenderContext:
    """What the steps of one execution share."""

    execution: JobExecution
    job: Job
    workdir: Path
    cancel: Callable[[], bool]
    deadline: float
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
    if execution.status != ExecutionStatus.RUNNING and not execution_claim(execution=execution):
        raise ValidationError(f"Execution {execution.pk} is {execution.status}; it cannot be run now.")
    execution.error = ""
    execution.save(update_fields=["error", "updated_at"])
    elapsed = (timezone.now() - execution.started_at).total_seconds()
    deadline = time.monotonic() + settings.EXECUTION_TIME_LIMIT_S - max(0.0, elapsed)
    context = RenderContext(
        execution=execution,
        job=job,
        workdir=Path(settings.WORK_ROOT) / f"job-{job.pk}" / f"execution-{execution.pk}",
        cancel=_cancel_check(execution, deadline),
        deadline=deadline,
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
        if time.monotonic() >= deadline:
            minutes = settings.EXECUTION_TIME_LIMIT_S / 60
            message = f"Stopped: the time limit of {minutes:g} min was reached during {current}"
            _finish(execution, ExecutionStatus.FAILED, message, error=message)
        else:
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
    work_cache_prune(unused_days=settings.WORK_CACHE_DAYS)
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
    # Never write cancel_requested back: an operator may have set it meanwhile.
    execution.save(update_fields=["status", "detail", "error", "finished_at", "progress", "steps",
                                  "results", "retry_count", "updated_at"])
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
        outputs, data = _with_retries(context, step, lambda: run_step(context, inputs))
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


def _with_retries(context: RenderContext, step: str, attempt_step: Callable[[], Any]) -> Any:
    """Retry transient failures with exponential back-off; permanent ones fail at once."""
    attempts = max(1, settings.EXECUTION_MAX_ATTEMPTS)
    for attempt in range(1, attempts + 1):
        try:
            return attempt_step()
        except (OSError, BotoCoreError, ClientError) as error:
            failure = MediaError(f"storage or network error: {error}", permanent=False)
        except MediaError as error:
            if error.permanent:
                raise
            failure = error
        if attempt == attempts:
            raise MediaError(f"{failure} (gave up after {attempts} attempts)", permanent=False)
        wait = settings.EXECUTION_BACKOFF_S * 2 ** (attempt - 1)
        context.execution.retry_count += 1
        execution_report(context.execution, step=step, fraction=0.0, force=True,
                         message=f"{step}: {failure}; retrying in {wait:g} s (attempt {attempt + 1}/{attempts})")
        _sleep_unless_cancelled(context, wait)
    raise AssertionError("unreachable")


def _sleep_unless_cancelled(context: RenderContext, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if context.cancel():
            raise Cancelled("cancelled while waiting to retry")
        time.sleep(min(0.2, max(0.0, end - time.monotonic())))


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
    from batchvideo.storage import storage_download

    target = Path(settings.WORK_ROOT) / "cache" / key
    # A copy whose size differs from the stored file is stale (a logo replaced under its name).
    if not target.exists() or target.stat().st_size != default_storage.size(key):
        storage_download(default_storage, key, target)
    else:
        target.touch()  # used now: work_cache_prune keeps it
    return target


def work_cache_prune(*, unused_days: float) -> int:
    """Delete this host's work files unused for `unused_days` (the storage keeps everything that
    matters), then the folders left empty; returns how many files went. 0 days: keep everything."""
    if unused_days <= 0:
        return 0
    cutoff = time.time() - unused_days * 86400
    removed = 0
    for folder, _folders, files in os.walk(settings.WORK_ROOT, topdown=False):
        for name in files:
            path = Path(folder) / name
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # another worker on this host pruned it first
                continue
        if Path(folder) != Path(settings.WORK_ROOT):
            with contextlib.suppress(OSError):  # not empty, or gone already
                Path(folder).rmdir()
    return removed


def _store(local_path: Path, key: str) -> str:
    """Save a file under exactly `key` (replacing an older file there) and return the key.

    The key is returned (and so recorded) only once the stored size matches the local file:
    an interrupted upload raises a transient error instead. S3 replaces an object in one step
    (a failed multipart upload is aborted), so there the old file is not deleted first.
    """
    if not getattr(default_storage, "file_overwrite", False) and default_storage.exists(key):
        default_storage.delete(key)
    with open(local_path, "rb") as handle:
        saved = default_storage.save(key, File(handle, name=local_path.name))
    if default_storage.size(saved) != local_path.stat().st_size:
        raise OSError(f"storing {saved} was cut short; it is stored again on retry")
    # Seed this worker's cache: a later step (the cover reads the video) needs no download.
    cached = Path(settings.WORK_ROOT) / "cache" / saved
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(local_path, cached)
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
            "sentences": split_sentences(check_content(job.content)),
            "platform": job.language.platform,
            "language": job.language.code,
            "voice": job.voice.name if job.voice else "",
            "reference": _file_digest(job.voice.reference) if job.voice else "",
            "speed": job.speech_speed,
            "uploaded": _file_digest(job.narration_audio),
        }
    if inputs["uploaded"]:
        return _narration_from_upload(context, inputs)
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


def _narration_from_upload(context: RenderContext, inputs: dict):
    """An uploaded narration: FunASR finds when each of the script's sentences is spoken."""
    from media_engine import asr, ffmpeg

    if not settings.FUNASR_MODEL_DIR:
        raise MediaError("this job has an uploaded narration, which needs FUNASR_MODEL_DIR (a local Paraformer)")
    job = context.job
    upload = _fetch(context, job.narration_audio.name)
    narration_path = context.workdir / "narration.wav"
    ffmpeg.run(["-i", upload, "-vn", "-ac", "1", "-ar", str(tts.SAMPLE_RATE), "-c:a", "pcm_s16le", narration_path],
               timeout=600, cancel=context.cancel)
    duration_ms = int(ffmpeg.duration(narration_path) * 1000)
    execution_report(context.execution, step="narration", fraction=0.2, message="Recognising the narration")
    recognised = asr.transcribe(
        narration_path, model_dir=Path(settings.FUNASR_MODEL_DIR),
        vad_dir=Path(settings.FUNASR_VAD_DIR) if settings.FUNASR_VAD_DIR else None,
        punc_dir=Path(settings.FUNASR_PUNC_DIR) if settings.FUNASR_PUNC_DIR else None,
        words=True,  # per-character times align the script exactly
    )
    sentences = asr.align(inputs["sentences"], recognised, duration_ms=duration_ms)
    context.narration = Narration(path=narration_path, duration_ms=duration_ms, sentences=sentences)
    key = _store(narration_path, context.key("narration.wav"))
    return {"narration": key}, {
        "duration_ms": duration_ms,
        "sentences": [vars(sentence) for sentence in sentences],
        "fallbacks": [],
    }


def _brand(job: Job) -> dict:
    return dict(job.account.extra) if job.account else {}


def _logo_plan(context: RenderContext) -> compose.Plan:
    """The parts of the composition plan that decide where the logo goes."""
    job = context.job
    width, height = job.frame_size
    return compose.Plan(
        width=width, height=height, visuals=[], narration_path=Path(""),
        logo_path=_fetch(context, job.account.logo.name) if job.account and job.account.logo else None,
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
            "logo": _file_digest(job.account.logo) if job.account else "",
        }
    style = subtitles.style_from_brand(inputs["brand"], width=width, height=height)
    logo_box = compose.logo_box(_logo_plan(context))
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
    new_texts = [segment.text for segment in segments if segment.text not in previous]
    built = build_prompts(
        new_texts, prefix=topic.prompt_image_prefix if topic else "",
        image_prompt=topic.prompt_gen_image if topic else "", llm=_llm_settings(),
    ) if new_texts else None
    new_prompts = dict(zip(new_texts, built.prompts)) if built else {}
    rows = []
    for segment in segments:
        kept = previous.get(segment.text)
        prompt = kept.prompt if kept else new_prompts[segment.text]
        rows.append(JobSplit(
            job=job, index=segment.index, start_ms=segment.start_ms, end_ms=segment.end_ms,
            text=segment.text, prompt=prompt,
            images=kept.images if kept else [], selected=kept.selected if kept else "",
            clip=kept.clip if kept else None,
        ))
    JobSplit.objects.bulk_create(rows)
    if not any(row.clip_id for row in rows):
        _assign_clips(job, rows)


def _llm_settings() -> dict | None:
    if not (settings.LLM_BASE_URL and settings.LLM_MODEL):
        return None
    return {"base_url": settings.LLM_BASE_URL, "api_key": settings.LLM_API_KEY, "model": settings.LLM_MODEL}


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
        # A card this step made itself is an output, not an input: only a chosen picture counts.
        cards_made = {image["key"] for s in splits for image in s.images if image.get("source") == "card"}
        return {
            "splits": [(s.index, s.text, "" if s.selected in cards_made else s.selected, s.clip_id, s.variant)
                       for s in splits],
            "palette": palette,
            "size": [width, height],
            "prompts": [s.prompt for s in splits],
            "model": settings.FLUX_MODEL_DIR,
            "lora": [job.topic.lora_name, job.topic.lora_weight] if job.topic else None,
        }
    fallbacks: list[str] = []
    if settings.FLUX_MODEL_DIR:
        _generate_pictures(context, [s for s in splits if not s.clip_id and not _has_picture(s)])
    for number, split_row in enumerate(splits):
        if context.cancel():
            raise Cancelled("cancelled by an operator")
        if split_row.clip_id:
            fallbacks.append("clip library")
        elif not _has_picture(split_row):
            card_hash = _hash({"text": split_row.text, "palette": palette, "size": [width, height],
                               "variant": split_row.variant})[:16]
            key = f"jobs/{job.pk}/pictures/{split_row.index:03d}-card-{card_hash}.png"
            if not default_storage.exists(key):
                local = context.workdir / f"card-{split_row.index:03d}.png"
                cards.render_card(split_row.text, width=width, height=height, palette=palette, out_path=local,
                                  seed=job.pk * 1000 + split_row.index + 7919 * split_row.variant)
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


def _has_picture(split_row: JobSplit) -> bool:
    return bool(split_row.selected) and default_storage.exists(split_row.selected)


def _generate_pictures(context: RenderContext, splits: list[JobSplit]) -> None:
    """Candidates from Flux (and the topic's LoRA) for segments without a picture; the first is selected."""
    from media_engine import images

    if not splits:
        return
    job = context.job
    width, height = job.frame_size
    topic = job.topic
    out_dir = Path(settings.WORK_ROOT) / f"job-{job.pk}" / "generated"
    for number, split_row in enumerate(splits):
        # Seeds differ per segment and per "regenerate pictures"; each is recorded.
        [candidates] = images.generate_candidates(
            [split_row.prompt],
            model_dir=Path(settings.FLUX_MODEL_DIR), width=width, height=height,
            candidates=settings.IMAGE_CANDIDATES, out_dir=out_dir, steps=settings.IMAGE_STEPS,
            seed=job.pk * 1_000_000 + split_row.index * 10_000 + split_row.variant * 100,
            lora_dir=Path(settings.LORA_DIR) if settings.LORA_DIR and topic and topic.lora_name else None,
            lora_name=topic.lora_name if topic else "", lora_weight=topic.lora_weight if topic else 100,
            on_progress=lambda fraction, number=number: execution_report(
                context.execution, step="pictures", fraction=(number + fraction) / len(splits) * 0.95,
                message=f"Generating pictures {number + 1}/{len(splits)}",
            ),
            cancel=context.cancel,
        )
        added = []
        for picture in candidates:
            key = _store(picture.path, f"jobs/{job.pk}/pictures/{split_row.index:03d}-flux-{picture.seed}.png")
            added.append({"key": key, "seed": picture.seed, "source": "flux"})
        split_row.images = [*split_row.images, *added]
        split_row.selected = added[0]["key"] if added else split_row.selected
        split_row.save(update_fields=["images", "selected", "updated_at"])


def _step_compose(context: RenderContext, inputs: dict | None):
    job = context.job
    width, height = job.frame_size
    splits = list(job.splits.select_related("clip").order_by("index"))
    brand = _brand(job)
    stored_music = job.extra.get("music")  # a storage key; BACKGROUND_MUSIC is the hosts' own file
    music = stored_music or settings.BACKGROUND_MUSIC
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
            "presenter": _presenter_wanted(job),
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
    music_path = Path(music) if music else None
    if stored_music:
        if not default_storage.exists(stored_music):
            raise MediaError(f"music {stored_music} is not in storage; put the file there first")
        music_path = _fetch(context, stored_music)
    transitions = brand.get("transition_types") or ["fade"]
    plan = compose.Plan(
        width=width,
        height=height,
        visuals=visuals,
        narration_path=_fetch(context, inputs["narration"]),
        subtitles_path=_fetch(context, inputs["subtitles"]),
        logo_path=logo_path,
        logo_corner=brand.get("logo_corner", "top-right"),
        music_path=music_path,
        transition=transitions[0] if brand.get("enable_transition", True) else "none",
        transition_s=float(brand.get("transition_s", 0.5)),
        texts=_text_overlays(job),
        fps=settings.VIDEO_FPS,
        seed=job.pk,
        h2v=bool(job.extra.get("h2v")),
        preset=settings.VIDEO_PRESET,
    )
    out_path = context.workdir / "video.mp4"
    share = 0.85 if inputs["presenter"] else 1.0
    compose.render(
        plan, out_path,
        on_progress=lambda fraction: execution_report(
            context.execution, step="compose", fraction=fraction * share, message="Composing the video"
        ),
        cancel=context.cancel,
        timeout=settings.FFMPEG_TIMEOUT_S,
    )
    if inputs["presenter"]:
        out_path = _add_presenter(context, out_path, plan.narration_path, brand)
    return {"video": _store(out_path, context.key("video.mp4"))}, {}


def _presenter_wanted(job: Job) -> bool:
    return bool(job.extra.get("enable_digital_human")) and bool(settings.PRESENTER_URL)


def _add_presenter(context: RenderContext, video_path: Path, narration_path: Path, brand: dict) -> Path:
    """The talking presenter from the presenter server, placed as the brand profile says."""
    from media_engine import presenter

    clip = presenter.fetch_presenter_clip(
        narration_path, url=settings.PRESENTER_URL, out_path=context.workdir / "presenter.mp4"
    )
    timing = brand.get("human_config") or {}
    mode = brand.get("human_insertion_mode", "pip")
    out_path = context.workdir / "video-presenter.mp4"
    presenter.place_presenter(
        video_path, clip, out_path, mode="fullscreen" if mode == "fullscreen" else "pip",
        start_s=float(timing.get("duration", 0)), end_s=float(timing.get("end_duration", 0)),
        on_progress=lambda fraction: execution_report(
            context.execution, step="compose", fraction=0.85 + 0.15 * fraction, message="Placing the presenter"
        ),
        cancel=context.cancel,
    )
    return out_path


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
    cover_prompt = job.topic.prompt_cover_image if job.topic and settings.FLUX_MODEL_DIR else ""
    if inputs is None:
        return {"video": context.execution.results.get("video"), "title": title, "prompt": cover_prompt,
                "model": settings.FLUX_MODEL_DIR}
    if cover_prompt:
        frame = _generate_cover(context, cover_prompt)
    else:
        frame = compose.extract_frame(_fetch(context, inputs["video"]), 1.0, context.workdir / "cover-frame.png")
    cover = compose.make_cover(frame, title, context.workdir / "cover.jpg", width=width, height=height)
    return {"cover": _store(cover, context.key("cover.jpg"))}, {}


def _generate_cover(context: RenderContext, prompt: str) -> Path:
    """The cover picture from the topic's cover prompt (Flux and the topic's LoRA)."""
    from media_engine import images

    job = context.job
    width, height = job.frame_size
    topic = job.topic
    return images.cover_image(
        prompt, model_dir=Path(settings.FLUX_MODEL_DIR), width=width, height=height, seed=job.pk,
        out_path=context.workdir / "cover-picture.png", steps=settings.IMAGE_STEPS,
        lora_dir=Path(settings.LORA_DIR) if settings.LORA_DIR and topic.lora_name else None,
        lora_name=topic.lora_name, lora_weight=topic.lora_weight, cancel=context.cancel,
    )


# ---------------------------------------------------------------- background music


def music_save(*, user, audio: File) -> dict[str, Any]:
    """Store a checked audio file as the user's background music; its key goes into `extra.music`."""
    return _music_entry(default_storage.save(f"music/{user.pk.hex}/{Path(audio.name).name}", audio))


def _music_entry(key: str) -> dict[str, Any]:
    return {"key": key, "size": default_storage.size(key), "url": artifact_url(key)}


def music_list(*, user) -> list[dict[str, Any]]:
    """The user's background music, newest first: key, size and a signed link."""
    folder = f"music/{user.pk.hex}"
    try:
        _folders, names = default_storage.listdir(folder)
    except FileNotFoundError:  # nothing uploaded yet (local files: no folder)
        return []
    keys = [f"{folder}/{name}" for name in names]
    stamped = sorted(((default_storage.get_modified_time(key), key) for key in keys), reverse=True)
    return [_music_entry(key) for _when, key in stamped]


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


# ---------------------------------------------------------------- storyboard edits


@transaction.atomic
def split_update(*, split_row: JobSplit, text: str | None = None, prompt: str | None = None) -> JobSplit:
    """Change a segment's text or prompt. A new text goes into the job's script too, so the
    next render re-narrates just the changed sentences and the subtitles stay exact."""
    if prompt is not None:
        split_row.prompt = prompt.strip()[:2000]
    if text is not None:
        new_text = check_content(text)
        old_text = split_row.text
        if new_text != old_text:
            job = split_row.job
            split_row.text = new_text
            if old_text and old_text in job.content:
                job.content = job.content.replace(old_text, new_text, 1)
            else:
                texts = [new_text if row.pk == split_row.pk else row.text for row in job.splits.order_by("index")]
                job.content = "\n".join(texts)
            job.content = check_content(job.content)
            job.save(update_fields=["content", "updated_at"])
    split_row.save()
    return split_row


@transaction.atomic
def split_regenerate(*, split_row: JobSplit) -> JobSplit:
    """New pictures for a segment on the next render: generated ones are dropped, uploads kept."""
    split_row.images = [image for image in split_row.images if image.get("source") not in ("card", "flux")]
    split_row.selected = ""
    split_row.variant += 1
    split_row.save(update_fields=["images", "selected", "variant", "updated_at"])
    return split_row


@transaction.atomic
def split_choose_image(*, split_row: JobSplit, key: str) -> JobSplit:
    """Show one of the segment's candidate pictures (instead of a clip)."""
    if key not in {image.get("key") for image in split_row.images}:
        raise ValidationError(f"{key} is not one of this segment's pictures.")
    split_row.selected = key
    split_row.clip = None
    split_row.save(update_fields=["selected", "clip", "updated_at"])
    return split_row


@transaction.atomic
def split_use_clip(*, split_row: JobSplit, clip: StockClip | None, user=None) -> JobSplit:
    """Show a real clip from the library for this segment (None goes back to the picture)."""
    if clip is not None and user is not None and not clip.is_visible_to(user):
        raise ValidationError(f"Clip {clip.pk} does not exist or is not yours.")
    split_row.clip = clip
    split_row.save(update_fields=["clip", "updated_at"])
    return split_row


@transaction.atomic
def split_add_image(*, split_row: JobSplit, uploaded, select: bool = True) -> JobSplit:
    """Add an uploaded picture to the segment's candidates (and select it)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(uploaded) as picture:
            picture.verify()
    except (UnidentifiedImageError, OSError) as error:
        raise ValidationError("The upload is not a readable picture.") from error
    uploaded.seek(0)
    suffix = Path(getattr(uploaded, "name", "") or "picture.png").suffix.lower()
    if suffix not in {".png", ".jpg", ".jpeg", ".webp"}:
        suffix = ".png"
    key = default_storage.save(
        f"jobs/{split_row.job_id}/pictures/{split_row.index:03d}-upload-{uuid.uuid4().hex[:8]}{suffix}", uploaded
    )
    split_row.images = [*split_row.images, {"key": key, "seed": None, "source": "upload"}]
    if select:
        split_row.selected = key
        split_row.clip = None
    split_row.save(update_fields=["images", "selected", "clip", "updated_at"])
    return split_row


MEDIA_SIGNING_SALT = "batchvideo.media"


def artifact_url(key: str) -> str:
    """A signed link to a stored file that expires after SIGNED_URL_EXPIRE_SECONDS.

    S3 signs it itself; for local files the link carries a signed token that
    `jobs.views.signed_media` checks (so API clients need no admin session).
    """
    if not key:
        return ""
    if hasattr(default_storage, "bucket_name"):
        return default_storage.url(key, expire=settings.SIGNED_URL_EXPIRE_SECONDS)
    token = signing.TimestampSigner(salt=MEDIA_SIGNING_SALT).sign_object(key)
    return reverse("signed-media", args=[token])


def signed_media_key(token: str) -> str:
    """The storage key inside a local signed link; raises signing.BadSignature when expired or forged."""
    return signing.TimestampSigner(salt=MEDIA_SIGNING_SALT).unsign_object(
        token, max_age=settings.SIGNED_URL_EXPIRE_SECONDS
    )


def execution_urls(execution: JobExecution | None) -> dict[str, str]:
    if execution is None:
        return {}
    return {name: artifact_url(key) for name, key in execution.results.items() if isinstance(key, str)}


# ---------------------------------------------------------------- live progress


def step_durations(executions, *, recent: int) -> dict[str, list[float]]:
    """Durations of the steps that really ran ("done", not "reused") in the newest `recent` executions."""
    durations: dict[str, list[float]] = {}
    for steps in executions.values_list("steps", flat=True)[:recent]:
        for step, record in (steps or {}).items():
            ran = isinstance(record, dict) and record.get("status") == "done"
            if ran and record.get("duration_s") is not None:
                try:
                    durations.setdefault(step, []).append(float(record["duration_s"]))
                except (TypeError, ValueError):
                    continue
    return durations


def execution_eta(execution: JobExecution) -> float | None:
    """Seconds left, from the median step durations of the last successful renders."""
    if not execution.is_active:
        return None
    recent = JobExecution.objects.filter(status=ExecutionStatus.SUCCESS).order_by("-finished_at")
    durations = step_durations(recent, recent=20)
    if not any(durations.get(name) for name in STEPS):
        return None
    typical = {name: sorted(values)[len(values) // 2] if (values := durations.get(name)) else 0.0
               for name in STEPS}
    remaining = 0.0
    for name in STEPS:
        record = execution.steps.get(name, {})
        if record.get("status") in ("done", "reused"):
            continue
        if record.get("status") == "running" and record.get("started_at"):
            elapsed = (timezone.now() - datetime.fromisoformat(record["started_at"])).total_seconds()
            remaining += max(0.0, typical[name] - elapsed)
        else:
            remaining += typical[name]
    return round(remaining, 1)


def execution_event(execution: JobExecution, *, kind: str | None = None) -> dict[str, Any]:
    """One progress event as the websocket and the progress page see it."""
    if kind is None:
        kind = {"SUCCESS": "done", "FAILED": "error", "CANCELLED": "error"}.get(execution.status, "update")
    event: dict[str, Any] = {
        "type": kind,
        "job": execution.job_id,
        "execution": execution.pk,
        "status": execution.status,
        "step": execution.current_step,
        "progress": execution.progress,
        "message": execution.detail,
        "eta_s": execution_eta(execution),
        "steps": {name: {"status": record.get("status"), "duration_s": record.get("duration_s")}
                  for name, record in execution.steps.items()},
        "at": time.time(),  # when it was published (epoch seconds), for latency measurements
    }
    if execution.status == ExecutionStatus.SUCCESS:
        event["urls"] = execution_urls(execution)
    if execution.status in (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED):
        event["message"] = execution.error or execution.detail
    return event


def job_snapshot(job: Job) -> dict[str, Any]:
    """The `init` event for a job: its latest execution, or a job that never rendered."""
    execution = job.latest_execution
    if execution is None:
        return {"type": "init", "job": job.pk, "execution": None, "status": "NEW", "step": "",
                "progress": 0, "message": "Not rendered yet", "eta_s": None, "steps": {}}
    return {**execution_event(execution), "type": "init"}


def ws_ticket_issue(*, user) -> str:
    """A short-lived token an API client passes as ?ticket= when opening a websocket."""
    return signing.TimestampSigner(salt="batchvideo.ws").sign_object({"user": str(user.pk)})


def ws_ticket_user(ticket: str):
    """The user a ticket was issued to, or None when it is forged or older than a minute."""
    from accounts.models import User

    try:
        payload = signing.TimestampSigner(salt="batchvideo.ws").unsign_object(ticket, max_age=WS_TICKET_MAX_AGE_S)
    except signing.BadSignature:
        return None
    return User.objects.filter(pk=payload.get("user"), is_active=True).first()


WS_TICKET_MAX_AGE_S = 60
