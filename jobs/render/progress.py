"""Progress of renders: reporting it from a worker, publishing it to the websocket views, the
events they show (with an ETA from recent step durations), and websocket tickets."""

import asyncio
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from jobs.files import execution_urls
from jobs.models import ExecutionStatus, Job, JobExecution, WebsocketTicket
from jobs.records import step_record, step_records
from jobs.render.claims import DB_CONNECTION_ERRORS, database_reopen, execution_save_fenced
from jobs.render.steps import STEPS

logger = logging.getLogger(__name__)

PROGRESS_SAVE_INTERVAL_S = 1.0
# How long a render waits for the channel layer to take one progress event before going on without.
PUBLISH_TIMEOUT_S = 5.0
# Step durations (ETA, metrics) come from this many newest successful renders.
RECENT_EXECUTIONS = 100
WS_TICKET_MAX_AGE_S = 60
STEP_OFFSETS: dict[str, int] = {
    name: sum(step.weight for step in list(STEPS.values())[:i]) for i, name in enumerate(STEPS)
}


@dataclass
class Reporter:
    """Saves and publishes one execution's progress, at most about once a second unless forced.

    Saving is fenced: it raises ClaimLost once another worker holds the execution. A save that
    finds the database connection lost is skipped (the next one reconnects); the heartbeat thread
    keeps the claim meanwhile. `on_progress` is a caller's own listener (a command's progress
    bar); browsers hear through the channel layer.
    """

    execution: JobExecution
    on_progress: Callable[[JobExecution], None] | None = None
    last_saved: float = 0.0

    def report(self, step: str, fraction: float, message: str, *, force: bool = False) -> None:
        """Record progress 0-100 for a step."""
        execution = self.execution
        percent = int(STEP_OFFSETS[step] + STEPS[step].weight * max(0.0, min(1.0, fraction)))
        execution.progress = max(execution.progress, min(percent, 100))
        execution.current_step = step
        execution.detail = message[:500]
        now = time.monotonic()
        if not force and now - self.last_saved < PROGRESS_SAVE_INTERVAL_S:
            return
        self.last_saved = now
        execution.heartbeat_at = timezone.now()
        try:
            # Results too: a retry or a new owner reuses this attempt's finished steps only while
            # the execution lists their outputs (see jobs.render.loop._find_reusable).
            execution_save_fenced(
                execution,
                [
                    "progress",
                    "current_step",
                    "detail",
                    "heartbeat_at",
                    "steps",
                    "results",
                    "retry_count",
                    "needs",
                ],
            )
        except DB_CONNECTION_ERRORS:
            logger.warning("execution %s: progress not saved, the database connection was lost", execution.pk)
            database_reopen()
            return
        self.publish()

    def publish(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.execution)
        execution_broadcast(self.execution)


def team_group(team_id: int | None) -> str:
    """The channel group of a team's progress feed; no team (a user in none): a group nobody sends to."""
    return f"team-{team_id}" if team_id is not None else "no-team"


def execution_broadcast(execution: JobExecution) -> None:
    """Tell the websocket progress views about the execution.

    Through the channel layer: channels-redis reaches browsers from any worker process;
    without Redis the consumers read the database instead (see jobs.live.consumers).
    """
    layer = get_channel_layer()
    if layer is None or not settings.REDIS_URL:
        return
    message = {"type": "job.event", "event": execution_event(execution)}
    groups = [f"job-{execution.job_id}", "all-jobs"]
    if execution.job.team_id:
        groups.insert(1, team_group(execution.job.team_id))

    async def send() -> None:
        for group in groups:
            await layer.group_send(group, message)

    sent = asyncio.run_coroutine_threadsafe(send(), _publishing_loop())
    try:
        sent.result(timeout=PUBLISH_TIMEOUT_S)
    except Exception:  # progress must never break a render (e.g. Redis restarting)
        sent.cancel()
        logger.warning("could not publish progress of execution %s", execution.pk, exc_info=True)


# This process's event loop for the channel layer, and the process it belongs to.
_publishing: tuple[int, asyncio.AbstractEventLoop] | None = None
_publishing_lock = threading.Lock()


