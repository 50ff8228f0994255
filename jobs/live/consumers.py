"""Live progress over websockets.

`/ws/jobs/<id>/` follows one job; `/ws/jobs/` follows the active jobs of the user's team (the `team`
query parameter, else the user's default team: accounts.teams); superusers follow every job.
Events: `init` (or `snapshot` for the feed), then `update`, `done`, `error`.
Workers publish through the channel layer (channels-redis); without Redis the layer is
per process, so the consumer reads the database once a second instead. The consumer is
async only for that polling loop; all database work runs in threads.
"""

import asyncio
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from accounts import teams
from jobs.models import ACTIVE_STATUSES, Job, JobExecution
from jobs.render import progress

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
MIN_UPDATE_INTERVAL_S = 0.25  # at most ~4 updates a second per job
POLL_INTERVAL_S = 1.0


class JobProgressConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.job_id = self.scope["url_route"]["kwargs"].get("job_id")
        self.sent: dict[int, tuple] = {}
        self.sent_at: dict[int, float] = {}
        self.pending: dict[int, dict] = {}
        self.poller: asyncio.Task | None = None
        self.joined: list[str] = []
        await self.accept()
        user = await database_sync_to_async(self._user)()
        if user is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        try:
            self.team = await database_sync_to_async(self._team)()
        except teams.NotAMember:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if self.job_id is not None:
            job = await database_sync_to_async(self._visible_job)()
            if job is None:
                await self.close(code=CLOSE_FORBIDDEN)
                return
            self.joined = [f"job-{self.job_id}"]
            first = await database_sync_to_async(progress.job_snapshot)(job)
        else:
            self.joined = (
                ["all-jobs"]
                if user.is_superuser
                else [progress.team_group(self.team.pk if self.team else None)]
            )
            first = {"type": "snapshot", "jobs": await database_sync_to_async(self._active_events)()}
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.send_json(first)
        for event in [first] if self.job_id is not None else first["jobs"]:
            if event.get("execution"):
                self._remember(event)
        if not settings.REDIS_URL:
            self.poller = asyncio.create_task(self._poll())

    async def disconnect(self, code: int) -> None:
        if self.poller is not None:
            self.poller.cancel()
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def job_event(self, message: dict) -> None:
        await self._send_event(message["event"])

    async def _send_event(self, event: dict) -> None:
        job_id = event["job"]
        state = (event["execution"], event["status"], event["progress"], event["message"])
        if self.sent.get(job_id) == state:
            return
        final = event["type"] in ("done", "error")
        wait = MIN_UPDATE_INTERVAL_S - (time.monotonic() - self.sent_at.get(job_id, 0.0))
        if not final and wait > 0:
            # Too soon after the last one: send the newest state when the interval is over.
            first_pending = job_id not in self.pending
            self.pending[job_id] = event
            if first_pending:
                asyncio.get_running_loop().call_later(
                    wait, lambda: asyncio.ensure_future(self._flush(job_id))
                )
            return
        self.pending.pop(job_id, None)
        self._remember(event)
        await self.send_json(event)

    async def _flush(self, job_id: int) -> None:
        event = self.pending.pop(job_id, None)
        if event is not None and self.sent.get(job_id, (None, ""))[1] not in (
            "SUCCESS",
            "FAILED",
            "CANCELLED",
        ):
            await self._send_event(event)

    def _remember(self, event: dict) -> None:
        self.sent[event["job"]] = (event["execution"], event["status"], event["progress"], event["message"])
        self.sent_at[event["job"]] = time.monotonic()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            for event in await database_sync_to_async(self._changed_events)():
                await self._send_event(event)

    # -- database work, run in threads

    def _user(self):
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            return user
        ticket = parse_qs(self.scope.get("query_string", b"").decode()).get("ticket", [""])[0]
        return progress.ws_ticket_user(ticket) if ticket else None

    def _team(self):
        slug = parse_qs(self.scope.get("query_string", b"").decode()).get(teams.TEAM_PARAMETER, [""])[0]
        return teams.team_resolve(self.user, slug)

    def _visible_job(self) -> Job | None:
        return Job.objects.alive().visible_to(self.user, self.team).filter(pk=self.job_id).first()

    def _executions(self):
        jobs = Job.objects.alive().visible_to(self.user, self.team)
        if self.job_id is not None:
            jobs = jobs.filter(pk=self.job_id)
        return JobExecution.objects.filter(job__in=jobs).select_related("job")

    def _active_events(self) -> list[dict]:
        active = self._executions().filter(status__in=ACTIVE_STATUSES)
        return [progress.execution_event(execution) for execution in active]

    def _changed_events(self) -> list[dict]:
        """Events for executions whose state differs from what this socket sent last."""
        executions = self._executions()
        if self.job_id is not None:
            latest = executions.order_by("-created_at", "-id").first()
            candidates = [latest] if latest else []
        else:
            watched = [state[0] for state in self.sent.values() if state[0]]
            candidates = list(executions.filter(status__in=ACTIVE_STATUSES)) + list(
                executions.filter(pk__in=watched).exclude(status__in=ACTIVE_STATUSES)
            )
        events = []
        for execution in candidates:
            state = (execution.pk, execution.status, execution.progress, execution.detail)
            previous = self.sent.get(execution.job_id)
            if previous is not None and previous[:4] == state:
                continue
            if previous is not None and previous[0] == execution.pk and previous[1] not in ACTIVE_STATUSES:
                continue
            events.append(progress.execution_event(execution))
        return events
