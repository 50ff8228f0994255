import argparse
from datetime import timedelta

from django.core.management.base import BaseCommand

from jobs.maintenance import cleanup
from jobs.render import queue


def duration(text: str) -> timedelta:
    try:
        return cleanup.parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


class Command(BaseCommand):
    help = "Put RUNNING executions whose worker went silent back in the queue and wake a worker for each."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than",
            type=duration,
            default=cleanup.STUCK_AFTER,
            help="Silence that counts as stuck: 90s, 60m, 2h (default 60m).",
        )

    def handle(self, *args, older_than: timedelta, **options) -> None:
        reset = queue.executions_reset_stuck(older_than=older_than)
        for execution in reset:
            self.stdout.write(
                f"Execution {execution.pk} (job {execution.job_id}): {execution.status}, {execution.detail}"
            )
        self.stdout.write(f"Reset {len(reset)} stuck executions (silent for more than {older_than}).")
