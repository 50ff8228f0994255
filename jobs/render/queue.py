"""The render queue: which executions a worker may take, taking one, keeping it, and putting silent
ones back.

This is the one place that names the django-q2 task. Tasks carry no execution id: each one
runs the best claimable execution, so priority holds however many workers take tasks at once, and a
lost task costs nothing but a wake-up. The best: of the team with the least recent worker time for
its weight (jobs.render.fairshare), that team's lowest runorder, then oldest; a team at its limit of
concurrent renders waits.

Ownership: every claim raises the execution's `attempt`; holding it (fencing, heartbeat) is
jobs.render.claims.

Attempts are bounded: a takeover or a reset after a worker went silent ends an attempt like a
transient error does; past `attempts_allowed()` the execution fails instead.

Resources: each step needs `cpu` or `gpu` (jobs.render.steps), served by the django-q2 cluster that
CPU_CLUSTER or GPU_CLUSTER names. An execution's `needs` says what its next step needs; a worker
claims only executions whose `needs` it serves, and a render task goes to the cluster of the
resource needed. A worker that reaches a step it does not serve hands the execution off
(jobs.render.loop): PENDING, `handed_off`, and the claim that continues it keeps the attempt.
"""

import logging
import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Min, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs.models import ErrorKind, ExecutionStatus, JobExecution, Resource
from jobs.render import fairshare
from jobs.render.progress import execution_broadcast
from jobs.webhooks.events import execution_event_record
from jobs.workitems import WorkKind, backoff_s

logger = logging.getLogger(__name__)

RENDER_TASK = "jobs.tasks.run_next_execution"


RESOURCE_CLUSTERS = {Resource.CPU: "CPU_CLUSTER", Resource.GPU: "GPU_CLUSTER"}


def cluster_of(resource: str) -> str:
    """The django-q2 cluster whose workers run the steps that need `resource`."""
    return getattr(settings, RESOURCE_CLUSTERS[resource])


def _clusters() -> dict[str, list[str]]:
    """Each render cluster and the resources it serves (one cluster serves both by default)."""
    clusters: dict[str, list[str]] = {}
    for resource in RESOURCE_CLUSTERS:
        clusters.setdefault(cluster_of(resource), []).append(resource)
    return clusters


def own_cluster() -> str:
    """The django-q2 cluster this process serves (Q_CLUSTER_NAME)."""
    return settings.Q_CLUSTER.get("cluster_name", "default")


def served_resources() -> list[str]:
    """The resources this worker runs steps for: those whose cluster is its own."""
    return _clusters().get(own_cluster(), [])


def wake_worker(resource: str) -> None:
    """Send one render task to the cluster that serves `resource` (call it on commit)."""
    RENDERS.wake(cluster=cluster_of(resource))


def wake_worker_at(when: datetime, resource: str) -> None:
    """Send one render task at `when` (a delayed retry) to the cluster that serves `resource`; the
    periodic reset wakes workers for due retries too."""
    RENDERS.wake(when=when, name="batchvideo: delayed retry", cluster=cluster_of(resource))


TAKEOVER_WATCH = "batchvideo: takeover watch"


def takeover_watch_arm(clusters: list[str] | None = None) -> None:
    """Make sure a render task runs as soon as the quietest RUNNING execution could be stale, on the
    cluster that serves what it needs (for the render clusters in `clusters`; all when not given).

    A worker killed outright sends nothing: without this its render waits until django-q2 hands
    the lost task back (Q_RETRY_S) or the periodic reset. The watch is one one-off schedule per
    render cluster, moved earlier when need be; the task it starts takes over what is stale by
    then, and arms it again while renders run (so about once per EXECUTION_STALE_S while a worker
    renders)."""
    from django_q.models import Schedule

    for cluster, resources in _clusters().items():
        if clusters is not None and cluster not in clusters:
            continue
        quietest = JobExecution.objects.filter(status=ExecutionStatus.RUNNING, needs__in=resources).aggregate(
            seen=Min(Coalesce("heartbeat_at", "updated_at"))
        )["seen"]
        if quietest is None:
            continue
        when = quietest + timedelta(seconds=settings.EXECUTION_STALE_S + 1)
        watch = Schedule.objects.filter(name=TAKEOVER_WATCH, cluster=cluster)
        if watch.filter(next_run__lte=when).exists() or watch.update(next_run=when):
            continue
        RENDERS.wake(when=when, name=TAKEOVER_WATCH, cluster=cluster)


def attempts_allowed() -> int:
    """The first attempt and EXECUTION_MAX_RETRIES more."""
    return 1 + max(0, settings.EXECUTION_MAX_RETRIES)


def retry_delay_s(attempt: int) -> float:
    """The wait after attempt number `attempt` ended: 60, 120, 240 s with the default settings."""
    return backoff_s(settings.EXECUTION_RETRY_BACKOFF_S, attempt)


def stale_before() -> datetime:
    """A RUNNING execution whose worker has not reported since then is stale: another may take it."""
    return timezone.now() - timedelta(seconds=settings.EXECUTION_STALE_S)


