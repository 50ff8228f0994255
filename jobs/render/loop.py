"""The render: one loop over the steps in jobs.render.steps, recording each step on the execution.

Each step's inputs are hashed; when an earlier run of the same job recorded the same hash and
its stored outputs still exist, the step is reused instead of run. That makes a retry or a rerun
after a crash cheap, and a changed picture re-runs composition only.

Failures: every exception ends the attempt with a recorded error and its kind (`failure_of`). A
step that hits a transient error is first tried again in place (STEP_ATTEMPTS, STEP_BACKOFF_S
doubling). An attempt that ends for a transient or unexpected reason is retried as a whole later:
the execution waits, PENDING with `retry_at` (EXECUTION_RETRY_BACKOFF_S, doubling), at most
EXECUTION_MAX_RETRIES times, and resumes from its last finished step. A permanent error fails it
at once. A worker that lost its claim (jobs.render.queue) stops without writing anything more.

A chain of step tasks: a render task (django-q2) runs RENDER_STEPS_PER_TASK steps (one by default),
and a worker runs only the steps whose resource (cpu, gpu) it serves. At the next step, or at a step
it does not serve (and cannot reuse), it hands the execution off: it records what is done, leaves the
execution PENDING with `needs` set and wakes the cluster that serves the next step. The worker that
claims it continues the same attempt: steps this attempt finished keep their records, and the first
unfinished step runs there. No worker holds a render while it waits. Each step's record says where
it ran (`host`, `cluster`) and what it needed (`resource`). The in-process runners (run_jobs,
render_job, demo) run every step in one go.

One module, past 500 lines: the attempt, its outcome and the in-process queue runner share the
claim, the fence and the outcome record.
"""

import logging
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import requests
import tenacity
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from jobs.models import ErrorKind, ExecutionStatus, Job, JobExecution
from jobs.records import StepRecord, recent_steps, step_record, step_write
from jobs.render import progress
from jobs.render.claims import (
    DB_CONNECTION_ERRORS,
    ClaimLost,
    Heartbeat,
    database_reopen,
    execution_fence,
    execution_save_fenced,
)
from jobs.render.progress import Reporter
from jobs.render.queue import (
    attempts_allowed,
    cluster_of,
    execution_claim,
    execution_claim_next,
    own_cluster,
    retry_delay_s,
    served_resources,
    wake_for_waiting_team,
    wake_worker,
    wake_worker_at,
)
from jobs.render.steps import STEPS, RenderContext, Step, inputs_hash
from jobs.render.workspace import AttemptFolder, work_cache_prune
from jobs.webhooks import events
from media_engine.errors import Cancelled, MediaError

logger = logging.getLogger(__name__)

# S3 answers a retry may get past, besides any 5xx.
S3_TRANSIENT_CODES = {
    "RequestTimeout",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "InternalError",
    "ServiceUnavailable",
}
S3_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
# Fields an attempt's end writes.
OUTCOME_FIELDS = [
    "status",
    "detail",
    "error",
    "error_kind",
    "finished_at",
    "started_at",
    "retry_at",
    "progress",
    "current_step",
    "steps",
    "results",
    "retry_count",
]


@dataclass(frozen=True)
class Failure:
    kind: str  # an ErrorKind
    message: str

    @property
    def retryable(self) -> bool:
        return self.kind != ErrorKind.PERMANENT


