from django.apps import AppConfig


class VoicesConfig(AppConfig):
    name = "voices"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.stored_files import release_files

        from .models import Voice

        release_files(Voice, "reference")
