"""Cleaning up stored files: old executions, old jobs, unused chunks.

The management commands (run_jobs, reset_stuck_jobs, cleanup_old_jobs, cleanup_storage,
job_health) and the django-q2 schedules call these functions; they hold no logic themselves.
One module, past 500 lines: running, clean-ups, health and schedules share one view of
executions and their files; its sections are the places to split it along when it grows.

Stored files: an execution writes its artifacts under `jobs/<job_id>/<execution_id>/` and lists
their keys in `results` and in each step record's `outputs`. A resumed render reuses an older
execution's outputs by key, so a file may be referenced by a newer execution than the one whose
folder holds it: clean-ups never remove a key that a kept execution (or a segment) references.
An execution "holds files" while its `results` are not empty; clearing its files empties them.

Clean-ups and renders agree through the database, one execution at a time, so nothing a render
may reuse is deleted under it:
1. The clean-up picks candidates from a first look at the tables (cheap, may be stale).
2. For each one, in one short transaction, it locks the job row (SELECT ... FOR UPDATE), checks
   again that the job has no waiting or running execution and that this execution is neither the
   job's newest nor its newest success, computes what the job's other rows still reference, and
   empties the execution's `results`. A render only reuses a step record whose execution still
   lists the outputs in `results` (jobs.render.loop._find_reusable), so from the commit on no render picks
   these files; and a render created meanwhile either committed before the lock (the job is busy:
   skipped) or waits for it (inserting an execution locks the job row too: the foreign key, and
   `latest_execution`), then finds `results` empty.
3. After the commit it deletes the files no other row references. Storage calls (listing,
   deleting) never run inside the transaction; the transaction holds only the row lock.
A purged job's rows are deleted first, under the same lock and checks: once the job is gone no
render can use its files. A folder left behind by a purge whose file deletes failed part way is
found again by the next old-jobs clean-up (a `jobs/<id>/` folder without a job row).

Video chunks live apart, under `chunks/`, named by what they show and shared by every job; an
execution's compose record lists the chunks its video is made of (and the audio track the audio
chunk is cut from). The storage clean-up removes the chunks that no execution holding files (or
rendering) lists, once they are CLEANUP_CHUNK_DAYS old: a render that finds one gone makes it again, so no lock is needed.
"""

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from jobs.files import CHUNKS_FOLDER, execution_folder
from jobs.models import ACTIVE_STATUSES, CleanupRun, ExecutionStatus, Job, JobExecution, JobSplit
from jobs.records import referenced_keys, step_record

logger = logging.getLogger(__name__)

FINISHED_STATUSES = (ExecutionStatus.SUCCESS, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)
GIB = 1024**3
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Defaults shared by the commands and the schedules.
STUCK_AFTER = timedelta(minutes=60)
KEEP_DAYS = 30