def failure_of(error: BaseException) -> Failure:
    """What ended an attempt, in words, and whether a retry may help."""
    if isinstance(error, MediaError):
        return Failure(ErrorKind.PERMANENT if error.permanent else ErrorKind.TRANSIENT, str(error))
    if isinstance(error, ValidationError):
        return Failure(ErrorKind.PERMANENT, "; ".join(error.messages))
    if isinstance(error, FileNotFoundError):
        if _in_work_folder(error.filename):  # removed under the render: a retry makes it again
            return Failure(ErrorKind.TRANSIENT, f"missing work file: {error.filename}")
        return Failure(ErrorKind.PERMANENT, f"missing file: {error.filename or error}")
    if isinstance(error, PermissionError):
        return Failure(ErrorKind.PERMANENT, f"permission denied: {error.filename or error}")
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = str(error.response.get("Error", {}).get("Code", ""))
        if status >= 500 or status in (408, 429) or code in S3_TRANSIENT_CODES:
            return Failure(ErrorKind.TRANSIENT, f"storage unavailable: {error}")
        if status == 404 or code in S3_MISSING_CODES:
            return Failure(ErrorKind.PERMANENT, f"missing file in storage: {error}")
        return Failure(ErrorKind.PERMANENT, f"storage refused the request: {error}")
    if isinstance(error, (BotoCoreError, S3UploadFailedError)):
        return Failure(ErrorKind.TRANSIENT, f"storage unreachable: {error}")
    if isinstance(error, DB_CONNECTION_ERRORS):
        return Failure(ErrorKind.TRANSIENT, f"database connection lost: {error}")
    if isinstance(error, (OSError, subprocess.TimeoutExpired, requests.RequestException)):
        return Failure(ErrorKind.TRANSIENT, f"storage or network error: {error}")
    return Failure(ErrorKind.UNEXPECTED, f"unexpected error {type(error).__name__}: {error}")


def _in_work_folder(filename) -> bool:
    """Whether a path lies in this host's work folder or its temp folder (files a render makes)."""
    if not filename:
        return False
    path = Path(os.path.abspath(filename))
    return any(
        folder == path or folder in path.parents
        for folder in (Path(settings.WORK_ROOT).absolute(), Path(tempfile.gettempdir()).absolute())
    )


def execution_run_next(*, chained: bool = False) -> JobExecution | None:
    """Claim the best waiting execution and render it; None when nothing waits. `chained` (a render
    task): RENDER_STEPS_PER_TASK steps, then the render is queued again for its next step."""
    execution = execution_claim_next()
    if execution is not None:
        execution_run(execution=execution, steps=settings.RENDER_STEPS_PER_TASK if chained else 0)
    return execution


def execution_run(
    *, execution: JobExecution, on_progress: Callable[[JobExecution], None] | None = None, steps: int = 0
) -> JobExecution:
    """Run one attempt of an execution (or this worker's part of it: at most `steps` steps when given),
    reusing every step whose inputs did not change. The execution ends finished, waiting for a delayed
    retry, or handed off for its next step (PENDING, `handed_off`); one left RUNNING was taken over by
    another worker, and this one stopped without writing more."""
    job = execution.job
    if execution.status != ExecutionStatus.RUNNING and not execution_claim(execution=execution):
        raise ValidationError(f"Execution {execution.pk} is {execution.status}; it cannot be run now.")
    elapsed = (timezone.now() - execution.started_at).total_seconds()
    deadline = time.monotonic() + settings.EXECUTION_TIME_LIMIT_S - max(0.0, elapsed)
    reporter = Reporter(execution, on_progress)
    started = time.monotonic()
    served = served_resources()
    hand_off_to: tuple[str, str] | None = None
    # One folder per attempt, leased to this process: a worker that was taken over never shares
    # files with the new owner, and no other worker's clean-up removes it while this one lives.
    with Heartbeat(execution) as heartbeat, AttemptFolder(execution.pk, execution.attempt) as workdir:
        context = RenderContext(
            execution=execution,
            job=job,
            workdir=workdir,
            cancel=_cancel_check(execution, deadline, heartbeat),
            report=reporter.report,
            fence=lambda: execution_fence(execution),
        )
        try:
            hand_off_to = _attempt(context, reporter, deadline, heartbeat, served, steps)
        except ClaimLost as lost:
            logger.warning("%s; this worker stops and leaves the execution to its new owner", lost)
            execution.status = ExecutionStatus.RUNNING  # as far as this worker knows: it wrote no outcome
    if hand_off_to is not None:
        # Once the heartbeat has stopped and the attempt folder is gone: the worker that continues
        # (on this host, perhaps) never meets them.
        try:
            execution_hand_off(reporter, needs=hand_off_to[0], step=hand_off_to[1])
        except ClaimLost as lost:
            logger.warning("%s; this worker stops and leaves the execution to its new owner", lost)
            execution.status = ExecutionStatus.RUNNING
    _log_outcome(execution, time.monotonic() - started)
    work_cache_prune(unused_days=settings.WORK_CACHE_DAYS)
    return execution


