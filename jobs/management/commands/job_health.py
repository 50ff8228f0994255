from django.core.management.base import BaseCommand
from django.utils import timezone

from jobs.maintenance import health


def age(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.0f} s ago"


def next_attempt(item: health.FailingExecution) -> str:
    if item.retry_at is None:
        return ""
    wait_s = max(0.0, (item.retry_at - timezone.now()).total_seconds())
    return f", next attempt at {timezone.localtime(item.retry_at):%H:%M:%S} (in {wait_s:.0f} s)"


class Command(BaseCommand):
    help = (
        "Show executions per status, the queue, running executions and the workers behind them, "
        "and executions whose last attempt failed (attempts and last error)."
    )

    def handle(self, *args, **options) -> None:
        report = health.health_report()
        self.stdout.write(
            "Executions: " + ", ".join(f"{status} {count}" for status, count in report.status_counts.items())
        )
        orm_queue = ", ".join(f"{key} {count}" for key, count in report.orm_queue.items()) or "none"
        self.stdout.write(
            f"Queue: {report.queue_depth} executions waiting; django-q tasks queued: {orm_queue}"
        )
        self.stdout.write(f"Running: {len(report.running)}")
        for item in report.running:
            self.stdout.write(
                f"  execution {item.id} (job {item.job_id} {item.job_title!r}) on {item.worker_host}: "
                f"{item.current_step or 'starting'} {item.progress}%, heartbeat {age(item.heartbeat_age_s)}, "
                f"attempt {item.attempt}" + (" (stale)" if item.stale else "")
            )
        self.stdout.write(f"Workers with running executions: {len(report.workers)}")
        for host, heartbeat_age in report.workers.items():
            self.stdout.write(f"  {host}: newest heartbeat {age(heartbeat_age)}")
        self.stdout.write(f"django-q clusters reporting: {len(report.clusters)}")
        for line in report.clusters:
            self.stdout.write(f"  {line}")
        self.stdout.write(
            f"Failing (last attempt ended in an error; failed for good within "
            f"{health.FAILING_WITHIN.total_seconds() / 3600:g} h): {len(report.failing)}"
        )
        for item in report.failing:
            self.stdout.write(
                f"  execution {item.id} (job {item.job_id} {item.job_title!r}): {item.status}, "
                f"attempt {item.attempt} of {item.attempts_allowed}{next_attempt(item)}; "
                f"last error ({item.error_kind or 'unknown'}): {item.error[:300]}"
            )