def _publishing_loop() -> asyncio.AbstractEventLoop:
    """An event loop that runs in a thread of its own for as long as this process lives. The channel
    layer keeps its Redis connections per event loop: one loop for every event lets them be reused,
    where a loop per event would connect again each time. A forked worker starts its own."""
    global _publishing
    with _publishing_lock:
        if _publishing is None or _publishing[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="progress-publisher", daemon=True).start()
            _publishing = (os.getpid(), loop)
        return _publishing[1]


# The last step_durations this process read, under the newest success it read them after.
_durations_read: tuple[tuple, dict[str, list[float]]] | None = None


def step_durations() -> dict[str, list[float]]:
    """Durations of the steps that really ran ("done", not "reused") in the newest successful renders.
    Read again only once another render has succeeded: every progress event asks for them."""
    global _durations_read
    recent = JobExecution.objects.filter(status=ExecutionStatus.SUCCESS).order_by("-finished_at", "-id")
    newest = tuple(recent.values_list("id", "finished_at").first() or ())
    if _durations_read is not None and _durations_read[0] == newest:
        return _durations_read[1]
    durations: dict[str, list[float]] = {}
    for steps in recent.values_list("steps", flat=True)[:RECENT_EXECUTIONS]:
        for step, record in step_records(steps).items():
            if record.status == "done" and record.raw.get("duration_s") is not None:
                try:
                    durations.setdefault(step, []).append(float(record.raw["duration_s"]))
                except (TypeError, ValueError):
                    continue
    _durations_read = (newest, durations)
    return durations


def execution_eta(execution: JobExecution) -> float | None:
    """Seconds left, from the median step durations of recent successful renders."""
    if not execution.is_active:
        return None
    durations = step_durations()
    if not any(durations.get(name) for name in STEPS):
        return None
    typical = {
        name: sorted(values)[len(values) // 2] if (values := durations.get(name)) else 0.0 for name in STEPS
    }
    remaining = 0.0
    for name in STEPS:
        record = step_record(execution.steps, name)
        if record.finished:
            continue
        if record.status == "running" and record.raw.get("started_at"):
            elapsed = (timezone.now() - datetime.fromisoformat(record.raw["started_at"])).total_seconds()
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
        "steps": {
            name: {
                "status": record.status or None,
                "duration_s": record.raw.get("duration_s"),
                **({"chunks": record.chunks} if record.chunks else {}),
            }
            for name, record in step_records(execution.steps).items()
        },
        # When the render last changed, in the server's time zone: the job list's "Updated" column.
        "updated_at": timezone.localtime(execution.updated_at).isoformat() if execution.updated_at else None,
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
        return {
            "type": "init",
            "job": job.pk,
            "execution": None,
            "status": "NEW",
            "step": "",
            "progress": 0,
            "message": "Not rendered yet",
            "eta_s": None,
            "steps": {},
        }
    return {**execution_event(execution), "type": "init"}


def _ticket_key(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def ws_ticket_issue(*, user, token=None) -> str:
    """A pass an API client gives as ?ticket= when opening a websocket: it opens one socket, once, within
    WS_TICKET_MAX_AGE_S, and dies with `token` (the API token that asked for it) when given."""
    now = timezone.now()
    WebsocketTicket.objects.filter(created_at__lt=now - timedelta(seconds=WS_TICKET_MAX_AGE_S)).delete()
    ticket = secrets.token_urlsafe(32)
    WebsocketTicket.objects.create(key=_ticket_key(ticket), user=user, token=token, created_at=now)
    return ticket


def ws_ticket_user(ticket: str):
    """The user a ticket was issued to, using it up; None when it is unknown, used, expired or its
    token is gone."""
    cutoff = timezone.now() - timedelta(seconds=WS_TICKET_MAX_AGE_S)
    row = (
        WebsocketTicket.objects.select_related("user")
        .filter(key=_ticket_key(ticket), created_at__gte=cutoff)
        .first()
    )
    # Of two sockets racing with one ticket, only the one whose delete removed the row gets in.
    if row is None or not WebsocketTicket.objects.filter(pk=row.pk).delete()[0]:
        return None
    return row.user if row.user.is_active else None