def _log_outcome(execution: JobExecution, seconds: float) -> None:
    """One line on the worker's log for every attempt's end."""
    where = f"execution {execution.pk} (job {execution.job_id}) attempt {execution.attempt}"
    if execution.status == ExecutionStatus.SUCCESS:
        logger.info("%s: SUCCESS in %.1f s", where, seconds)
    elif execution.status == ExecutionStatus.PENDING and execution.handed_off:
        logger.info("%s: handed off after %.1f s: %s", where, seconds, execution.detail)
    elif execution.status == ExecutionStatus.PENDING:
        logger.warning(
            "%s: %s error, retry scheduled at %s: %s",
            where,
            execution.error_kind,
            execution.retry_at and execution.retry_at.isoformat(timespec="seconds"),
            execution.error,
        )
    elif execution.status == ExecutionStatus.FAILED:
        logger.error(
            "%s: FAILED (%s) after %.1f s: %s", where, execution.error_kind, seconds, execution.error
        )
    elif execution.status == ExecutionStatus.CANCELLED:
        logger.info("%s: CANCELLED after %.1f s", where, seconds)
    else:
        logger.warning(
            "%s: taken over by another worker after %.1f s; this worker stored nothing more", where, seconds
        )


def _attempt(
    context: RenderContext,
    reporter: Reporter,
    deadline: float,
    heartbeat: Heartbeat,
    served: list[str],
    steps: int,
) -> tuple[str, str] | None:
    """The steps this worker serves (at most `steps` run, when given), then the attempt's outcome;
    or (the resource, the step) to hand the execution off for: at the first step it neither serves
    nor can reuse, or the first after `steps` it ran. Raises ClaimLost when another worker holds the
    execution."""
    current = ""
    ran = 0
    try:
        for current, step in STEPS.items():
            if context.cancel():
                raise Cancelled("cancelled by an operator")
            if steps and ran >= steps:
                return step.needs(context.job), current
            outcome = _run_recorded(context, current, step, served=served)
            if outcome == NOT_SERVED:
                return step.needs(context.job), current
            ran += outcome == RAN
    except Cancelled:
        if heartbeat.lost.is_set():
            raise ClaimLost(f"execution {context.execution.pk}: taken over during {current}") from None
        if time.monotonic() >= deadline:
            minutes = settings.EXECUTION_TIME_LIMIT_S / 60
            message = f"Stopped: the time limit of {minutes:g} min was reached during {current}"
            execution_finish(
                reporter, ExecutionStatus.FAILED, message, error=message, error_kind=ErrorKind.PERMANENT
            )
        else:
            execution_finish(reporter, ExecutionStatus.CANCELLED, f"Cancelled during {current}")
    except ClaimLost:
        raise
    except Exception as error:  # noqa: BLE001 - every error ends the attempt, recorded and classified
        _attempt_failed(reporter, current, error)
    else:
        fallbacks = "; ".join(dict.fromkeys(context.fallbacks))
        detail = "Done" + (f" (fallbacks: {fallbacks})" if fallbacks else "")
        context.execution.progress = 100
        execution_finish(reporter, ExecutionStatus.SUCCESS, detail)
    return None


def _cancel_check(execution: JobExecution, deadline: float, heartbeat: Heartbeat) -> Callable[[], bool]:
    """True once an operator asked to cancel, the time limit passed, or another worker took the
    execution over (the database is asked about once a second)."""
    last_check = [0.0]
    stop = [False]

    def check() -> bool:
        if heartbeat.lost.is_set():
            return True
        now = time.monotonic()
        if not stop[0] and now - last_check[0] >= progress.PROGRESS_SAVE_INTERVAL_S:
            last_check[0] = now
            stop[0] = now >= deadline
            try:
                row = (
                    JobExecution.objects.filter(pk=execution.pk)
                    .values_list("cancel_requested", "attempt", "status")
                    .first()
                )
            except DB_CONNECTION_ERRORS:
                logger.warning(
                    "execution %s: not checked for a cancel, the database connection was lost", execution.pk
                )
                database_reopen()  # asked again at the next check
                return stop[0]
            if row is None or row[1:] != (execution.attempt, ExecutionStatus.RUNNING):
                heartbeat.lost.set()
                return True
            stop[0] = stop[0] or row[0]
        return stop[0]

    return check


