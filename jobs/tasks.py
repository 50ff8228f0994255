"""django-q2 tasks: thin, they call services. Tasks carry no model instances.

jobs.queue.RENDER_TASK names run_next_execution."""

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
