"""Jobs and their executions: create, change, delete, queue, prioritise, cancel; a user's
background music; the clip library. The render itself lives in jobs.render.loop."""

from collections.abc import Collection
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Min, Q, QuerySet
from django.utils import timezone

from jobs.files import music_folder, music_folders
from jobs.models import ACTIVE_STATUSES, ExecutionStatus, Job, JobExecution, StockClip
from jobs.render.progress import execution_broadcast
from jobs.render.queue import wake_worker
from jobs.render.steps import STEPS
from jobs.validation import RUNORDER_MIN, check_voice_speaks, clean_job_input
from media_engine.language import detect_language
from media_engine.spoken import language_of
from voices.models import Language, Voice


def job_create(*, user, team, title: str, content: str, **fields: Any) -> Job:
    """A checked job of `team` (None: a shared preset); an uploaded narration is stored first (see
    _store_uploads)."""
    job = job_check(user=user, team=team, fields={"title": title, "content": content, **fields})
    _store_uploads(job)
    job.save()
    return job


def job_check(*, user, team, fields: dict[str, Any], known_bad: Collection[str] = ()) -> Job:
    """The unsaved job `fields` describe, checked by every rule of job_create; one ValidationError names
    every bad field at once. `known_bad`: fields a caller already found bad (the API's types), left
    out of the checks."""
    errors: dict[str, list[ValidationError]] = {}
    try:
        data = clean_job_input(user, fields, team=team)
    except ValidationError as error:
        errors.update(error.error_dict)
        data = {name: value for name, value in fields.items() if name not in error.error_dict}
    owner = user if user is not None and user.is_authenticated else None
    job = Job(**{"owner": owner, "team": team, **data})
    if not errors.keys() & {"language", "voice"}:
        try:
            check_voice_speaks(job.language, job.voice)
        except ValidationError as error:
            errors.update(error.error_dict)
    try:
        job.full_clean(exclude=["owner", "team", *errors, *known_bad])
    except ValidationError as error:
        for name, items in error.error_dict.items():
            errors.setdefault(name, []).extend(items)
    if errors:
        raise ValidationError(errors)
    return job


class BatchRowErrors(ValidationError):
    """Some rows of a batch are invalid: `rows` maps each bad row's index (from 0) to its errors by field."""

    def __init__(self, rows: dict[int, dict[str, list[str]]]) -> None:
        super().__init__(f"{len(rows)} row(s) are invalid; nothing was created.")
        self.rows = rows


def batch_size_check(count: int) -> None:
    """A batch holds 1 to JOBS_BATCH_MAX jobs."""
    if not 1 <= count <= settings.JOBS_BATCH_MAX:
        message = f"Send 1 to {settings.JOBS_BATCH_MAX} jobs in one batch, not {count}."
        raise ValidationError({"jobs": [message]})


def job_check_many(
    *,
    user,
    team,
    rows: list[dict[str, Any] | None],
    row_errors: dict[int, dict[str, list[str]]] | None = None,
) -> list[Job]:
    """Every row checked by job_check, before and outside any transaction (the content check is cheap,
    but a batch of 100 must not hold one open while it runs). `row_errors`: what a caller already found
    wrong in a row (the API's types; None for a row it could not read at all), reported together
    with what the rules find. Raises BatchRowErrors naming every bad row."""
    batch_size_check(len(rows))
    errors: dict[int, dict[str, list[str]]] = {
        index: dict(found) for index, found in (row_errors or {}).items()
    }
    jobs: list[Job] = []
    for index, row in enumerate(rows):
        known = errors.get(index, {})
        if row is None:
            continue
        try:
            jobs.append(job_check(user=user, team=team, fields=row, known_bad=known))
        except ValidationError as error:
            found = (
                error.message_dict if hasattr(error, "error_dict") else {"non_field_errors": error.messages}
            )
            errors[index] = {**known, **found}
    if errors:
        raise BatchRowErrors(dict(sorted(errors.items())))
    return jobs


def job_create_many(
    *,
    user,
    team,
    rows: list[dict[str, Any] | None],
    render: bool = False,
    row_errors: dict[int, dict[str, list[str]]] | None = None,
) -> list[Job]:
    """All or nothing: every row is checked first (job_check_many); when any row is bad, BatchRowErrors
    names each bad row and nothing is created. Else all are created in one transaction and, with
    `render`, queued. Rows carry no uploads (see _store_uploads)."""
    jobs = job_check_many(user=user, team=team, rows=rows, row_errors=row_errors)
    with transaction.atomic():
        for job in jobs:
            job.save()
        if render:
            for job in jobs:
                job_enqueue(job=job)
    return jobs


def language_detect(*, content: str, languages: QuerySet[Language]) -> Language | None:
    """The language among `languages` that `content` is written in (media_engine.language), or None."""
    by_code = {language.code: language for language in languages}
    code = detect_language(content, list(by_code))
    return by_code.get(code) if code else None


def voice_for_language(*, language: Language, voices: QuerySet[Voice]) -> Voice | None:
    """A voice among `voices` made for `language`'s language (same primary subtag), or None."""
    for voice in voices.select_related("language").filter(language__isnull=False):
        if language_of(voice.language.code) == language_of(language.code):
            return voice
    return None


def job_update(*, job: Job, user, **fields: Any) -> Job:
    data = clean_job_input(user, fields, team=fields.get("team", job.team))
    for name, value in data.items():
        setattr(job, name, value)
    check_voice_speaks(job.language, job.voice)
    job.full_clean(exclude=["owner", "team"])
    _store_uploads(job)
    job.save()
    return job