def _attempt_failed(reporter: Reporter, step: str, error: Exception) -> None:
    """End the attempt on an error: fail at once when it is permanent or the last allowed attempt,
    else wait for a delayed retry."""
    failure = failure_of(error)
    if failure.kind == ErrorKind.UNEXPECTED:
        logger.error(
            "execution %s: unexpected error in %s",
            reporter.execution.pk,
            step or "the render",
            exc_info=error,
        )
    if isinstance(error, DB_CONNECTION_ERRORS):
        database_reopen()
    execution = reporter.execution
    message = f"{step} failed: {failure.message}" if step else failure.message
    if not failure.retryable:
        execution_finish(reporter, ExecutionStatus.FAILED, message, error=message, error_kind=failure.kind)
    elif execution.attempt >= attempts_allowed():
        message = f"{message}; gave up after attempt {execution.attempt} of {attempts_allowed()}"
        execution_finish(reporter, ExecutionStatus.FAILED, message, error=message, error_kind=failure.kind)
    else:
        execution_retry_later(reporter, message, error_kind=failure.kind)


def execution_retry_later(reporter: Reporter, message: str, *, error_kind: str) -> None:
    """End the attempt and let the execution wait for its next one, which resumes from the last
    finished step; a one-off schedule wakes a worker then. The wait doubles with every attempt."""
    execution = reporter.execution
    delay_s = retry_delay_s(execution.attempt)
    execution.retry_at = timezone.now() + timedelta(seconds=delay_s)
    execution.status = ExecutionStatus.PENDING
    execution.started_at = None  # the next attempt gets the whole time limit
    execution.retry_count += 1
    execution.error, execution.error_kind = message, error_kind
    when = timezone.localtime(execution.retry_at).strftime("%H:%M:%S %Z")
    execution.detail = (
        f"{message}; attempt {execution.attempt} of {attempts_allowed()} ended, "
        f"next attempt at {when} (in {delay_s:g} s)"
    )[-500:]
    _record_outcome(execution, also=lambda: wake_worker_at(execution.retry_at, execution.needs))
    wake_for_waiting_team()
    reporter.publish()


def execution_hand_off(reporter: Reporter, *, needs: str, step: str) -> None:
    """End this worker's part of the attempt before `step`, which needs a resource it does not serve:
    the execution waits, PENDING, for a worker of the cluster serving `needs`, which continues the
    attempt from the last finished step. Neither a failure nor a retry: no attempt ends, nothing is
    counted, and the wait is not counted against the time limit (jobs.render.queue.execution_claim).
    An operator's cancel asked for meanwhile cancels it instead."""
    execution = reporter.execution
    if JobExecution.objects.filter(pk=execution.pk, cancel_requested=True).exists():
        execution_finish(reporter, ExecutionStatus.CANCELLED, f"Cancelled before {step}")
        return
    execution.status = ExecutionStatus.PENDING
    execution.needs = needs
    execution.handed_off = True
    execution.retry_at = None
    execution.detail = f"Waiting for a {needs} worker (cluster {cluster_of(needs)}) for {step}"
    _record_outcome(
        execution,
        fields=[*OUTCOME_FIELDS, "needs", "handed_off"],
        also=lambda: transaction.on_commit(lambda: wake_worker(needs)),
    )
    wake_for_waiting_team()  # the team has one render less running meanwhile
    reporter.publish()


def execution_finish(
    reporter: Reporter, status: str, detail: str, *, error: str = "", error_kind: str = ""
) -> None:
    """End an execution: record its status, steps and results, and publish the last event."""
    execution = reporter.execution
    execution.status = status
    execution.detail = detail[:500]
    execution.error = error
    execution.error_kind = error_kind
    execution.finished_at = timezone.now()
    execution.retry_at = None
    # The webhook event is stored in the transaction that finishes the execution: it exists exactly
    # when the outcome does, and is sent after the commit (or by the sweep, if this worker dies first).
    _record_outcome(execution, also=lambda: events.execution_event_record(execution=execution))
    wake_for_waiting_team()
    reporter.publish()