def parse_duration(text: str) -> timedelta:
    """`90s`, `60m`, `2h` or `1d` as a timedelta."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text.lower())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"{text!r} is not a duration: use a positive whole number and s, m, h or d, e.g. 90s, 60m, 2h"
        )
    return timedelta(seconds=int(match.group(1)) * DURATION_UNITS[match.group(2)])


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass
class StoredFile:
    key: str
    size: int


@dataclass
class CleanupReport:
    dry_run: bool
    files: list[StoredFile] = field(default_factory=list)
    executions: list[int] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)
    detail: str = ""
    skipped: bool = False
    cleanup_run: CleanupRun | None = None

    @property
    def bytes(self) -> int:
        return sum(stored.size for stored in self.files)


def storage_walk(prefix: str) -> Iterator[str]:
    """Every key under a folder of the default storage (missing folders hold nothing)."""
    prefix = prefix.rstrip("/")
    try:
        folders, files = default_storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        yield f"{prefix}/{name}"
    for folder in folders:
        yield from storage_walk(f"{prefix}/{folder}")


def _size(key: str) -> int | None:
    try:
        return default_storage.size(key)
    except (OSError, ValueError):
        return None


def _split_keys(splits: Iterable[tuple[str, list, dict]]) -> set[str]:
    """Storage keys segments name: the selected picture, the candidates and the moving clip."""
    keys = set()
    for selected, images, animation in splits:
        if selected:
            keys.add(selected)
        keys |= {image["key"] for image in images or [] if isinstance(image, dict) and image.get("key")}
        if isinstance(animation, dict) and animation.get("key"):
            keys.add(animation["key"])
    return keys


def _latest_execution_ids() -> set[int]:
    return set(Job.objects.exclude(latest_execution=None).values_list("latest_execution", flat=True))


def _busy_job_ids() -> set[int]:
    """Jobs with a waiting or running render: it may be about to reuse older outputs, so leave them be."""
    return set(JobExecution.objects.filter(status__in=ACTIVE_STATUSES).values_list("job_id", flat=True))


def _job_references(job_id: int, *, excluding: set[int]) -> set[str]:
    """Keys the job's rows still reference, but for the executions `excluding`: executions that hold
    files (or are rendering) and segments. A render reuses outputs of its own job only."""
    holders = (
        JobExecution.objects.filter(job_id=job_id)
        .exclude(pk__in=excluding)
        .filter(~Q(results={}) | Q(status__in=ACTIVE_STATUSES))
    )
    keys: set[str] = set()
    for results, steps in holders.values_list("results", "steps"):
        keys |= referenced_keys(results, steps)
    return keys | _split_keys(
        JobSplit.objects.filter(job_id=job_id).values_list("selected", "images", "animation")
    )


def _may_clear(execution: JobExecution | None, job: Job) -> bool:
    """A finished execution that is neither the job's newest nor its newest success (the published video)."""
    if (
        execution is None
        or execution.status not in FINISHED_STATUSES
        or execution.pk == job.latest_execution_id
    ):
        return False
    return execution.pk != job.executions.successes().values_list("pk", flat=True).first()


def _release(execution_id: int, job_id: int, *, cleared: set[int]) -> tuple[dict, set[str]] | None:
    """Take an execution's files from renders, in one short transaction: with the job row locked
    (which also holds back a new execution of the job: its insert waits for the lock), re-check
    that the job renders nothing and the execution may go, then empty its results, after which no
    render reuses its outputs. Returns its results and what the job's other rows still reference;
    None when it must stay."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.executions.filter(status__in=ACTIVE_STATUSES).exists():
            return None
        execution = JobExecution.objects.filter(pk=execution_id, job_id=job_id).first()
        if not _may_clear(execution, job):
            return None
        referenced = _job_references(job_id, excluding=cleared | {execution_id})
        JobExecution.objects.filter(pk=execution_id).update(results={}, updated_at=timezone.now())
    return execution.results, referenced


def _clear_execution(
    report: CleanupReport, execution_id: int, job_id: int, seen: set[str], *, delete_row: bool = False
) -> int | None:
    """Remove an execution's stored files (and with `delete_row` its row) unless a render may still
    use them; returns the bytes freed, None when it stays. The folder is listed before the lock:
    listing is a storage call, and a finished execution's folder gets no new files."""
    folder = set(storage_walk(execution_folder(job_id, execution_id)))
    cleared = set(report.executions)  # a dry run counts what it would have cleared as gone
    if report.dry_run:
        results = JobExecution.objects.filter(pk=execution_id).values_list("results", flat=True).first()
        released = (results or {}, _job_references(job_id, excluding=cleared | {execution_id}))
    else:
        released = _release(execution_id, job_id, cleared=cleared)
    if released is None:
        return None
    results, referenced = released
    freed = _remove(report, referenced_keys(results, None) | folder, referenced.__contains__, seen)
    if delete_row and not report.dry_run:
        # The row goes after its files: if a delete fails, the next run finds the row and tries again.
        JobExecution.objects.filter(pk=execution_id).delete()
    report.executions.append(execution_id)
    return freed


def _remove(
    report: CleanupReport, keys: Iterable[str], protected: Callable[[str], bool], seen: set[str]
) -> int:
    """Remove (or in a dry run, list) existing, unprotected keys; returns the bytes freed."""
    freed = 0
    for key in sorted(keys):
        if key in seen or protected(key):
            continue
        seen.add(key)
        size = _size(key)
        if size is None:
            continue
        if not report.dry_run:
            default_storage.delete(key)
        report.files.append(StoredFile(key, size))
        freed += size
    return freed


