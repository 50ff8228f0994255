"""django-q2 tasks: thin, they take ids and call services."""

from . import services
from .models import JobExecution


def execution_task(execution_id: int) -> None:
    execution = JobExecution.objects.select_related("job").get(pk=execution_id)
    if execution.is_active:
        services.execution_run(execution=execution)