def silent_since(before: datetime) -> Q:
    """RUNNING executions whose worker has not reported since `before`."""
    return Q(status=ExecutionStatus.RUNNING) & (
        Q(heartbeat_at__lt=before) | Q(heartbeat_at__isnull=True, updated_at__lt=before)
    )


def _due() -> Q:
    """PENDING executions whose delayed retry (if any) is due."""
    return Q(status=ExecutionStatus.PENDING) & (Q(retry_at__isnull=True) | Q(retry_at__lte=timezone.now()))


# The conditions are on the execution's own columns: no join, so PostgreSQL re-checks all of them on
# a row another worker changed meanwhile (a join would turn an UPDATE into `id IN (subquery)`, which
# is not re-checked, and two workers would claim one execution).
RENDERS = WorkKind(
    name="render",
    model=JobExecution,
    task=RENDER_TASK,
    cluster_setting="CPU_CLUSTER",  # the first step's, for a wake-up that names no resource
    due=lambda: _due() & Q(cancel_requested=False),
    stale=lambda: silent_since(stale_before()) & Q(cancel_requested=False),
    task_takes_id=False,
)
ALIVE = Q(job__deleted_at__isnull=True)


def waiting() -> QuerySet[JobExecution]:
    """PENDING executions a worker may take now: the queue depth (delayed retries count once due)."""
    return JobExecution.objects.filter(RENDERS.due(), ALIVE)


def rendering() -> QuerySet[JobExecution]:
    """Executions with what every render reads of its job (its language and voice) in the same query."""
    return JobExecution.objects.select_related("job__language", "job__voice__language")


def claimable() -> QuerySet[JobExecution]:
    """What this worker may take: waiting executions, and running ones whose worker went silent,
    that need a resource it serves."""
    return RENDERS.claimable().filter(ALIVE, needs__in=served_resources())


def _silence(execution: JobExecution) -> str:
    """Why the attempt of a silent execution is over, in words."""
    seen = execution.heartbeat_at or execution.updated_at
    age_s = (timezone.now() - seen).total_seconds()
    during = f" during {execution.current_step}" if execution.current_step else ""
    return (
        f"the worker on {execution.worker_host or 'an unknown host'} went silent{during} "
        f"(no heartbeat for {age_s:.0f} s)"
    )


def _gave_up(execution: JobExecution, reason: str) -> dict:
    """The fields of an execution failed for good after its last allowed attempt."""
    now = timezone.now()
    message = f"Attempt {execution.attempt} of {attempts_allowed()} ended: {reason}; gave up"
    return {
        "status": ExecutionStatus.FAILED,
        "detail": message[:500],
        "error": message,
        "error_kind": ErrorKind.TRANSIENT,
        "finished_at": now,
        "updated_at": now,
        "retry_at": None,
    }


def execution_claim(*, execution: JobExecution) -> bool:
    """Take a claimable execution for this process (the next attempt, or the same attempt continued
    after a hand-off). A running one whose worker went silent is taken over: that ends its attempt,
    and past the last allowed one it fails. Only an execution that needs a resource this worker
    serves."""
    now = timezone.now()
    # Compare-and-set on the status, heartbeat, attempt and hand-off we saw: of two workers, only
    # one wins.
    seen = Q(
        status=execution.status,
        heartbeat_at=execution.heartbeat_at,
        attempt=execution.attempt,
        handed_off=execution.handed_off,
        needs__in=served_resources(),
    )
    taking_over = execution.status == ExecutionStatus.RUNNING
    continuing = execution.handed_off and not taking_over
    if taking_over and execution.attempt >= attempts_allowed():
        with transaction.atomic():
            gave_up = RENDERS.claim(execution.pk, seen=seen, **_gave_up(execution, _silence(execution)))
            if gave_up:
                _failed_for_good(execution)
        if gave_up:
            _broadcast(execution)
        return False
    ended = (
        {
            "retry_count": F("retry_count") + 1,
            "error": f"Attempt {execution.attempt} ended: {_silence(execution)}",
            "error_kind": ErrorKind.TRANSIENT,
        }
        if taking_over
        else {}
    )
    if continuing and execution.started_at is not None:
        # The wait for this cluster does not count against the attempt's time limit: its start
        # moves on by the time the execution waited since the hand-off.
        started_at = execution.started_at + (now - execution.updated_at)
    else:
        started_at = Coalesce("started_at", Value(now))
    claimed = RENDERS.claim(
        execution.pk,
        seen=seen,
        status=ExecutionStatus.RUNNING,
        worker_host=socket.gethostname(),
        heartbeat_at=now,
        updated_at=now,
        started_at=started_at,
        attempt=F("attempt") + (0 if continuing else 1),
        handed_off=False,
        retry_at=None,
        **ended,
    )
    if claimed:
        execution.refresh_from_db(from_queryset=rendering())
        if taking_over:
            logger.warning(
                "execution %s (job %s): taken over as attempt %s; %s",
                execution.pk,
                execution.job_id,
                execution.attempt,
                ended["error"],
            )
    return claimed


