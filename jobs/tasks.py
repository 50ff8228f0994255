"""Every django-q2 entry point, and only they: thin, they take ids and call services. Tasks carry no
model instances. Stored schedules and queued tasks name these paths (jobs.render.queue.RENDER_TASK,
jobs.maintenance.schedules.SCHEDULES, ...)."""

from jobs.maintenance import cleanup
from jobs.models import CleanupRun
from jobs.publishing import publications
from jobs.render import fanout, queue
from jobs.render.loop import execution_run_next
from jobs.webhooks.delivery import deliveries_sweep, delivery_send


def run_next_execution() -> int | None:
    """Render the best waiting execution, if any; returns its id."""
    execution = execution_run_next()
    return execution.pk if execution else None


def make_chunk(chunk_id: int) -> str:
    """Make one chunk of a composition that another worker planned (jobs.render.fanout)."""
    return fanout.chunk_make(chunk_id)


def run_publication(publication_id: int) -> str | None:
    """Publish (or reschedule) one publication; returns its status, None when it was not due."""
    publication = publications.publication_run(publication_id=publication_id)
    return publication.status if publication else None


def publications_wake_due() -> int:
    return publications.publications_wake_due()


def webhook_send(delivery_id: int) -> str:
    """One try at a webhook delivery (queued after the commit that stored it)."""
    delivery = delivery_send(delivery_id=delivery_id)
    return "not due" if delivery is None else delivery.status


def webhooks_sweep() -> int:
    """Send the webhook deliveries that are due (retries, and sends that were never queued)."""
    return deliveries_sweep()


def task_reset_stuck() -> int:
    return queue.executions_recover(older_than=cleanup.STUCK_AFTER)


def task_cleanup_storage() -> str:
    return cleanup.storage_cleanup(mode=CleanupRun.Mode.AUTO).detail


def task_cleanup_old_jobs() -> int:
    return len(cleanup.old_jobs_cleanup(days=cleanup.KEEP_DAYS).files)
