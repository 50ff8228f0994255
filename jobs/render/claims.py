"""Holding a claimed execution: the fencing token and the heartbeat.

Every claim (jobs.render.queue) raises the execution's `attempt`. The worker keeps the attempt it
claimed and writes to the execution only while the row still holds it (a conditional UPDATE: the
fencing token), so a worker that was paused past the stale time and taken over stops at its next
write (`ClaimLost`) and never overwrites the new owner's results. While it renders, a `Heartbeat`
thread keeps the claim alive, whatever the steps are doing.
"""

import logging
import threading
from typing import Self

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.models import QuerySet
from django.utils import timezone

from jobs.models import ExecutionStatus, JobExecution

logger = logging.getLogger(__name__)

# A lost or reset database connection: the next query may work on a new one.
DB_CONNECTION_ERRORS = (OperationalError, InterfaceError)


class ClaimLost(Exception):
    """This worker no longer holds the execution: another worker took it over, or it was reset,
    cancelled or failed meanwhile. The worker stops without writing anything more."""


def heartbeat_interval_s() -> float:
    return max(0.05, min(settings.EXECUTION_HEARTBEAT_S, settings.EXECUTION_STALE_S / 4))


def _claimed(execution_id: int, attempt: int) -> QuerySet[JobExecution]:
    """The execution, as long as the claim of `attempt` still holds it (the fencing condition)."""
    return JobExecution.objects.filter(pk=execution_id, attempt=attempt, status=ExecutionStatus.RUNNING)


def _claim_lost(execution: JobExecution) -> ClaimLost:
    return ClaimLost(f"execution {execution.pk}: attempt {execution.attempt} is no longer this worker's")


def execution_save_fenced(execution: JobExecution, fields: list[str]) -> None:
    """Save `fields` of an execution this worker claimed, only while it still holds the claim."""
    values = {name: getattr(execution, name) for name in fields}
    execution.updated_at = timezone.now()
    if not _claimed(execution.pk, execution.attempt).update(**values, updated_at=execution.updated_at):
        raise _claim_lost(execution)


def execution_fence(execution: JobExecution) -> None:
    """ClaimLost unless this worker still holds its claim. Inside a transaction the row stays locked
    until the transaction ends, so no other worker can claim it before those writes commit."""
    mine = _claimed(execution.pk, execution.attempt)
    if connection.in_atomic_block:
        mine = mine.select_for_update()
    if not list(mine.values_list("pk", flat=True)):
        raise _claim_lost(execution)


def database_reopen() -> None:
    """After a lost connection: close this thread's connection if it is broken, so that the next
    query opens a new one. Never inside a transaction: that is lost, and its owner must see so."""
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


class Heartbeat:
    """Keeps a claimed execution's heartbeat fresh from a thread beside the render, so that a step
    that reports nothing for a while (a model load, FunASR, a large upload) is not mistaken for a
    dead worker. The thread dies with its process and stops when the render ends; when it finds
    the claim lost it sets `lost` (the render stops at its next cancel check).

    A render inside a transaction (the tests) gets no thread: another connection could not see
    its rows; its progress saves are its heartbeat.
    """

    def __init__(self, execution: JobExecution) -> None:
        self.execution_id = execution.pk
        self.attempt = execution.attempt
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        if not connection.in_atomic_block:
            self._thread = threading.Thread(
                target=self._beat, name=f"heartbeat-{self.execution_id}", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _beat(self) -> None:
        mine = _claimed(self.execution_id, self.attempt)
        try:
            while not self._stop.wait(heartbeat_interval_s()):
                try:
                    alive = mine.update(heartbeat_at=timezone.now())
                except DB_CONNECTION_ERRORS:
                    logger.warning(
                        "heartbeat of execution %s: the database is unreachable; trying again",
                        self.execution_id,
                    )
                    connection.close()  # this thread's own connection; the next beat opens a new one
                    continue
                if not alive:
                    logger.warning(
                        "execution %s: attempt %s was taken over; this worker stops",
                        self.execution_id,
                        self.attempt,
                    )
                    self.lost.set()
                    return
        finally:
            connection.close()