def execution_claim_next() -> JobExecution | None:
    """Claim the best claimable execution (module docstring); None when nothing waits, or only the
    work of teams at their limit of concurrent renders.

    The wake-up that started this claim may have been sent for another execution (a task carries
    no id): when more wait, one more wake-up goes out, so no waiting execution is left without one."""
    served = served_resources()
    if not served:
        return None
    usage = fairshare.teams_usage(stale=RENDERS.stale())
    full = fairshare.teams_full(usage)
    candidates = claimable()
    if full:
        candidates = candidates.exclude(job__team_id__in=[use.team_id for use in full])
        fairshare.waiting_say_why(full, due=RENDERS.due())
    candidates = (
        candidates.annotate(share=fairshare.share_order(usage))
        .order_by("share", "job__team_id", "job__runorder", "created_at", "id")
        .select_related("job")
    )
    claimed, refused = None, set()
    for execution in candidates[:20]:
        team_id = execution.job.team_id
        if team_id in refused:
            continue
        if _claim_in_limit(execution, refused):
            claimed = execution
            break
    if claimed is not None and claimable().exists():
        transaction.on_commit(lambda: wake_worker(served[0]))
    # A claim changes only what this cluster runs; the periodic recovery arms every cluster's watch.
    takeover_watch_arm([own_cluster()])
    return claimed


def _claim_in_limit(execution: JobExecution, refused: set) -> bool:
    """Claim `execution` if its team has room for one more render (a team refused is added to
    `refused`); the team's row is locked from the count to the claim's commit."""
    team_id = execution.job.team_id
    if team_id is None or not fairshare.limit():
        return execution_claim(execution=execution)
    with transaction.atomic():
        if not fairshare.team_has_room(team_id, stale=RENDERS.stale()):
            refused.add(team_id)
            return False
        return execution_claim(execution=execution)


def wake_for_waiting_team() -> None:
    """After a render ended: with a limit of concurrent renders, the wake-up of a waiting team's
    execution may have been spent while the team was full, so send one while work waits."""
    if fairshare.limit():
        for needs in waiting().order_by().values_list("needs", flat=True).distinct():
            transaction.on_commit(lambda needs=needs: wake_worker(needs))


def _failed_for_good(execution: JobExecution) -> None:
    """The render.failed webhook event of an execution this transaction just failed."""
    execution.refresh_from_db()
    execution_event_record(execution=execution)


def _broadcast(execution: JobExecution) -> None:
    execution.refresh_from_db()
    execution_broadcast(execution)


def executions_reset_stuck(*, older_than: timedelta) -> list[JobExecution]:
    """Put RUNNING executions whose worker went silent back in the queue, and wake a worker for each.

    That ends their attempt (a retry, counted here); past the last allowed attempt they fail. The
    time limit starts again (started_at is cleared): after an hour of silence the old one is spent
    anyway. An execution an operator asked to cancel is cancelled instead: it could never be claimed.
    """
    reset = []
    for execution in JobExecution.objects.filter(silent_since(timezone.now() - older_than)):
        seen = execution.heartbeat_at or execution.updated_at
        age_min = (timezone.now() - seen).total_seconds() / 60
        host = execution.worker_host or "an unknown host"
        with transaction.atomic():
            # Compare-and-set on the heartbeat we saw: a worker that just reported keeps its execution.
            still_silent = JobExecution.objects.filter(
                pk=execution.pk,
                status=ExecutionStatus.RUNNING,
                heartbeat_at=execution.heartbeat_at,
                updated_at=execution.updated_at,
                attempt=execution.attempt,
            )
            if execution.cancel_requested:
                detail = f"Cancelled: the worker on {host} went silent {age_min:.0f} min ago"
                changed = still_silent.update(
                    status=ExecutionStatus.CANCELLED,
                    detail=detail,
                    finished_at=timezone.now(),
                    updated_at=timezone.now(),
                )
            elif execution.attempt >= attempts_allowed():
                changed = still_silent.update(**_gave_up(execution, _silence(execution)))
                if changed:
                    _failed_for_good(execution)
            else:
                detail = f"Waiting for a worker: reset after no heartbeat from {host} for {age_min:.0f} min"
                changed = still_silent.update(
                    status=ExecutionStatus.PENDING,
                    detail=detail,
                    started_at=None,
                    updated_at=timezone.now(),
                    retry_count=F("retry_count") + 1,
                    error=f"Attempt {execution.attempt} ended: {_silence(execution)}",
                    error_kind=ErrorKind.TRANSIENT,
                )
                if changed:
                    transaction.on_commit(lambda needs=execution.needs: wake_worker(needs))
        if changed:
            execution.refresh_from_db()
            reset.append(execution)
    return reset


def executions_recover(*, older_than: timedelta) -> int:
    """Reset silent executions; wake a worker when executions wait (a delayed retry whose one-off
    schedule was lost still starts); keep the takeover watch armed. Returns how many were reset."""
    reset = executions_reset_stuck(older_than=older_than)
    if not reset:
        for cluster, resources in _clusters().items():
            RENDERS.sweep(
                quiet=Q(status=ExecutionStatus.PENDING, needs__in=resources) & ALIVE, cluster=cluster
            )
    takeover_watch_arm()
    return len(reset)
