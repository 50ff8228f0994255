"""Health and metrics: executions per status, queue depth, heartbeats, failing executions, clusters.

`team_ids` narrows what is about executions to those teams' jobs (staff who are not superusers see
only their teams'; batchvideo.health); None: every execution."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone
from django_q.models import OrmQ
from django_q.status import Stat

from jobs.models import ACTIVE_STATUSES, ExecutionStatus, JobExecution
from jobs.render.progress import step_durations
from jobs.render.queue import attempts_allowed, silent_since, stale_before, waiting

logger = logging.getLogger(__name__)

# Health lists executions that failed for good this recently.
FAILING_WITHIN = timedelta(hours=24)


def _executions(team_ids: list[int] | None) -> QuerySet[JobExecution]:
    rows = JobExecution.objects.all()
    return rows if team_ids is None else rows.filter(job__team_id__in=team_ids)


def _waiting(team_ids: list[int] | None) -> QuerySet[JobExecution]:
    rows = waiting()
    return rows if team_ids is None else rows.filter(job__team_id__in=team_ids)


def status_counts(*, team_ids: list[int] | None = None) -> dict[str, int]:
    counts = dict(_executions(team_ids).order_by().values_list("status").annotate(count=Count("id")))
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
    attempt: int


@dataclass
class FailingExecution:
    """An execution whose last attempt ended in an error: waiting for its next attempt, running it,
    or failed for good (recently)."""

    id: int
    job_id: int
    job_title: str
    status: str
    attempt: int
    attempts_allowed: int
    retry_at: datetime | None
    error_kind: str
    error: str


@dataclass
class Health:
    status_counts: dict[str, int]
    queue_depth: int
    orm_queue: dict[str, int]
    running: list[RunningExecution]
    workers: dict[str, float | None]  # worker host -> age of its newest heartbeat, seconds
    clusters: list[str]
    failing: list[FailingExecution] = field(default_factory=list)


def health_report(*, team_ids: list[int] | None = None) -> Health:
    now = timezone.now()
    running = []
    running_rows = _executions(team_ids).filter(status=ExecutionStatus.RUNNING).select_related("job")
    stale = set(running_rows.filter(silent_since(stale_before())).values_list("pk", flat=True))
    for execution in running_rows.order_by("id"):
        age = (now - execution.heartbeat_at).total_seconds() if execution.heartbeat_at else None
        running.append(
            RunningExecution(
                id=execution.pk,
                job_id=execution.job_id,
                job_title=execution.job.title,
                worker_host=execution.worker_host or "?",
                current_step=execution.current_step,
                progress=execution.progress,
                heartbeat_age_s=age,
                stale=execution.pk in stale,
                attempt=execution.attempt,
            )
        )
    workers: dict[str, float | None] = {}
    for item in running:
        previous = workers.get(item.worker_host)
        if item.worker_host not in workers or (
            item.heartbeat_age_s is not None and (previous is None or item.heartbeat_age_s < previous)
        ):
            workers[item.worker_host] = item.heartbeat_age_s
    return Health(
        status_counts=status_counts(team_ids=team_ids),
        queue_depth=_waiting(team_ids).count(),
        orm_queue=_orm_queue_depth(),
        running=running,
        workers=workers,
        clusters=_cluster_lines(),
        failing=failing_executions(team_ids=team_ids),
    )


def failing_executions(
    *, failed_within: timedelta = FAILING_WITHIN, limit: int = 50, team_ids: list[int] | None = None
) -> list[FailingExecution]:
    """Executions whose last attempt ended in an error, newest first: active ones (a retry waits or
    runs) and those that failed within `failed_within`."""
    recent = Q(status=ExecutionStatus.FAILED, finished_at__gte=timezone.now() - failed_within)
    rows = (
        _executions(team_ids)
        .exclude(error="")
        .filter(Q(status__in=ACTIVE_STATUSES) | recent)
        .select_related("job")
        .order_by("-updated_at", "-id")[:limit]
    )
    return [
        FailingExecution(
            id=execution.pk,
            job_id=execution.job_id,
            job_title=execution.job.title,
            status=execution.status,
            attempt=execution.attempt,
            attempts_allowed=attempts_allowed(),
            retry_at=execution.retry_at,
            error_kind=execution.error_kind,
            error=execution.error,
        )
        for execution in rows
    ]


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


def metrics_snapshot(*, team_ids: list[int] | None = None) -> dict:
    """Figures for Prometheus: executions by status, queue depth, broker tasks, retries, and the
    durations of the steps that really ran in recent successful renders."""
    executions = _executions(team_ids)
    return {
        "executions_by_status": status_counts(team_ids=team_ids),
        "queue_depth": _waiting(team_ids).count(),
        "orm_queue_depth": _orm_queue_depth(),
        "retries_total": executions.aggregate(total=Sum("retry_count"))["total"] or 0,
        "step_durations_s": step_durations(),
    }
