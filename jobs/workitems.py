"""Queued work: render executions, publications and webhook deliveries are each a row a worker claims,
and a django-q2 task that wakes a worker for it. One mechanism serves the three kinds (`WorkKind`):

- due: waiting rows whose time has come (a retry's back-off, a publication's schedule, a delivery's
  next try);
- stale: claimed rows whose worker went silent (no heartbeat, or its lease ran out): claimable again;
- claim: a compare-and-set UPDATE of one due or stale row, so of two workers only one wins;
- wake: the kind's task now, or at a due time as a one-off schedule the cluster's scheduler runs, on
  the kind's cluster or the one a row needs (a render step's); a broker that refuses the task loses
  nothing: the row stays due and the sweep wakes it;
- sweep: wake every due or stale row that has had no word for a while (a lost task, a dead worker);
- back-off: the wait between tries.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q, QuerySet
from django.utils import timezone

logger = logging.getLogger(__name__)

WAKE_NAME_MAX = 100  # django-q2's Schedule.name


def backoff_s(base_s: float, tries: int, *, max_s: float | None = None) -> float:
    """The wait after try number `tries` (1 for the first) ended: `base_s`, then doubling each time,
    at most `max_s`."""
    delay = base_s * 2 ** max(0, tries - 1)
    return delay if max_s is None else min(delay, max_s)


@dataclass(frozen=True)
class WorkKind:
    """One kind of queued work: its rows, its task and cluster, and when a row may be claimed.

    `task_takes_id`: the task gets the row's id (publications, deliveries); a render task carries
    none and runs the best claimable execution, so priority holds however many workers wake."""

    name: str
    model: type[models.Model]
    task: str
    cluster_setting: str
    due: Callable[[], Q]
    stale: Callable[[], Q]
    task_takes_id: bool = True

    def cluster(self) -> str:
        """The cluster the kind's task goes to unless a call names another."""
        return getattr(settings, self.cluster_setting)

    def claimable_q(self) -> Q:
        return self.due() | self.stale()

    def claimable(self) -> QuerySet:
        return self.model.objects.filter(self.claimable_q())

    def claim(self, pk: int, *, seen: Q | None = None, **changes) -> bool:
        """Take row `pk` if it is claimable (and still as the caller saw it, `seen`), applying
        `changes` in the same UPDATE; True for the one caller that won it."""
        rows = self.model.objects.filter(self.claimable_q(), pk=pk)
        if seen is not None:
            rows = rows.filter(seen)
        return bool(rows.update(**changes))

    def wake(
        self, pk: int | None = None, *, when: datetime | None = None, name: str = "", cluster: str = ""
    ) -> None:
        """Queue the kind's task now, or at `when` (a one-off schedule), on `cluster` (the kind's
        own when not given). Call it after the commit that made the row due."""
        from django_q.models import Schedule
        from django_q.tasks import async_task

        args = (pk,) if self.task_takes_id else ()
        cluster = cluster or self.cluster()
        try:
            if when is None or when <= timezone.now():
                async_task(self.task, *args, cluster=cluster)
                return
            Schedule.objects.create(
                name=(name or f"batchvideo: {self.name} {pk or ''}".strip())[:WAKE_NAME_MAX],
                func=self.task,
                args=repr(args) if args else None,
                schedule_type=Schedule.ONCE,
                next_run=when,
                repeats=-1,
                cluster=cluster,
            )
        except Exception:  # the broker's and the database's own errors vary; the row stays due
            logger.exception("%s %s: no wake-up queued; the sweep will wake it", self.name, pk or "")

    def sweep(self, *, quiet: Q | None = None, limit: int = 200, cluster: str = "") -> int:
        """Wake each claimable row (those matching `quiet` only: rows that had no word for a while)
        on `cluster` (the kind's own when not given). A kind whose task takes no id is woken once
        when anything is claimable. How many were woken."""
        rows = self.claimable() if quiet is None else self.claimable().filter(quiet)
        if not self.task_takes_id:
            if not rows.exists():
                return 0
            self.wake(cluster=cluster)
            return 1
        ids = list(rows.order_by("pk").values_list("pk", flat=True)[:limit])
        for pk in ids:
            self.wake(pk, cluster=cluster)
        return len(ids)
