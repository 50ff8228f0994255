from django.core.management.base import BaseCommand, CommandError

from jobs.maintenance import cleanup


class Command(BaseCommand):
    help = (
        "Delete finished executions older than --days (never a job's latest) and jobs soft-deleted "
        "that long ago, with their stored files; files that kept rows reference stay."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days", type=int, default=cleanup.KEEP_DAYS, help=f"Age in days (default {cleanup.KEEP_DAYS})."
        )
        parser.add_argument("--dry-run", action="store_true", help="List what would go; delete nothing.")

    def handle(self, *args, days: int, dry_run: bool, **options) -> None:
        if days < 0:
            raise CommandError(f"--days must be 0 or more, not {days}.")
        report = cleanup.old_jobs_cleanup(days=days, dry_run=dry_run)
        verb = "Would remove" if dry_run else "Removed"
        for stored in report.files:
            self.stdout.write(f"  {stored.key} ({cleanup.human_bytes(stored.size)})")
        self.stdout.write(
            f"{verb} {len(report.executions)} executions, {len(report.jobs)} deleted jobs, "
            f"{len(report.files)} files, {report.bytes} bytes ({cleanup.human_bytes(report.bytes)})."
        )