def _store_uploads(job: Job) -> None:
    """Store a new narration upload before the row is written, as Job.save would, but outside it:
    on S3 storing is a network call, and no transaction may wait on one (the row is then one
    statement, atomic on its own). Callers hold no transaction around job_create/job_update
    when they pass an upload."""
    narration = job.narration_audio
    if narration and not narration._committed:
        narration.save(narration.name, narration.file, save=False)


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
            first_step = next(iter(STEPS.values()))
            return JobExecution.objects.create(
                job=job, detail="Waiting for a worker", needs=first_step.needs(job)
            )
    except IntegrityError:
        # Someone else created one between our check and our insert.
        return job.executions.get(status__in=ACTIVE_STATUSES)


def job_enqueue(*, job: Job) -> JobExecution:
    """Queue a render; a worker is woken once the execution is committed."""
    with transaction.atomic():
        execution = execution_create(job=job)
        if execution.status == ExecutionStatus.PENDING:
            transaction.on_commit(lambda: wake_worker(execution.needs))
    return execution


@transaction.atomic
def job_increase_priority(*, job: Job) -> Job:
    """Put the job ahead of everything its team queued, inside RUNORDER_MIN..RUNORDER_MAX: runorder
    orders jobs only inside a team (teams take turns by fair share, jobs.render.fairshare), so only
    the team's own jobs are read or renumbered.

    At the lowest runorder allowed (a client may set it), the team's jobs ahead of the default 0 are
    first renumbered -n..-1 in their order, so the front of its queue always has room and no job
    changes place.
    """
    team = Q(team__isnull=True) if job.team_id is None else Q(team_id=job.team_id)
    others = Job.objects.alive().filter(team).exclude(pk=job.pk)
    lowest = others.aggregate(lowest=Min("runorder"))["lowest"]
    if lowest is None or job.runorder < lowest:
        return job
    if lowest - 1 < RUNORDER_MIN:
        lowest = _queue_renumber_front(others)
    job.runorder = lowest - 1
    job.save(update_fields=["runorder", "updated_at"])
    return job


def _queue_renumber_front(jobs: QuerySet[Job]) -> int:
    """Give the jobs with a negative runorder the runorders -n..-1, keeping their order (ties stay ties);
    return the new lowest."""
    ahead = list(jobs.filter(runorder__lt=0).select_for_update().only("pk", "runorder").order_by("runorder"))
    values = sorted({row.runorder for row in ahead})
    if len(values) >= -RUNORDER_MIN:  # a million different runorders below 0: no room is left
        raise ValidationError("The front of the queue is full: every runorder below 0 is taken.")
    new_values = {value: place - len(values) for place, value in enumerate(values)}
    for row in ahead:
        row.runorder = new_values[row.runorder]
    Job.objects.bulk_update(ahead, ["runorder"], batch_size=500)
    return -len(values)


def execution_cancel(*, execution: JobExecution) -> JobExecution:
    """A waiting execution is cancelled at once; a running one stops at its next progress point."""
    updated = JobExecution.objects.filter(pk=execution.pk, status=ExecutionStatus.PENDING).update(
        status=ExecutionStatus.CANCELLED,
        detail="Cancelled before it started",
        finished_at=timezone.now(),
        cancel_requested=True,
    )
    if not updated:
        JobExecution.objects.filter(pk=execution.pk, status=ExecutionStatus.RUNNING).update(
            cancel_requested=True
        )
    execution.refresh_from_db()
    execution_broadcast(execution)
    return execution


# ---------------------------------------------------------------- background music


def music_save(*, team, audio: File) -> dict[str, Any]:
    """Store a checked audio file as the team's background music; its key goes into `extra.music`."""
    if team is None:
        raise ValidationError("Music belongs to a team: work in one (the X-Team header) to upload it.")
    return _music_entry(default_storage.save(f"{music_folder(team)}/{Path(audio.name).name}", audio))


def _music_entry(key: str) -> dict[str, Any]:
    return {"key": key, "size": default_storage.size(key), "url": default_storage.url(key)}


def music_list(*, team) -> list[dict[str, Any]]:
    """The team's background music, newest first: key, size and a signed link."""
    keys = []
    for folder in music_folders(team):
        try:
            _folders, names = default_storage.listdir(folder)
        except FileNotFoundError:  # nothing uploaded yet (local files: no folder)
            continue
        keys += [f"{folder}/{name}" for name in names]
    stamped = sorted(((default_storage.get_modified_time(key), key) for key in keys), reverse=True)
    return [_music_entry(key) for _when, key in stamped]


# ---------------------------------------------------------------- clip library


def clip_import(
    *, path: Path, owner=None, team=None, tags: str = "", source: str = "", licence: str = ""
) -> StockClip:
    """Add a video file to the clip library after checking that ffprobe can read it."""
    clip = StockClip(owner=owner, team=team, title=path.stem, tags=tags, source=source, licence=licence)
    return clip_set_file(clip=clip, path=path)


def clip_set_file(*, clip: StockClip, path: Path) -> StockClip:
    """Store a video file as the clip's (under the file's own name) with the duration and size
    ffprobe reads from it (and its shots and thumbnail: jobs.footage.stock), and save the clip."""
    from jobs.footage import stock

    return stock.clip_store_file(clip=clip, path=path)
