from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedules(sender, **kwargs) -> None:
    from jobs.maintenance.schedules import schedules_ensure

    schedules_ensure()


def _work_folder_tidy(sender, proc_name, **kwargs) -> None:
    """A worker starting (or started again after one was killed): remove the attempt folders left
    by processes that are gone, before this one renders."""
    from django.conf import settings

    from jobs.render.workspace import work_cache_prune

    work_cache_prune(unused_days=settings.WORK_CACHE_DAYS)


def _task_started(sender, task, **kwargs) -> None:
    """Record when the worker began the task: django-q2 fills `started` when the task is queued, but
    its admin (time taken: stopped - started), its help text and the farm benchmark's busy time read
    it as the start of the work."""
    from django.utils import timezone

    task["started"] = timezone.now()


class JobsConfig(AppConfig):
    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_spawn, pre_execute

        from accounts.stored_files import release_files
        from jobs.models import StockClip

        # The maintenance schedules exist wherever the database is migrated (idempotent).
        post_migrate.connect(_ensure_schedules, sender=self)
        release_files(StockClip, "file")
        post_spawn.connect(_work_folder_tidy, dispatch_uid="jobs.work_folder_tidy")
        pre_execute.connect(_task_started, dispatch_uid="jobs.task_started")