def chunk_references() -> set[str]:
    """Names of the chunks that executions holding files (or rendering) are made of."""
    holders = JobExecution.objects.filter(~Q(results={}) | Q(status__in=ACTIVE_STATUSES))
    names: set[str] = set()
    for steps in holders.values_list("steps", flat=True).iterator():
        data = step_record(steps, "compose").data
        listed = [*(data.get("chunks") or []), *(data.get("chunk_sources") or [])]
        names |= {name for name in listed if isinstance(name, str)}
    return names


def _clear_chunks(report: CleanupReport, *, older_than: timedelta, seen: set[str]) -> int:
    """Remove the stored chunks no kept execution is made of, once `older_than` old (a render
    running now may just have made one; one that finds a chunk gone makes it again)."""
    referenced = chunk_references()
    cutoff = timezone.now() - older_than
    stale = []
    for key in storage_walk(CHUNKS_FOLDER):
        if key.rsplit("/", 1)[-1] in referenced:
            continue
        try:
            if default_storage.get_modified_time(key) >= cutoff:
                continue
        except (OSError, NotImplementedError):
            continue
        stale.append(key)
    return _remove(report, stale, lambda key: False, seen)


def _orphan_job_folders() -> list[int]:
    """`jobs/<id>/` folders whose job row is gone (a purge whose file deletes failed part way)."""
    try:
        folders, _files = default_storage.listdir("jobs")
    except (FileNotFoundError, NotADirectoryError):
        return []
    ids = {int(name) for name in folders if name.isdigit()}
    return sorted(ids - set(Job.objects.filter(pk__in=ids).values_list("pk", flat=True)))


def old_jobs_cleanup(*, days: int, dry_run: bool = False) -> CleanupReport:
    """Delete finished executions older than `days` (never a job's latest, nor its latest success)
    and jobs soft-deleted that long ago, with their stored files, except files that kept rows still
    reference. Each removal agrees with renders through the database (see the module docstring)."""
    cutoff = timezone.now() - timedelta(days=days)
    report = CleanupReport(dry_run=dry_run)
    purged_jobs = list(
        Job.objects.filter(deleted_at__lt=cutoff)
        .exclude(executions__status=ExecutionStatus.RUNNING)
        .values_list("pk", "narration_audio")
    )
    purged_job_ids = {pk for pk, _ in purged_jobs}
    old = list(
        JobExecution.objects.filter(status__in=FINISHED_STATUSES)
        .filter(Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff))
        .exclude(pk__in=_latest_execution_ids())
        .exclude(job_id__in=purged_job_ids | _busy_job_ids())
        .order_by("created_at", "id")
        .values_list("pk", "job_id")
    )
    seen: set[str] = set()
    for pk, job_id in old:
        _clear_execution(report, pk, job_id, seen, delete_row=True)

    # A purged job's rows go first, with the job row locked and its state checked again: once the
    # job is gone no render can use its files. Files another job's rows name stay (defensive: renders
    # never share files across jobs).
    others = JobExecution.objects.exclude(job_id__in=purged_job_ids).filter(
        ~Q(results={}) | Q(status__in=ACTIVE_STATUSES)
    )
    protected: set[str] = set()
    for results, steps in others.values_list("results", "steps").iterator():
        protected |= referenced_keys(results, steps)
    protected |= _split_keys(
        JobSplit.objects.exclude(job_id__in=purged_job_ids).values_list("selected", "images", "animation")
    )
    for job_id, narration_audio in purged_jobs:
        keys = set(storage_walk(f"jobs/{job_id}/")) | ({narration_audio} if narration_audio else set())
        if not dry_run:
            with transaction.atomic():
                job = Job.objects.select_for_update().filter(pk=job_id, deleted_at__lt=cutoff).first()
                # A waiting execution of a deleted job never starts (claims skip deleted jobs).
                if job is None or job.executions.filter(status=ExecutionStatus.RUNNING).exists():
                    continue
                job.delete()
        _remove(report, keys, protected.__contains__, seen)
        report.jobs.append(job_id)
    for job_id in _orphan_job_folders():
        _remove(report, storage_walk(f"jobs/{job_id}/"), protected.__contains__, seen)
    return report


