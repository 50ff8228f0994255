"""Keeping the job queue and the stored files healthy: running, resetting and cleaning up.

The management commands (run_jobs, reset_stuck_jobs, cleanup_old_jobs, cleanup_storage,
job_health) and the django-q2 schedules call these functions; they hold no logic themselves.

Stored files: an execution writes its artifacts under `jobs/<job_id>/<execution_id>/` and lists
their keys in `results` and in each step record's `outputs`. A resumed render reuses an older
execution's outputs by key, so a file may be referenced by a newer execution than the one whose
folder holds it: clean-ups never remove a key that a kept execution (or a segment) references.
An execution "holds files" while its `results` are not empty; clearing its files empties them.
"""

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django_q.models import OrmQ, Schedule
from django_q.status import Stat

from .files import execution_folder
from .progress import step_durations
from .queue import execution_claim_next, executions_reset_stuck, silent_since, stale_before, waiting
from .render import execution_run
from .models import ACTIVE_STATUSES, CleanupRun, ExecutionStatus, Job, JobExecution, JobSplit

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


# ---------------------------------------------------------------- running the queue


@dataclass
class RunSummary:
    attempted: int = 0
    run: int = 0
    succeeded: int = 0
    failed: int = 0
    last_id: int | None = None


def jobs_run(
    *, max_jobs: int, stop_when_empty: bool = True, poll_s: float = 5.0,
    on_execution: Callable[[JobExecution, str], None] | None = None,
) -> RunSummary:
    """Render waiting executions in this process, best first, until `max_jobs` were taken.

    Claiming and rendering are separate calls (rather than `render.execution_run_next`) so that an
    unexpected crash is still reported with the execution's id; the execution stays RUNNING and
    is taken over once its heartbeat goes stale (or by reset_stuck_jobs).
    """
    summary = RunSummary()
    while summary.attempted < max_jobs:
        execution = execution_claim_next()
        if execution is None:
            if stop_when_empty:
                break
            time.sleep(poll_s)
            continue
        summary.attempted += 1
        summary.last_id = execution.pk
        try:
            execution_run(execution=execution)
        except Exception as error:  # a bug, not a media failure: keep serving the queue
            logger.exception("execution %s crashed", execution.pk)
            summary.failed += 1
            if on_execution is not None:
                on_execution(execution, f"crashed: {error!r}")
            continue
        summary.run += 1
        if execution.status == ExecutionStatus.SUCCESS:
            summary.succeeded += 1
        elif execution.status == ExecutionStatus.FAILED:
            summary.failed += 1
        if on_execution is not None:
            on_execution(execution, f"{execution.status}: {execution.detail}")
    return summary


# ---------------------------------------------------------------- stored files


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


def execution_keys(results: dict | None, steps: dict | None) -> set[str]:
    """Storage keys an execution refers to: its results and every step record's outputs."""
    keys = {value for value in (results or {}).values() if isinstance(value, str) and value}
    for record in (steps or {}).values():
        if isinstance(record, dict):
            outputs = record.get("outputs") or {}
            keys |= {value for value in outputs.values() if isinstance(value, str) and value}
    return keys


def _split_keys(splits: Iterable[tuple[str, list]]) -> set[str]:
    keys = set()
    for selected, images in splits:
        if selected:
            keys.add(selected)
        keys |= {image["key"] for image in images or [] if isinstance(image, dict) and image.get("key")}
    return keys


def _latest_execution_ids() -> set[int]:
    return set(Job.objects.exclude(latest_execution=None).values_list("latest_execution", flat=True))


def _busy_job_ids() -> set[int]:
    """Jobs with a waiting or running render: it may be about to reuse older outputs, so leave them be."""
    return set(JobExecution.objects.filter(status__in=ACTIVE_STATUSES).values_list("job_id", flat=True))


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


