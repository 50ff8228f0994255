"""The maintenance schedules django-q2 runs (their functions are in jobs.tasks)."""

import logging

from django.conf import settings
from django_q.models import Schedule

logger = logging.getLogger(__name__)


# name: (function, schedule type, minutes)
SCHEDULES = {
    "batchvideo: reset stuck jobs": ("jobs.tasks.task_reset_stuck", Schedule.MINUTES, 10),
    "batchvideo: storage clean-up": ("jobs.tasks.task_cleanup_storage", Schedule.HOURLY, None),
    "batchvideo: old jobs clean-up": ("jobs.tasks.task_cleanup_old_jobs", Schedule.DAILY, None),
    "batchvideo: webhook deliveries": ("jobs.tasks.webhooks_sweep", Schedule.MINUTES, 1),
    "batchvideo: due publications": ("jobs.tasks.publications_wake_due", Schedule.MINUTES, 10),
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
            defaults={
                "func": func,
                "schedule_type": schedule_type,
                "minutes": minutes,
                "repeats": -1,
                "cluster": cluster,
                "args": None,
                "kwargs": None,
            },
        )
        schedules.append(schedule)
    return schedules
