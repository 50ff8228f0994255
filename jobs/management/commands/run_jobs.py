from django.core.management.base import BaseCommand, CommandError

from jobs.models import JobExecution
from jobs.render import loop


class Command(BaseCommand):
    help = "Render queued executions in the foreground, best first (runorder, then age)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--max-jobs", type=int, default=5, help="Stop after this many executions (default 5)."
        )
        parser.add_argument(
            "--no-stop-when-empty",
            dest="stop_when_empty",
            action="store_false",
            help="Keep polling an empty queue until --max-jobs executions ran.",
        )
        parser.add_argument(
            "--poll", type=float, default=5.0, help="Seconds between polls of an empty queue (default 5)."
        )

    def handle(self, *args, max_jobs: int, stop_when_empty: bool, poll: float, **options) -> None:
        if max_jobs < 1:
            raise CommandError(f"--max-jobs must be at least 1, not {max_jobs}.")
        if poll <= 0:
            raise CommandError(f"--poll must be a positive number of seconds, not {poll:g}.")

        def report(execution: JobExecution, outcome: str) -> None:
            job = f"job {execution.job_id} {execution.job.title!r}"
            self.stdout.write(f"Execution {execution.pk} ({job}): {outcome}")

        summary = loop.jobs_run(
            max_jobs=max_jobs, stop_when_empty=stop_when_empty, poll_s=poll, on_execution=report
        )
        self.stdout.write(
            f"attempted={summary.attempted} run={summary.run} succeeded={summary.succeeded} "
            f"failed={summary.failed} last_id={summary.last_id if summary.last_id is not None else '-'}"
        )
        if summary.failed:
            raise CommandError(f"{summary.failed} of {summary.attempted} executions failed.", returncode=1)
