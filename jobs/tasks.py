"""django-q2 tasks: thin, they call services. Tasks carry no model instances."""

from . import services


def run_next_execution() -> int | None:
    """Render the best waiting execution, if any; returns its id."""
    execution = services.execution_run_next()
    return execution.pk if execution else None
