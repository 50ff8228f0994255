"""The render: one loop over the steps in jobs.steps, recording each step on the execution.

Each step's inputs are hashed; when an earlier run of the same job recorded the same hash and
its stored outputs still exist, the step is reused instead of run. That makes a rerun after a
crash cheap, and a changed picture re-runs composition only.
"""

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.utils import timezone

from media_engine.errors import Cancelled, MediaError

from .files import work_cache_prune
from .models import ExecutionStatus, Job, JobExecution
from . import progress
from .progress import Reporter
from .queue import execution_claim, execution_claim_next
from .steps import STEPS, RenderContext, Step, inputs_hash


def execution_run_next() -> JobExecution | None:
    """Claim the best waiting execution and render it; None when nothing waits."""
    execution = execution_claim_next()
    if execution is not None:
        execution_run(execution=execution)
    return execution


def execution_run(
    *, execution: JobExecution, on_progress: Callable[[JobExecution], None] | None = None
) -> JobExecution:
    """Render an execution to the end, reusing every step whose inputs did not change."""
    job = execution.job
    if execution.status != ExecutionStatus.RUNNING and not execution_claim(execution=execution):
        raise ValidationError(f"Execution {execution.pk} is {execution.status}; it cannot be run now.")
    execution.error = ""
    execution.save(update_fields=["error", "updated_at"])
    elapsed = (timezone.now() - execution.started_at).total_seconds()
    deadline = time.monotonic() + settings.EXECUTION_TIME_LIMIT_S - max(0.0, elapsed)
    reporter = Reporter(execution, on_progress)
    context = RenderContext(
        execution=execution,
        job=job,
        workdir=Path(settings.WORK_ROOT) / f"job-{job.pk}" / f"execution-{execution.pk}",
        cancel=_cancel_check(execution, deadline),
        report=reporter.report,
    )
    context.workdir.mkdir(parents=True, exist_ok=True)
    current = ""
    try:
        for current, step in STEPS.items():
            if context.cancel():
                raise Cancelled("cancelled by an operator")
            _run_recorded(context, current, step)
    except Cancelled:
        if time.monotonic() >= deadline:
            minutes = settings.EXECUTION_TIME_LIMIT_S / 60
            message = f"Stopped: the time limit of {minutes:g} min was reached during {current}"
            execution_finish(reporter, ExecutionStatus.FAILED, message, error=message)
        else:
            execution_finish(reporter, ExecutionStatus.CANCELLED, f"Cancelled during {current}")
        shutil.rmtree(context.workdir, ignore_errors=True)
    except (MediaError, ValidationError) as error:
        message = _error_text(error)
        execution_finish(reporter, ExecutionStatus.FAILED, f"{current} failed: {message}", error=message)
    else:
        fallbacks = "; ".join(dict.fromkeys(context.fallbacks))
        detail = "Done" + (f" (fallbacks: {fallbacks})" if fallbacks else "")
        execution.progress = 100
        execution_finish(reporter, ExecutionStatus.SUCCESS, detail)
        shutil.rmtree(context.workdir, ignore_errors=True)
    work_cache_prune(unused_days=settings.WORK_CACHE_DAYS)
    return execution


def _cancel_check(execution: JobExecution, deadline: float) -> Callable[[], bool]:
    """True once an operator asked to cancel, or the time limit passed (checked about once a second)."""
    last_check = [0.0]
    stop = [False]

    def check() -> bool:
        now = time.monotonic()
        if not stop[0] and now - last_check[0] >= progress.PROGRESS_SAVE_INTERVAL_S:
            last_check[0] = now
            stop[0] = now >= deadline or JobExecution.objects.filter(
                pk=execution.pk, cancel_requested=True
            ).exists()
        return stop[0]

    return check


def _error_text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(error.messages)
    return str(error)