@dataclass(frozen=True)
class StoragePolicy:
    keep_executions: int
    max_bytes: int
    min_interval: timedelta
    chunk_age: timedelta = timedelta(days=7)

    @classmethod
    def from_settings(cls) -> "StoragePolicy":
        return cls(
            keep_executions=max(1, int(getattr(settings, "CLEANUP_KEEP_EXECUTIONS", 3))),
            max_bytes=int(getattr(settings, "CLEANUP_MAX_BYTES", 50 * GIB)),
            min_interval=timedelta(seconds=int(getattr(settings, "CLEANUP_MIN_INTERVAL_S", 6 * 3600))),
            chunk_age=timedelta(days=float(getattr(settings, "CLEANUP_CHUNK_DAYS", 7))),
        )


def storage_cleanup(
    *, mode: str, dry_run: bool = False, policy: StoragePolicy | None = None
) -> CleanupReport:
    """Remove stored files of old executions (keeping their rows), recorded as a CleanupRun.

    First everything but the newest `keep_executions` of each job; then, while the files under
    `jobs/` exceed `max_bytes`, the oldest finished executions' files. A job's latest execution and
    latest success, a job that is rendering, and referenced files are never touched. Auto mode runs at most once
    per `min_interval` (a skipped run is recorded too); manual mode always runs.
    """
    if mode not in CleanupRun.Mode.values:
        raise ValueError(f"unknown clean-up mode {mode!r}; use one of {', '.join(CleanupRun.Mode.values)}")
    policy = policy or StoragePolicy.from_settings()
    report = CleanupReport(dry_run=dry_run)
    if mode == CleanupRun.Mode.AUTO:
        last = CleanupRun.objects.filter(dry_run=False, skipped=False).order_by("-created_at", "-id").first()
        if last is not None and timezone.now() - last.created_at < policy.min_interval:
            age_min = (timezone.now() - last.created_at).total_seconds() / 60
            report.skipped = True
            report.detail = (
                f"Skipped: the last clean-up ran {age_min:.0f} min ago; auto mode waits "
                f"{policy.min_interval.total_seconds() / 3600:g} h between runs"
            )
            report.cleanup_run = CleanupRun.objects.create(
                mode=mode, dry_run=dry_run, skipped=True, detail=report.detail
            )
            return report

    total_before = sum(size for key in storage_walk("jobs") if (size := _size(key)) is not None)
    # A first cut; each execution is checked again under its job's lock before anything goes.
    latest = _latest_execution_ids()
    busy = _busy_job_ids()
    rows = (
        JobExecution.objects.order_by("job_id", "-created_at", "-id")
        .annotate(holds=~Q(results={}))
        .values_list("pk", "job_id", "status", "holds", "finished_at", "created_at")
    )
    rank: Counter = Counter()
    beyond_keep, within_keep = [], []
    for pk, job_id, status, holds, finished_at, created_at in rows:
        rank[job_id] += 1
        if not holds or status not in FINISHED_STATUSES or pk in latest or job_id in busy:
            continue
        entry = (finished_at or created_at, pk, job_id)
        (beyond_keep if rank[job_id] > policy.keep_executions else within_keep).append(entry)

    seen: set[str] = set()

    def clear(entry: tuple) -> int:
        _, pk, job_id = entry
        return _clear_execution(report, pk, job_id, seen) or 0

    for entry in sorted(beyond_keep):
        clear(entry)
    cleared_for_keep = len(report.executions)
    total_left = total_before - report.bytes
    for entry in sorted(within_keep):  # oldest first
        if total_left <= policy.max_bytes:
            break
        total_left -= clear(entry)
    cleared_for_size = len(report.executions) - cleared_for_keep
    chunk_files = len(report.files)
    _clear_chunks(report, older_than=policy.chunk_age, seen=seen)
    chunk_files = len(report.files) - chunk_files
    report.detail = (
        f"Kept the newest {policy.keep_executions} executions per job: cleared {cleared_for_keep}; "
        f"size cap {human_bytes(policy.max_bytes)}: cleared {cleared_for_size} more; "
        f"unused video chunks older than {policy.chunk_age.total_seconds() / 86400:g} days: {chunk_files}; "
        f"{'would remove' if dry_run else 'removed'} {len(report.files)} files, {human_bytes(report.bytes)}; "
        f"jobs/ {'would hold' if dry_run else 'holds'} {human_bytes(total_left)}"
    )
    report.cleanup_run = CleanupRun.objects.create(
        mode=mode,
        dry_run=dry_run,
        files_removed=len(report.files),
        bytes_freed=report.bytes,
        detail=report.detail,
    )
    return report
