from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from jobs.exports import importing


class Command(BaseCommand):
    help = "Create jobs from a CSV or JSON file (the admin's import format); exit 1 if any row is bad."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--enqueue", action="store_true", help="Queue each created job for rendering.")
        parser.add_argument(
            "--owner",
            help="Username owning the new jobs (and whose presets they may use); "
            "default: none, the jobs are shared.",
        )

    def handle(self, *args, file: Path, enqueue: bool, owner: str | None, **options) -> None:
        user = None
        if owner:
            user = User.objects.filter(username=owner, is_active=True).first()
            if user is None:
                raise CommandError(f"No active user {owner!r}.")
        try:
            rows = importing.import_parse(file.read_bytes(), filename=file.name, user=user)
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error}") from error
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        jobs = iter(importing.import_create(rows, user=user, enqueue=enqueue))
        bad = 0
        for row in rows:
            if row.errors:
                bad += 1
                self.stdout.write(f"row {row.number} {row.title!r}: ERROR {row.error_text()}")
            else:
                job = next(jobs)
                self.stdout.write(
                    f"row {row.number} {row.title!r}: created job {job.pk}"
                    + (f", language {row.detected_language} detected" if row.detected_language else "")
                    + (" (queued)" if enqueue else "")
                )
        self.stdout.write(f"{len(rows) - bad} created, {bad} bad, {len(rows)} rows in all.")
        if bad:
            raise SystemExit(1)