def execution_finish(reporter: Reporter, status: str, detail: str, *, error: str = "") -> None:
    """End an execution: record its status, steps and results, and publish the last event."""
    execution = reporter.execution
    execution.status = status
    execution.detail = detail[:500]
    execution.error = error
    execution.finished_at = timezone.now()
    # Never write cancel_requested back: an operator may have set it meanwhile.
    execution.save(update_fields=["status", "detail", "error", "finished_at", "progress", "steps",
                                  "results", "retry_count", "updated_at"])
    reporter.publish()


def _run_recorded(context: RenderContext, name: str, step: Step) -> None:
    """Run one step, or reuse an earlier run's outputs when its inputs are unchanged."""
    execution = context.execution
    inputs = step.inputs(context)
    input_hash = inputs_hash(inputs)
    started = timezone.now()
    reused = _find_reusable(context.job, name, input_hash)
    if reused is not None:
        record = {**reused, "status": "reused", "started_at": started.isoformat(),
                  "finished_at": started.isoformat(), "duration_s": 0.0}
        _apply(context, name, step, record)
        context.report(name, 1.0, f"{name}: unchanged, reused", force=True)
        return
    execution.steps = {**execution.steps, name: {"status": "running", "started_at": started.isoformat()}}
    context.report(name, 0.0, f"{name}: started", force=True)
    clock = time.monotonic()
    try:
        outputs, data = _with_retries(context, name, lambda: step.run(context, inputs))
    except (MediaError, ValidationError, Cancelled) as error:
        execution.steps = {**execution.steps, name: {
            "status": "cancelled" if isinstance(error, Cancelled) else "failed",
            "started_at": started.isoformat(), "finished_at": timezone.now().isoformat(),
            "duration_s": round(time.monotonic() - clock, 3), "error": _error_text(error),
        }}
        raise
    _apply(context, name, step, {
        "status": "done",
        "input_hash": input_hash,
        "outputs": outputs,
        "data": data,
        "started_at": started.isoformat(),
        "finished_at": timezone.now().isoformat(),
        "duration_s": round(time.monotonic() - clock, 3),
    })
    context.report(name, 1.0, f"{name}: done", force=True)


def _apply(context: RenderContext, name: str, step: Step, record: dict) -> None:
    """Record a finished (or reused) step and hand later steps what they need from it."""
    execution = context.execution
    execution.steps = {**execution.steps, name: record}
    execution.results = {**execution.results, **record.get("outputs", {})}
    data = record.get("data", {})
    context.fallbacks.extend(data.get("fallbacks", []))
    if step.restore is not None:
        step.restore(context, data)


def _with_retries(context: RenderContext, step: str, attempt_step: Callable[[], Any]) -> Any:
    """Retry transient failures with exponential back-off; permanent ones fail at once."""
    attempts = max(1, settings.EXECUTION_MAX_ATTEMPTS)
    for attempt in range(1, attempts + 1):
        try:
            return attempt_step()
        except (OSError, BotoCoreError, ClientError) as error:
            failure = MediaError(f"storage or network error: {error}", permanent=False)
        except MediaError as error:
            if error.permanent:
                raise
            failure = error
        if attempt == attempts:
            raise MediaError(f"{failure} (gave up after {attempts} attempts)", permanent=False)
        wait = settings.EXECUTION_BACKOFF_S * 2 ** (attempt - 1)
        context.execution.retry_count += 1
        context.report(step, 0.0, f"{step}: {failure}; retrying in {wait:g} s (attempt {attempt + 1}/{attempts})",
                       force=True)
        sleep_unless_cancelled(context, wait)
    raise AssertionError("unreachable")


def sleep_unless_cancelled(context: RenderContext, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if context.cancel():
            raise Cancelled("cancelled while waiting to retry")
        time.sleep(min(0.2, max(0.0, end - time.monotonic())))


def _find_reusable(job: Job, step: str, input_hash: str) -> dict | None:
    for steps in job.executions.order_by("-id").values_list("steps", flat=True)[:20]:
        record = (steps or {}).get(step)
        if not record or record.get("input_hash") != input_hash or record.get("status") not in ("done", "reused"):
            continue
        if all(default_storage.exists(key) for key in record.get("outputs", {}).values()):
            return record
    return None
