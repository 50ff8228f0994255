from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedules(sender, **kwargs) -> None:
    from jobs.maintenance import schedules_ensure

    schedules_ensure()


class JobsConfig(AppConfig):
    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.stored_files import release_files

        from .models import StockClip

        # The maintenance schedules exist wherever the database is migrated (idempotent).
        post_migrate.connect(_ensure_schedules, sender=self)
        release_files(StockClip, "file")
