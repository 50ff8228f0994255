from django.core.management.base import BaseCommand, CommandError

from jobs import services
from jobs.models import ExecutionStatus, Job, JobExecution
from jobs.render.loop import execution_run


def progress_printer(stdout):
    """A one-line progress bar for the terminal, redrawn in place."""

    def show(execution: JobExecution) -> None:
        filled = execution.progress * 30 // 100
        bar = "#" * filled + "-" * (30 - filled)
        stdout.write(f"\r[{bar}] {execution.progress:3d}% {execution.detail[:60]:<60}", ending="")
        stdout.flush()

    return show


class Command(BaseCommand):
    help = "Render one job in the foreground and print the video's storage key."

    def add_arguments(self, parser) -> None:
        parser.add_argument("job_id", type=int)

    def handle(self, *args, job_id: int, **options) -> None:
        job = Job.objects.alive().filter(pk=job_id).first()
        if job is None:
            raise CommandError(f"There is no job {job_id} (or it is deleted).")
        execution = services.execution_create(job=job)
        if execution.status == ExecutionStatus.RUNNING:
            raise CommandError(f"Job {job_id} is already rendering (execution {execution.pk}).")
        execution = execution_run(execution=execution, on_progress=progress_printer(self.stdout))
        self.stdout.write("")
        if execution.status != ExecutionStatus.SUCCESS:
            raise CommandError(f"Execution {execution.pk} {execution.status}: {execution.detail}")
        self.stdout.write(f"Execution {execution.pk}: {execution.detail}")
        self.stdout.write(execution.results["video"])
