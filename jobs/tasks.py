"""django-q2 tasks: thin, they call services. Tasks carry no model instances.

jobs.queue.RENDER_TASK names run_next_execution."""

from . import webhooks
from .render import execution_run_next


def run_next_execution() -> int | None:
    """Render the best waiting execution, if any; returns its id."""
    execution = execution_run_next()
    return execution.pk if execution else None


def run_publication(publication_id: int) -> str | None:
    """Publish (or reschedule) one publication; returns its status, None when it was not due."""
    from .publishing import publication_run

    publication = publication_run(publication_id=publication_id)
    return publication.status if publication else None

def webhook_send(delivery_id: int) -> str:
    """One try at a webhook delivery (queued after the commit that stored it)."""
    delivery = webhooks.delivery_send(delivery_id=delivery_id)
    return "not due" if delivery is None else delivery.status


def webhooks_sweep() -> int:
    """Send the webhook deliveries that are due (retries, and sends that were never queued)."""
    return webhooks.deliveries_sweep()
