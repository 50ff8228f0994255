"""Executions: retries, cancel, the time limit, and a worker killed mid-render."""

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from jobs import services
from jobs.models import ExecutionStatus, JobExecution
from jobs.render import loop, progress, queue, steps
from media_engine.errors import MediaError
from tests.factories import make_preset_job
from tests.processes import process_env, start, stop

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(settings):
    settings.STEP_BACKOFF_S = 0.01
    settings.SEGMENT_TARGET_MS = 1500
    return make_preset_job(title="可靠性", content="第一句话。第二句话。", speech_speed=1.3)


def failing_then_passing(monkeypatch, name: str, failures: list[Exception]) -> None:
    """The step `name` raises `failures` one by one before it runs for real."""
    original = steps.STEPS[name].run

    def run(context, inputs):
        if failures:
            raise failures.pop(0)
        return original(context, inputs)

    monkeypatch.setitem(steps.STEPS, name, replace(steps.STEPS[name], run=run))


def test_transient_errors_are_retried_with_exponential_backoff(job, monkeypatch):
    waits = []
    monkeypatch.setattr(loop, "sleep_unless_cancelled", lambda context, seconds: waits.append(seconds))
    failures = [MediaError("model server busy", permanent=False), OSError("connection reset")]
    failing_then_passing(monkeypatch, "cover", failures)
    execution = loop.execution_run(execution=services.execution_create(job=job))
    assert execution.status == ExecutionStatus.SUCCESS, execution.detail
    assert execution.retry_count == 2
    assert waits == [0.01, 0.02]


def test_a_step_that_keeps_failing_transiently_ends_the_attempt_and_fails_after_the_last(
    job, monkeypatch, settings
):
    settings.STEP_ATTEMPTS = 2
    settings.EXECUTION_MAX_RETRIES = 0
    monkeypatch.setattr(loop, "sleep_unless_cancelled", lambda context, seconds: None)
    failures = [MediaError("busy", permanent=False)] * 5
    failing_then_passing(monkeypatch, "cover", list(failures))
    execution = loop.execution_run(execution=services.execution_create(job=job))
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error == "cover failed: busy; gave up after attempt 1 of 1"
    assert execution.error_kind == "transient"
    assert execution.steps["cover"]["status"] == "failed" and execution.steps["cover"]["tries"] == 2


def test_permanent_errors_fail_at_once(job, monkeypatch):
    failures = [MediaError("the picture is corrupt"), MediaError("never reached")]
    failing_then_passing(monkeypatch, "pictures", failures)
    execution = loop.execution_run(execution=services.execution_create(job=job))
    assert execution.status == ExecutionStatus.FAILED
    assert execution.retry_count == 0
    assert execution.detail == execution.error == "pictures failed: the picture is corrupt"
    assert execution.error_kind == "permanent"
    assert len(failures) == 1


def test_cancel_a_pending_execution_at_once(job):
    execution = services.execution_create(job=job)
    services.execution_cancel(execution=execution)
    assert execution.status == ExecutionStatus.CANCELLED
    assert queue.execution_claim_next() is None


def test_cancel_a_running_execution_stops_its_ffmpeg(job, monkeypatch, settings):
    monkeypatch.setattr(progress, "PROGRESS_SAVE_INTERVAL_S", 0.0)
    seen_ffmpeg = []
    original = steps.STEPS["compose"].run

    def compose_then_cancel(context, inputs):
        JobExecution.objects.filter(pk=context.execution.pk).update(cancel_requested=True)

        def watch(*args, **kwargs):
            seen_ffmpeg.extend(
                p.pid for p in psutil.Process().children(recursive=True) if "ffmpeg" in p.name()
            )

        context.report = watch
        return original(context, inputs)

    monkeypatch.setitem(steps.STEPS, "compose", replace(steps.STEPS["compose"], run=compose_then_cancel))
    execution = loop.execution_run(execution=services.execution_create(job=job))
    assert execution.status == ExecutionStatus.CANCELLED
    assert execution.detail == "Cancelled during compose"
    assert execution.steps["compose"]["status"] == "cancelled"
    assert not (
        Path(settings.WORK_ROOT) / "runs" / f"execution-{execution.pk}-attempt-{execution.attempt}"
    ).exists()
    assert not [p for p in psutil.Process().children(recursive=True) if "ffmpeg" in p.name()]
    execution.refresh_from_db()
    assert execution.cancel_requested


