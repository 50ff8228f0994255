"""YouTube quota: the units a Google project may spend a day, and each team's part of them.

Every call costs units of the project's daily budget (jobs.publishing.youtube.QUOTA_COSTS); a quota day
starts at midnight Pacific time. A team may spend YOUTUBE_TEAM_QUOTA_SHARE of the project's units; the
teams' parts may add up to more than the whole, and the project's budget still holds. A reservation
takes the units from the team's part and from the project's, or from neither.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Team
from jobs.models import QuotaUsage

QUOTA_TIMEZONE = ZoneInfo("America/Los_Angeles")  # YouTube resets quotas at midnight Pacific time


def quota_day(when: datetime | None = None) -> date:
    return timezone.localtime(when or timezone.now(), QUOTA_TIMEZONE).date()


def next_quota_day_start(when: datetime | None = None) -> datetime:
    """The next midnight, Pacific time, when YouTube gives the project a new budget."""
    start = datetime.combine(quota_day(when) + timedelta(days=1), time(0), tzinfo=QUOTA_TIMEZONE)
    return start.astimezone(ZoneInfo("UTC"))


def team_quota_budget() -> int:
    """The units one team may spend on a quota day: its share of the project's."""
    share = min(1.0, max(0.0, settings.YOUTUBE_TEAM_QUOTA_SHARE))
    return int(settings.YOUTUBE_DAILY_QUOTA * share)


def _used(*, day: date, team: Team | None = None) -> int:
    rows = QuotaUsage.objects.filter(project=settings.YOUTUBE_QUOTA_PROJECT, day=day)
    rows = rows.filter(team__isnull=True) if team is None else rows.filter(team=team)
    return rows.values_list("units", flat=True).first() or 0


def quota_left(*, day: date | None = None, team: Team | None = None) -> int:
    """The project's units left on `day` (today), and with `team`, what of them the team may spend."""
    day = day or quota_day()
    left = max(0, settings.YOUTUBE_DAILY_QUOTA - _used(day=day))
    if team is not None:
        left = min(left, max(0, team_quota_budget() - _used(day=day, team=team)))
    return left


@dataclass
class TeamQuota:
    """A team's YouTube units on one quota day (the team's page and /api/v1/teams/<slug>/quota/)."""

    day: date
    budget: int
    used: int
    left: int  # what the team may still spend: its part, and no more than the project has left


def team_quota(*, team: Team, day: date | None = None) -> TeamQuota:
    day = day or quota_day()
    return TeamQuota(
        day=day,
        budget=team_quota_budget(),
        used=_used(day=day, team=team),
        left=quota_left(day=day, team=team),
    )


def _spend(*, day: date, team: Team | None, units: int, budget: int) -> bool:
    project = settings.YOUTUBE_QUOTA_PROJECT
    QuotaUsage.objects.get_or_create(project=project, day=day, team=team)
    rows = QuotaUsage.objects.filter(project=project, day=day, units__lte=budget - units)
    rows = rows.filter(team__isnull=True) if team is None else rows.filter(team=team)
    return rows.update(units=F("units") + units) == 1


def quota_reserve(*, units: int, team: Team | None = None) -> bool:
    """Spend `units` of today's budget if they fit: the team's part (with a team) and the project's.
    Conditional UPDATEs in one transaction: workers never overspend, and a refusal spends nothing."""
    day = quota_day()
    with transaction.atomic():
        if team is not None and not _spend(day=day, team=team, units=units, budget=team_quota_budget()):
            return False
        if not _spend(day=day, team=None, units=units, budget=settings.YOUTUBE_DAILY_QUOTA):
            transaction.set_rollback(True)
            return False
    return True


def quota_shortfall(*, units: int, team: Team | None = None) -> str:
    """Why `units` do not fit today, in words: the team's part or the project's budget."""
    day = quota_day()
    if team is not None and _used(day=day, team=team) + units > team_quota_budget():
        return (
            f"needs {units} units of YouTube quota; team {team.slug} has used "
            f"{_used(day=day, team=team)} of its {team_quota_budget()} units today"
        )
    return (
        f"needs {units} units of YouTube quota, {quota_left()} of "
        f"{settings.YOUTUBE_DAILY_QUOTA} are left today"
    )


def quota_exhaust() -> None:
    """YouTube says today's budget is spent (other clients of the project spend it too): believe it.
    The teams' parts are left as they are: each still says what the team spent."""
    day, project = quota_day(), settings.YOUTUBE_QUOTA_PROJECT
    QuotaUsage.objects.get_or_create(project=project, day=day, team=None)
    QuotaUsage.objects.filter(
        project=project, day=day, team__isnull=True, units__lt=settings.YOUTUBE_DAILY_QUOTA
    ).update(units=settings.YOUTUBE_DAILY_QUOTA)