def old_jobs_cleanup(*, days: int, dry_run: bool = False) -> CleanupReport:
    """Delete finished executions older than `days` (never a job's latest) and jobs soft-deleted
    that long ago, with their stored files, except files that kept rows still reference."""
    cutoff = timezone.now() - timedelta(days=days)
    report = CleanupReport(dry_run=dry_run)
    purged_jobs = list(
        Job.objects.filter(deleted_at__lt=cutoff)
        .exclude(executions__status=ExecutionStatus.RUNNING)
        .values_list("pk", "narration_audio")
    )
    purged_job_ids = {pk for pk, _ in purged_jobs}
    latest = _latest_execution_ids()
    busy = _busy_job_ids()
    old = list(
        JobExecution.objects.filter(status__in=FINISHED_STATUSES)
        .filter(Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff))
        .exclude(pk__in=latest)
        .exclude(job_id__in=purged_job_ids | busy)
        .order_by("created_at", "id")
        .values_list("pk", "job_id", "results")
    )
    doomed = {pk for pk, _, _ in old}

    # Kept rows protect what they reference.
    protected: set[str] = set()
    kept = (
        JobExecution.objects.exclude(pk__in=doomed).exclude(job_id__in=purged_job_ids)
        .filter(~Q(results={}) | Q(status__in=ACTIVE_STATUSES))
    )
    for results, steps in kept.values_list("results", "steps").iterator():
        protected |= execution_keys(results, steps)
    kept_splits = JobSplit.objects.exclude(job_id__in=purged_job_ids)
    protected |= _split_keys(kept_splits.values_list("selected", "images"))

    seen: set[str] = set()
    for pk, job_id, results in old:
        keys = set(execution_keys(results, None)) | set(storage_walk(execution_folder(job_id, pk)))
        _remove(report, keys, protected.__contains__, seen)
        report.executions.append(pk)
    for job_id, narration_audio in purged_jobs:
        keys = set(storage_walk(f"jobs/{job_id}/"))
        if narration_audio:
            keys.add(narration_audio)
        _remove(report, keys, protected.__contains__, seen)
        report.jobs.append(job_id)
    if not dry_run:
        # Rows go after their files: if a delete fails, the next run finds the rows and tries again.
        JobExecution.objects.filter(pk__in=doomed).delete()
        Job.objects.filter(pk__in=purged_job_ids).delete()
    return report


@dataclass(frozen=True)
class StoragePolicy:
    keep_executions: int
    max_bytes: int
    min_interval: timedelta

    @classmethod
    def from_settings(cls) -> "StoragePolicy":
        return cls(
            keep_executions=max(1, int(getattr(settings, "CLEANUP_KEEP_EXECUTIONS", 3))),
            max_bytes=int(getattr(settings, "CLEANUP_MAX_BYTES", 50 * GIB)),
            min_interval=timedelta(seconds=int(getattr(settings, "CLEANUP_MIN_INTERVAL_S", 6 * 3600))),
        )


