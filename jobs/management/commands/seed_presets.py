from django.core.management.base import BaseCommand

from jobs.maintenance.presets import presets_seed


class Command(BaseCommand):
    help = "Create the shared presets: languages, voices, topics and a demo account. Safe to run again."

    def handle(self, *args, **options) -> None:
        created = presets_seed()
        summary = ", ".join(f"{count} {name}" for name, count in created.items())
        self.stdout.write(self.style.SUCCESS(f"Presets ready (new: {summary})."))
