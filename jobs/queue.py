"""The render queue: which executions a worker may take, taking one, and putting silent ones back.

This is the one place that names the django-q2 task. Tasks carry no execution id: each one
runs the best claimable execution (lowest runorder, then oldest), so priority holds however
many workers take tasks at once, and a lost task costs nothing but a wake-up.
"""

import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import ExecutionStatus, JobExecution

RENDER_TASK = "jobs.tasks.run_next_execution"


def wake_worker() -> None:
    """Send one render task to the render cluster (call it on commit)."""
    from django_q.tasks import async_task

    async_task(RENDER_TASK, cluster=settings.RENDER_CLUSTER)


def stale_before() -> datetime:
    """A RUNNING execution whose worker has not reported since then is stale: another may take it."""
    return timezone.now() - timedelta(seconds=settings.EXECUTION_STALE_S)


def silent_since(before: datetime) -> Q:
    """RUNNING executions whose worker has not reported since `before`."""
    return Q(status=ExecutionStatus.RUNNING) & (
        Q(heartbeat_at__lt=before) | Q(heartbeat_at__isnull=True, updated_at__lt=before)
    )


def waiting() -> QuerySet[JobExecution]:
    """PENDING executions a worker may take: the queue depth."""
    return JobExecution.objects.filter(status=ExecutionStatus.PENDING, job__deleted_at__isnull=True,
                                       cancel_requested=False)


def _claimable_here() -> Q:
    """The claimable condition on the execution's own columns: no join, so PostgreSQL re-checks all
    of it on a row another worker changed meanwhile (a join would turn an UPDATE into
    `id IN (subquery)`, which is not re-checked, and two workers would claim one execution)."""
    return (Q(status=ExecutionStatus.PENDING) | silent_since(stale_before())) & Q(cancel_requested=False)


def claimable() -> QuerySet[JobExecution]:
    """What a worker may take: waiting executions, and running ones whose worker went silent."""
    return JobExecution.objects.filter(_claimable_here(), job__deleted_at__isnull=True)


def execution_claim(*, execution: JobExecution) -> bool:
    """Take a claimable execution for this process."""
    now = timezone.now()
    # Compare-and-set on the status and heartbeat we saw: of two workers, only one wins.
    claimed = JobExecution.objects.filter(
        _claimable_here(), pk=execution.pk, status=execution.status, heartbeat_at=execution.heartbeat_at,
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
    """Claim the best claimable execution; None when nothing waits."""
    candidates = claimable().order_by("job__runorder", "created_at", "id").select_related("job")
    for execution in candidates[:20]:
        if execution_claim(execution=execution):
            return execution
    return None


def executions_reset_stuck(*, older_than: timedelta) -> list[JobExecution]:
    """Put RUNNING executions whose worker went silent back in the queue, and wake a worker for each.

    The retry is counted by the claim that takes the execution next, not here. The time limit
    starts again (started_at is cleared): after an hour of silence the old one is spent anyway.
    An execution an operator asked to cancel is cancelled instead: it could never be claimed again.
    """
    reset = []
    for execution in JobExecution.objects.filter(silent_since(timezone.now() - older_than)):
        seen = execution.heartbeat_at or execution.updated_at
        age_min = (timezone.now() - seen).total_seconds() / 60
        host = execution.worker_host or "an unknown host"
        with transaction.atomic():
            # Compare-and-set on the heartbeat we saw: a worker that just reported keeps its execution.
            still_silent = JobExecution.objects.filter(
                pk=execution.pk, status=ExecutionStatus.RUNNING, heartbeat_at=execution.heartbeat_at,
                updated_at=execution.updated_at,
            )
            if execution.cancel_requested:
                detail = f"Cancelled: the worker on {host} went silent {age_min:.0f} min ago"
                changed = still_silent.update(status=ExecutionStatus.CANCELLED, detail=detail,
                                              finished_at=timezone.now(), updated_at=timezone.now())
            else:
                detail = f"Waiting for a worker: reset after no heartbeat from {host} for {age_min:.0f} min"
                changed = still_silent.update(status=ExecutionStatus.PENDING, detail=detail,
                                              started_at=None, updated_at=timezone.now())
                if changed:
                    transaction.on_commit(wake_worker)
        if changed:
            execution.refresh_from_db()
            reset.append(execution)
    return reset