def _record_outcome(
    execution: JobExecution, *, fields: list[str] = OUTCOME_FIELDS, also: Callable[[], None] | None = None
) -> None:
    """Write the attempt's end (fenced: never over a new owner's). A lost database connection is
    retried for a few seconds, so that a blip at the end of a long render does not cost the render;
    if the database stays away the error is raised and the execution is taken over once silent.
    Never writes cancel_requested: an operator may have set it meanwhile."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(DB_CONNECTION_ERRORS),
        stop=tenacity.stop_after_attempt(5),
        wait=tenacity.wait_exponential(multiplier=0.5, max=8),
        before_sleep=lambda state: database_reopen(),
        reraise=True,
    )
    for attempt in retrying:
        with attempt, transaction.atomic():
            execution_save_fenced(execution, fields)
            if also is not None:
                also()


RAN, REUSED, NOT_SERVED = "ran", "reused", "not served"


def _run_recorded(context: RenderContext, name: str, step: Step, *, served: list[str]) -> str:
    """Run one step (RAN), or reuse an earlier run's outputs when its inputs are unchanged (REUSED);
    NOT_SERVED (and nothing done) when the step must run and needs a resource this worker does not
    serve."""
    execution = context.execution
    inputs = step.inputs(context)
    input_hash = inputs_hash(inputs)
    started = timezone.now()
    own = step_record(execution.steps, name)
    if own.raw.get("attempt") == execution.attempt and _reusable(
        own, input_hash, execution.results, stored=True
    ):
        # Finished by this attempt before a hand-off: kept as recorded, where it ran (its outputs
        # were stored by this attempt, and its progress was reported then).
        _apply(context, name, step, own.raw)
        return REUSED
    needs = step.needs(context.job)
    where = {
        "resource": needs,
        "host": socket.gethostname(),
        "cluster": own_cluster(),
        "attempt": execution.attempt,
    }
    reused = _find_reusable(context.job, name, input_hash)
    if reused is not None:
        record = {
            **reused,
            **where,
            "status": "reused",
            "started_at": started.isoformat(),
            "finished_at": started.isoformat(),
            "duration_s": 0.0,
        }
        _apply(context, name, step, record)
        context.report(name, 1.0, f"{name}: unchanged, reused", force=True)
        return REUSED
    if needs not in served:
        return NOT_SERVED
    execution.needs = needs
    step_write(execution, name, {"status": "running", "started_at": started.isoformat(), **where})
    context.report(name, 0.0, f"{name}: started", force=True)
    clock = time.monotonic()
    retrying = _step_retrying(context, name)
    try:
        outputs, data = retrying(step.run, context, inputs)
    except ClaimLost:
        raise
    except Exception as error:  # recorded on the step, then raised again
        tries = retrying.statistics.get("attempt_number", 1)
        step_write(
            execution,
            name,
            {
                "status": "cancelled" if isinstance(error, Cancelled) else "failed",
                "started_at": started.isoformat(),
                "finished_at": timezone.now().isoformat(),
                "duration_s": round(time.monotonic() - clock, 3),
                "error": str(error) if isinstance(error, Cancelled) else failure_of(error).message,
                **({"tries": tries} if tries > 1 else {}),
                **where,
            },
        )
        raise
    _apply(
        context,
        name,
        step,
        {
            "status": "done",
            "input_hash": input_hash,
            "outputs": outputs,
            "data": data,
            "started_at": started.isoformat(),
            "finished_at": timezone.now().isoformat(),
            "duration_s": round(time.monotonic() - clock, 3),
            **where,
        },
    )
    context.report(name, 1.0, f"{name}: done", force=True)
    return RAN


def _step_retrying(context: RenderContext, name: str) -> tenacity.Retrying:
    """Tries of one step within an attempt: a transient error is tried again in place,
    STEP_BACKOFF_S later, doubling, STEP_ATTEMPTS tries in all; anything else ends the attempt."""
    tries = max(1, settings.STEP_ATTEMPTS)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        failure = failure_of(state.outcome.exception())
        database_reopen()
        context.execution.retry_count += 1
        context.report(
            name,
            0.0,
            f"{name}: {failure.message}; trying again in {state.upcoming_sleep:g} s "
            f"(try {state.attempt_number + 1}/{tries})",
            force=True,
        )

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda error: failure_of(error).kind == ErrorKind.TRANSIENT),
        stop=tenacity.stop_after_attempt(tries),
        wait=tenacity.wait_exponential(multiplier=settings.STEP_BACKOFF_S, min=0),
        sleep=lambda seconds: sleep_unless_cancelled(context, seconds),
        before_sleep=before_sleep,
        reraise=True,
    )


def _apply(context: RenderContext, name: str, step: Step, record: dict) -> None:
    """Record a finished (or reused) step and hand later steps what they need from it."""
    execution = context.execution
    step_write(execution, name, record)
    execution.results = {**execution.results, **step_record({name: record}, name).outputs}
    data = record.get("data", {})
    context.fallbacks.extend(data.get("fallbacks", []))
    if step.restore is not None:
        step.restore(context, data)


def sleep_unless_cancelled(context: RenderContext, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if context.cancel():
            raise Cancelled("cancelled while waiting to retry")
        time.sleep(min(0.2, max(0.0, end - time.monotonic())))


def _find_reusable(job: Job, step: str, input_hash: str) -> dict | None:
    """A finished record of `step` with these inputs whose outputs are still stored: only while its
    execution still lists them in its results (a clean-up empties results before it deletes files,
    so a render never picks what is being deleted; see jobs.maintenance.cleanup)."""
    for steps, results in recent_steps(job):
        record = step_record(steps, step)
        if _reusable(record, input_hash, results):
            return record.raw
    return None


def _reusable(record: StepRecord, input_hash: str, results: dict | None, *, stored: bool = False) -> bool:
    """Whether a step record finished with these inputs and its outputs are still listed and stored
    (`stored`: known to be, so storage is not asked)."""
    if not record.finished or record.raw.get("input_hash") != input_hash:
        return False
    if not record.outputs.items() <= (results or {}).items():
        return False
    return stored or all(default_storage.exists(key) for key in record.outputs.values())


# ---------------------------------------------------------------- running the queue


@dataclass
class RunSummary:
    attempted: int = 0
    run: int = 0
    succeeded: int = 0
    failed: int = 0
    last_id: int | None = None


def jobs_run(
    *,
    max_jobs: int,
    stop_when_empty: bool = True,
    poll_s: float = 5.0,
    on_execution: Callable[[JobExecution, str], None] | None = None,
) -> RunSummary:
    """Render waiting executions in this process, best first, until `max_jobs` were taken.

    Claiming and rendering are separate calls (rather than `render.execution_run_next`) so that a
    crash (the database gone for good) is still reported with the execution's id; the execution
    stays RUNNING and is taken over once its heartbeat goes stale (or by reset_stuck_jobs). An
    attempt that ended in a delayed retry counts as run, neither succeeded nor failed.
    """
    summary = RunSummary()
    while summary.attempted < max_jobs:
        execution = execution_claim_next()
        if execution is None:
            if stop_when_empty:
                break
            time.sleep(poll_s)
            continue
        summary.attempted += 1
        summary.last_id = execution.pk
        try:
            execution_run(execution=execution)
        except Exception as error:  # a bug, not a media failure: keep serving the queue
            logger.exception("execution %s crashed", execution.pk)
            summary.failed += 1
            if on_execution is not None:
                on_execution(execution, f"crashed: {error!r}")
            continue
        summary.run += 1
        if execution.status == ExecutionStatus.SUCCESS:
            summary.succeeded += 1
        elif execution.status == ExecutionStatus.FAILED:
            summary.failed += 1
        if on_execution is not None:
            taken_over = execution.status == ExecutionStatus.RUNNING  # render.execution_run says so
            on_execution(
                execution,
                "stopped: another worker took it over"
                if taken_over
                else f"{execution.status}: {execution.detail}",
            )
    return summary