def storage_cleanup(
    *, mode: str, dry_run: bool = False, policy: StoragePolicy | None = None
) -> CleanupReport:
    """Remove stored files of old executions (keeping their rows), recorded as a CleanupRun.

    First everything but the newest `keep_executions` of each job; then, while the files under
    `jobs/` exceed `max_bytes`, the oldest finished executions' files. A job's latest execution,
    a job that is rendering, and referenced files are never touched. Auto mode runs at most once
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
            report.detail = (f"Skipped: the last clean-up ran {age_min:.0f} min ago; auto mode waits "
                             f"{policy.min_interval.total_seconds() / 3600:g} h between runs")
            report.cleanup_run = CleanupRun.objects.create(mode=mode, dry_run=dry_run, skipped=True,
                                                           detail=report.detail)
            return report

    total_before = sum(size for key in storage_walk("jobs") if (size := _size(key)) is not None)
    latest = _latest_execution_ids()
    busy = _busy_job_ids()
    rows = list(
        JobExecution.objects.order_by("job_id", "-created_at", "-id")
        .values_list("pk", "job_id", "status", "results", "steps", "finished_at", "created_at")
    )
    # How many holders reference each key: executions holding files, and segments (for good).
    holders: Counter = Counter()
    for _, _, status, results, steps, *_ in rows:
        if results or status in ACTIVE_STATUSES:
            holders.update(execution_keys(results, steps))
    holders.update(_split_keys(JobSplit.objects.values_list("selected", "images")))

    rank: Counter = Counter()
    beyond_keep, within_keep = [], []
    for pk, job_id, status, results, steps, finished_at, created_at in rows:
        rank[job_id] += 1
        if not results or status not in FINISHED_STATUSES or pk in latest or job_id in busy:
            continue
        entry = (finished_at or created_at, pk, job_id, results, steps)
        (beyond_keep if rank[job_id] > policy.keep_executions else within_keep).append(entry)

    seen: set[str] = set()

    def clear(entry: tuple) -> int:
        _, pk, job_id, results, steps = entry
        holders.subtract(execution_keys(results, steps))  # it no longer holds them
        keys = execution_keys(results, None) | set(storage_walk(execution_folder(job_id, pk)))
        freed = _remove(report, keys, lambda key: holders[key] > 0, seen)
        report.executions.append(pk)
        if not dry_run:
            JobExecution.objects.filter(pk=pk).update(results={}, updated_at=timezone.now())
        return freed

    for entry in sorted(beyond_keep):
        clear(entry)
    cleared_for_keep = len(report.executions)
    total_left = total_before - report.bytes
    for entry in sorted(within_keep):  # oldest first
        if total_left <= policy.max_bytes:
            break
        total_left -= clear(entry)
    cleared_for_size = len(report.executions) - cleared_for_keep
    report.detail = (
        f"Kept the newest {policy.keep_executions} executions per job: cleared {cleared_for_keep}; "
        f"size cap {human_bytes(policy.max_bytes)}: cleared {cleared_for_size} more; "
        f"{'would remove' if dry_run else 'removed'} {len(report.files)} files, {human_bytes(report.bytes)}; "
        f"jobs/ {'would hold' if dry_run else 'holds'} {human_bytes(total_left)}"
    )
    report.cleanup_run = CleanupRun.objects.create(
        mode=mode, dry_run=dry_run, files_removed=len(report.files), bytes_freed=report.bytes,
        detail=report.detail,
    )
    return report


# ---------------------------------------------------------------- health and metrics


def status_counts() -> dict[str, int]:
    counts = dict(JobExecution.objects.order_by().values_list("status").annotate(count=Count("id")))
    return {status: counts.get(status, 0) for status in ExecutionStatus.values}


def _orm_queue_depth() -> dict[str, int]:
    return dict(OrmQ.objects.order_by("key").values_list("key").annotate(count=Count("id")))


@dataclass
class RunningExecution:
    id: int
    job_id: int
    job_title: str
    worker_host: str
    current_step: str
    progress: int
    heartbeat_age_s: float | None
    stale: bool


@dataclass
class Health:
    status_counts: dict[str, int]
    queue_depth: int
    orm_queue: dict[str, int]
    running: list[RunningExecution]
    workers: dict[str, float | None]  # worker host -> age of its newest heartbeat, seconds
    clusters: list[str]


def health_report() -> Health:
    now = timezone.now()
    running = []
    running_rows = JobExecution.objects.filter(status=ExecutionStatus.RUNNING).select_related("job")
    stale = set(running_rows.filter(silent_since(stale_before())).values_list("pk", flat=True))
    for execution in running_rows.order_by("id"):
        age = (now - execution.heartbeat_at).total_seconds() if execution.heartbeat_at else None
        running.append(RunningExecution(
            id=execution.pk, job_id=execution.job_id, job_title=execution.job.title,
            worker_host=execution.worker_host or "?", current_step=execution.current_step,
            progress=execution.progress, heartbeat_age_s=age, stale=execution.pk in stale,
        ))
    workers: dict[str, float | None] = {}
    for item in running:
        previous = workers.get(item.worker_host)
        if item.worker_host not in workers or (item.heartbeat_age_s is not None and (
                previous is None or item.heartbeat_age_s < previous)):
            workers[item.worker_host] = item.heartbeat_age_s
    return Health(
        status_counts=status_counts(), queue_depth=waiting().count(), orm_queue=_orm_queue_depth(),
        running=running, workers=workers, clusters=_cluster_lines(),
    )


def _cluster_lines() -> list[str]:
    """django-q clusters that reported their status to the cache in the last few seconds."""
    try:
        stats = Stat.get_all()
    except Exception as error:  # the stats cache is optional; its failure is worth a line, not a crash
        return [f"cluster status unavailable: {error}"]
    return [
        f"{stat.cluster_id} on {stat.host}: {stat.status}, {len(stat.workers)} workers"
        for stat in sorted(stats, key=lambda stat: str(stat.cluster_id))
    ]


def metrics_snapshot() -> dict:
    """Figures for Prometheus: executions by status, queue depth, broker tasks, retries, and the
    durations of the steps that really ran in recent successful renders."""
    return {
        "executions_by_status": status_counts(),
        "queue_depth": waiting().count(),
        "orm_queue_depth": _orm_queue_depth(),
        "retries_total": JobExecution.objects.aggregate(total=Sum("retry_count"))["total"] or 0,
        "step_durations_s": step_durations(),
    }


# ---------------------------------------------------------------- schedules


# name: (function, schedule type, minutes)
SCHEDULES = {
    "batchvideo: reset stuck jobs": ("jobs.maintenance.task_reset_stuck", Schedule.MINUTES, 10),
    "batchvideo: storage clean-up": ("jobs.maintenance.task_cleanup_storage", Schedule.HOURLY, None),
    "batchvideo: old jobs clean-up": ("jobs.maintenance.task_cleanup_old_jobs", Schedule.DAILY, None),
}


def schedules_ensure() -> list[Schedule]:
    """Create or update the maintenance schedules by name; safe to call on every deploy.

    They run on the cluster named by MAINTENANCE_CLUSTER ("default" unless set), never the GPU
    one. An existing schedule keeps its next run time.
    """
    cluster = getattr(settings, "MAINTENANCE_CLUSTER", "default")
    schedules = []
    for name, (func, schedule_type, minutes) in SCHEDULES.items():
        schedule, _ = Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": schedule_type, "minutes": minutes, "repeats": -1,
                      "cluster": cluster, "args": None, "kwargs": None},
        )
        schedules.append(schedule)
    return schedules


def task_reset_stuck() -> int:
    return len(executions_reset_stuck(older_than=STUCK_AFTER))


def task_cleanup_storage() -> str:
    return storage_cleanup(mode=CleanupRun.Mode.AUTO).detail


def task_cleanup_old_jobs() -> int:
    return len(old_jobs_cleanup(days=KEEP_DAYS).files)
