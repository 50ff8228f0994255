from django.core.management.base import BaseCommand

from jobs.maintenance import cleanup
from jobs.models import CleanupRun


class Command(BaseCommand):
    help = (
        "Remove stored files of old executions: all but the newest CLEANUP_KEEP_EXECUTIONS per job, "
        "then the oldest while jobs/ exceeds CLEANUP_MAX_BYTES. Rows stay; their results are cleared."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--mode",
            choices=CleanupRun.Mode.values,
            required=True,
            help="auto: at most once per CLEANUP_MIN_INTERVAL_S; manual: now.",
        )
        parser.add_argument("--dry-run", action="store_true", help="List what would go; delete nothing.")

    def handle(self, *args, mode: str, dry_run: bool, **options) -> None:
        report = cleanup.storage_cleanup(mode=mode, dry_run=dry_run)
        if report.skipped:
            self.stdout.write(report.detail)
            return
        for stored in report.files:
            self.stdout.write(f"  {stored.key} ({cleanup.human_bytes(stored.size)})")
        verb = "Would free" if dry_run else "Freed"
        self.stdout.write(report.detail)
        size = f"{report.bytes} bytes ({cleanup.human_bytes(report.bytes)})"
        executions = len(report.executions)
        self.stdout.write(f"{verb} {len(report.files)} files, {size} from {executions} executions.")
