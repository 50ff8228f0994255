from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import teams
from accounts.models import User
from jobs.exports import importing


class Command(BaseCommand):
    help = "Create jobs from a CSV or JSON file (the admin's import format); exit 1 if any row is bad."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--enqueue", action="store_true", help="Queue each created job for rendering.")
        parser.add_argument(
            "--owner",
            help="Username creating the new jobs (and whose team's rows they may use); "
            "default: none, the jobs are shared presets.",
        )
        parser.add_argument(
            "--team", help="Slug of the team owning the new jobs; default: the owner's default team."
        )

    def handle(
        self, *args, file: Path, enqueue: bool, owner: str | None, team: str | None, **options
    ) -> None:
        user = None
        if owner:
            user = User.objects.filter(username=owner, is_active=True).first()
            if user is None:
                raise CommandError(f"No active user {owner!r}.")
        try:
            chosen = teams.team_resolve(user, team) if user is not None else None
        except teams.NotAMember as error:
            raise CommandError(str(error)) from error
        if team and user is None:
            raise CommandError("--team needs --owner: a member of the team who creates the jobs.")
        try:
            rows = importing.import_parse(file.read_bytes(), filename=file.name, user=user, team=chosen)
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error}") from error
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        jobs = iter(importing.import_create(rows, user=user, team=chosen, enqueue=enqueue))
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