def test_time_limit_fails_the_execution_cleanly(job, monkeypatch, settings):
    settings.EXECUTION_TIME_LIMIT_S = 1
    monkeypatch.setattr(progress, "PROGRESS_SAVE_INTERVAL_S", 0.05)

    def slow_subtitles(context, inputs):
        loop.sleep_unless_cancelled(context, 30)
        return {}, {}

    # Only the slow step: on a busy host the real narration alone can outlast the limit.
    monkeypatch.setattr(loop, "STEPS", {"subtitles": steps.Step(3, lambda context: {}, slow_subtitles)})
    started = time.monotonic()
    execution = loop.execution_run(execution=services.execution_create(job=job))
    assert time.monotonic() - started < 20
    assert execution.status == ExecutionStatus.FAILED
    assert "time limit of" in execution.error and "subtitles" in execution.error


def test_a_running_execution_is_not_claimed_twice(job):
    execution = services.execution_create(job=job)
    assert queue.execution_claim(execution=JobExecution.objects.get(pk=execution.pk))
    assert not queue.execution_claim(execution=JobExecution.objects.get(pk=execution.pk))
    assert queue.execution_claim_next() is None


def test_a_silent_running_execution_is_taken_over(job, settings):
    settings.EXECUTION_STALE_S = 60
    execution = services.execution_create(job=job)
    assert queue.execution_claim(execution=execution)
    JobExecution.objects.filter(pk=execution.pk).update(
        heartbeat_at=execution.heartbeat_at - __import__("datetime").timedelta(seconds=120)
    )
    taken = queue.execution_claim_next()
    assert taken.pk == execution.pk and taken.retry_count == 1


@pytest.mark.processes
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_execution_is_picked_up_again_and_finishes(job, settings, tmp_path):
    env = process_env(Q_TIMEOUT_S="60", Q_RETRY_S="75", EXECUTION_STALE_S="5", SEGMENT_TARGET_MS="1500")
    execution = services.job_enqueue(job=job)
    first = start(["manage.py", "qcluster"], env, tmp_path / "worker1.log")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            execution.refresh_from_db()
            if execution.status == ExecutionStatus.RUNNING and execution.progress >= 30:
                break
            assert execution.status in (ExecutionStatus.PENDING, ExecutionStatus.RUNNING), execution.detail
            time.sleep(0.2)
        else:
            pytest.fail(f"the worker never got far: {(tmp_path / 'worker1.log').read_text()}")
        killed_at = execution.progress
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        stop(first)
    assert JobExecution.objects.get(pk=execution.pk).status == ExecutionStatus.RUNNING

    second = start(["manage.py", "qcluster"], env, tmp_path / "worker2.log")
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            execution.refresh_from_db()
            if execution.status not in (ExecutionStatus.PENDING, ExecutionStatus.RUNNING):
                break
            time.sleep(0.5)
    finally:
        stop(second)
    assert execution.status == ExecutionStatus.SUCCESS, (
        execution.detail,
        (tmp_path / "worker2.log").read_text(),
    )
    assert execution.retry_count == 1
    assert killed_at < 100
    assert JobExecution.objects.filter(job=job).count() == 1
    stored = sorted(
        p.name for p in (Path(settings.MEDIA_ROOT) / "jobs" / str(job.pk) / str(execution.pk)).iterdir()
    )
    assert stored == [
        "cover.jpg",
        "narration.wav",
        "subtitles.ass",
        "subtitles.srt",
        "subtitles.vtt",
        "video.mp4",
    ]
    assert execution.steps["narration"]["status"] in ("done", "reused")
