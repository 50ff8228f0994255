"""Fair share of the render workers between teams.

A team's recent use is the worker time of its executions in the last FAIR_SHARE_WINDOW_S: the part of
each render that ran inside the window, a running one's up to now. Divided by the team's weight
(Team.weight) it is the team's share. Among the teams with work waiting, the one with the least share
goes first; inside a team, runorder then age (jobs.render.queue). A team with
TEAM_MAX_CONCURRENT_RENDERS renders running (0: no limit) is skipped until one of them ends, and its
waiting executions say so. Jobs of no team (a superuser's own) count as one more team of weight 1, with
no limit.

What it costs a claim: one aggregate query over the executions that ran in the window (the
execution_finished index and the running ones), and a CASE on the team in the candidates' ORDER BY.
The time of an attempt that ended in a delayed retry is not counted (its start is cleared).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    FloatField,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.models import Team
from jobs.models import ExecutionStatus, JobExecution

MIN_WEIGHT = 1e-6  # a team of weight 0 goes last, but still goes


@dataclass(frozen=True)
class TeamUse:
    """A team's worker time in the window and its renders running now (silent ones not counted)."""

    team_id: int | None
    slug: str
    weight: float
    used_s: float
    running: int

    @property
    def share(self) -> float:
        return self.used_s / max(self.weight, MIN_WEIGHT)


def limit() -> int:
    return max(0, settings.TEAM_MAX_CONCURRENT_RENDERS)


def teams_usage(*, stale: Q, now: datetime | None = None) -> dict[int | None, TeamUse]:
    """Each team that used workers in the window (`stale`: running executions whose worker went
    silent; they count as used time, not as running)."""
    now = now or timezone.now()
    since = now - timedelta(seconds=settings.FAIR_SHARE_WINDOW_S)
    ran = ExpressionWrapper(
        Coalesce("finished_at", Value(now, output_field=DateTimeField()))
        - Greatest("started_at", Value(since, output_field=DateTimeField())),
        output_field=DurationField(),
    )
    running = Q(status=ExecutionStatus.RUNNING)
    rows = (
        JobExecution.objects.filter(started_at__isnull=False)
        .filter(running | Q(finished_at__gt=since))
        .order_by()
        .values("job__team_id", "job__team__slug", "job__team__weight")
        .annotate(used=Sum(ran), running=Count("id", filter=running & ~stale))
    )
    return {
        row["job__team_id"]: TeamUse(
            team_id=row["job__team_id"],
            slug=row["job__team__slug"] or "",
            weight=1.0 if row["job__team_id"] is None else row["job__team__weight"],
            used_s=max(0.0, row["used"].total_seconds()) if row["used"] else 0.0,
            running=row["running"],
        )
        for row in rows
    }


def teams_full(usage: dict[int | None, TeamUse]) -> list[TeamUse]:
    """The teams at their limit of concurrent renders."""
    most = limit()
    if not most:
        return []
    return [use for use in usage.values() if use.team_id is not None and use.running >= most]


def share_order(usage: dict[int | None, TeamUse]) -> Case:
    """Each execution's team share, for ORDER BY (a team with no recent use: 0)."""
    whens = [
        When(job__team__isnull=True, then=Value(use.share))
        if team_id is None
        else When(job__team_id=team_id, then=Value(use.share))
        for team_id, use in usage.items()
        if use.share
    ]
    return Case(*whens, default=Value(0.0), output_field=FloatField())


def waiting_reason(use: TeamUse) -> str:
    return f"Waiting: team {use.slug} has {use.running} renders running, its limit"


def waiting_say_why(full: list[TeamUse], *, due: Q) -> None:
    """The `due` executions of teams at their limit say why they wait (written once)."""
    for use in full:
        why = waiting_reason(use)
        JobExecution.objects.filter(due, job__team_id=use.team_id).exclude(detail=why).update(detail=why)


def team_has_room(team_id: int, *, stale: Q) -> bool:
    """Whether the team may start one more render. Call it inside the transaction that claims: the
    team's row stays locked until it commits, so two workers never both take its last place."""
    most = limit()
    if not most:
        return True
    Team.objects.select_for_update().filter(pk=team_id).values_list("pk").first()
    running = (
        JobExecution.objects.filter(status=ExecutionStatus.RUNNING, job__team_id=team_id)
        .exclude(stale)
        .count()
    )
    return running < most
