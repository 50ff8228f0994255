"""Maintenance commands: what they print, their exit status, and how they refuse bad arguments."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_q.models import OrmQ
from django_q.tasks import async_task

from jobs import services
from jobs.models import CleanupRun, ExecutionStatus, JobExecution
from jobs.render import loop
from tests.factories import make_execution, make_job


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def finished_with_video(job, *, age: timedelta, size: int) -> JobExecution:
    execution = make_execution(job, status=ExecutionStatus.SUCCESS)
    key = default_storage.save(f"jobs/{job.pk}/{execution.pk}/video.mp4", ContentFile(b"x" * size))
    JobExecution.objects.filter(pk=execution.pk).update(
        results={"video": key},
        finished_at=timezone.now() - age,
        created_at=timezone.now() - age,
    )
    execution.refresh_from_db()
    return execution


def record_runs(monkeypatch) -> list[int]:
    """Replace the render with one that records the job and succeeds at once."""
    ran = []

    def fake_run(*, execution, on_progress=None):
        ran.append(execution.job_id)
        execution.status = ExecutionStatus.SUCCESS
        execution.detail = "Done"
        execution.finished_at = timezone.now()
        execution.save()
        return execution

    monkeypatch.setattr(loop, "execution_run", fake_run)
    return ran


# ---------------------------------------------------------------- run_jobs


@pytest.mark.django_db
def test_run_jobs_reports_a_failed_execution_and_exits_with_status_1():
    job = make_job(title="No language")  # narration fails at once: the job has no language
    execution = services.execution_create(job=job)
    out = StringIO()

    with pytest.raises(CommandError, match="1 of 1 executions failed") as raised:
        call_command("run_jobs", stdout=out)

    assert raised.value.returncode == 1
    output = out.getvalue()
    assert (
        f"Execution {execution.pk} (job {job.pk} 'No language'): FAILED: narration failed: "
        "The job has no language; choose one to narrate it." in output
    )
    assert output.splitlines()[-1] == f"attempted=1 run=1 succeeded=0 failed=1 last_id={execution.pk}"
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED


@pytest.mark.django_db
def test_run_jobs_on_an_empty_queue_prints_a_zero_summary_and_succeeds():
    assert run("run_jobs").splitlines() == ["attempted=0 run=0 succeeded=0 failed=0 last_id=-"]


@pytest.mark.django_db
def test_run_jobs_runs_the_prioritised_job_first(monkeypatch):
    ran = record_runs(monkeypatch)
    first, second, third = make_job(), make_job(), make_job()
    for job in (first, second, third):
        services.execution_create(job=job)
    services.job_increase_priority(job=third)

    output = run("run_jobs", "--max-jobs", "1")

    assert ran == [third.pk]
    assert "attempted=1 run=1 succeeded=1 failed=0" in output
    assert JobExecution.objects.filter(status=ExecutionStatus.PENDING).count() == 2
    run("run_jobs")
    assert ran == [third.pk, first.pk, second.pk]


@pytest.mark.django_db
def test_run_jobs_stops_at_max_jobs(monkeypatch):
    ran = record_runs(monkeypatch)
    for _ in range(4):
        services.execution_create(job=make_job())

    output = run("run_jobs", "--max-jobs", "3", "--no-stop-when-empty", "--poll", "0.01")

    assert len(ran) == 3
    assert "attempted=3 run=3 succeeded=3 failed=0" in output


@pytest.mark.django_db
def test_run_jobs_without_stop_when_empty_polls_until_work_arrives(monkeypatch):
    ran = record_runs(monkeypatch)
    polls = []

    def sleep(seconds):
        polls.append(seconds)
        services.execution_create(job=make_job())

    monkeypatch.setattr(loop.time, "sleep", sleep)

    output = run("run_jobs", "--max-jobs", "1", "--no-stop-when-empty", "--poll", "2")

    assert polls == [2.0] and len(ran) == 1
    assert "attempted=1 run=1 succeeded=1" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-jobs", "0"], "--max-jobs must be at least 1"),
        (["--max-jobs", "many"], "invalid int value: 'many'"),
        (["--poll", "0"], "--poll must be a positive number"),
        (["--stop"], "unrecognized arguments"),
    ],
)
@pytest.mark.django_db
def test_run_jobs_rejects_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("run_jobs", *args, stdout=StringIO())


# ---------------------------------------------------------------- reset_stuck_jobs


@pytest.mark.django_db
def test_reset_stuck_jobs_prints_each_reset_execution_and_a_total(django_capture_on_commit_callbacks):
    stuck = make_execution(make_job(), status=ExecutionStatus.RUNNING, worker_host="gpu-1")
    JobExecution.objects.filter(pk=stuck.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    make_execution(make_job(), status=ExecutionStatus.RUNNING, heartbeat_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        output = run("reset_stuck_jobs", "--older-than", "90s")

    assert (
        f"Execution {stuck.pk} (job {stuck.job_id}): PENDING, Waiting for a worker: reset after no "
        "heartbeat from gpu-1 for 5 min" in output
    )
    assert output.splitlines()[-1] == "Reset 1 stuck executions (silent for more than 0:01:30)."
    assert OrmQ.objects.count() == 1


@pytest.mark.django_db
def test_reset_stuck_jobs_defaults_to_an_hour():
    execution = make_execution(make_job(), status=ExecutionStatus.RUNNING)
    JobExecution.objects.filter(pk=execution.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=30))

    output = run("reset_stuck_jobs")

    assert output.splitlines() == ["Reset 0 stuck executions (silent for more than 1:00:00)."]


def test_reset_stuck_jobs_explains_a_bad_duration():
    with pytest.raises(CommandError) as raised:
        call_command("reset_stuck_jobs", "--older-than", "banana")
    message = str(raised.value)
    assert "argument --older-than: 'banana' is not a duration" in message
    assert "e.g. 90s, 60m, 2h" in message


# ---------------------------------------------------------------- cleanup_old_jobs


@pytest.mark.django_db
def test_cleanup_old_jobs_dry_run_lists_files_with_sizes_and_deletes_nothing():
    job = make_job()
    old = finished_with_video(job, age=timedelta(days=40), size=2048)
    finished_with_video(job, age=timedelta(days=1), size=10)

    output = run("cleanup_old_jobs", "--dry-run")

    key = old.results["video"]
    assert f"  {key} (2.0 KiB)" in output
    assert (
        output.splitlines()[-1] == "Would remove 1 executions, 0 deleted jobs, 1 files, 2048 bytes (2.0 KiB)."
    )
    assert default_storage.exists(key) and JobExecution.objects.filter(pk=old.pk).exists()

    output = run("cleanup_old_jobs", "--days", "30")

    assert output.splitlines()[-1] == "Removed 1 executions, 0 deleted jobs, 1 files, 2048 bytes (2.0 KiB)."
    assert not default_storage.exists(key) and not JobExecution.objects.filter(pk=old.pk).exists()


def test_cleanup_old_jobs_rejects_negative_days():
    with pytest.raises(CommandError, match="--days must be 0 or more"):
        call_command("cleanup_old_jobs", "--days", "-1")


# ---------------------------------------------------------------- cleanup_storage


@pytest.mark.django_db
def test_cleanup_storage_manual_prints_files_and_bytes_freed(settings):
    settings.CLEANUP_KEEP_EXECUTIONS = 1
    job = make_job()
    old = finished_with_video(job, age=timedelta(days=3), size=3000)
    finished_with_video(job, age=timedelta(days=1), size=10)

    output = run("cleanup_storage", "--mode", "manual")

    assert f"  {old.results['video']} (2.9 KiB)" in output
    assert output.splitlines()[-1] == "Freed 1 files, 3000 bytes (2.9 KiB) from 1 executions."
    old.refresh_from_db()
    assert old.results == {}
    assert CleanupRun.objects.get().bytes_freed == 3000


@pytest.mark.django_db
def test_cleanup_storage_auto_mode_says_why_it_skipped():
    CleanupRun.objects.create(mode="manual")

    output = run("cleanup_storage", "--mode", "auto", "--dry-run")

    assert output.startswith("Skipped: the last clean-up ran 0 min ago")
    assert CleanupRun.objects.filter(mode="auto", skipped=True, dry_run=True).count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: --mode"),
        (["--mode", "sometimes"], "invalid choice: 'sometimes'"),
    ],
)
def test_cleanup_storage_rejects_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("cleanup_storage", *args)


# ---------------------------------------------------------------- job_health


@pytest.mark.django_db
def test_job_health_shows_statuses_queue_running_executions_and_workers():
    make_execution(make_job(), status=ExecutionStatus.PENDING)
    make_execution(make_job(), status=ExecutionStatus.FAILED)
    running = make_execution(
        make_job(title="Tea"),
        status=ExecutionStatus.RUNNING,
        worker_host="gpu-1",
        current_step="compose",
        progress=60,
        heartbeat_at=timezone.now() - timedelta(seconds=30),
    )
    stale = make_execution(
        make_job(title="Old"),
        status=ExecutionStatus.RUNNING,
        worker_host="gpu-1",
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    async_task("jobs.tasks.run_next_execution", cluster="gpu")

    output = run("job_health")

    lines = output.splitlines()
    assert lines[0] == "Executions: PENDING 1, RUNNING 2, SUCCESS 0, FAILED 1, CANCELLED 0"
    assert lines[1] == "Queue: 1 executions waiting; django-q tasks queued: gpu 1"
    assert lines[2] == "Running: 2"
    assert lines[3].startswith(
        f"  execution {running.pk} (job {running.job_id} 'Tea') on gpu-1: compose 60%, heartbeat 3"
    )
    assert lines[3].endswith(", attempt 0")
    assert not lines[3].endswith("(stale)")
    assert lines[4].startswith(f"  execution {stale.pk} (job {stale.job_id} 'Old') on gpu-1: starting 0%")
    assert lines[4].endswith("(stale)")
    assert lines[5] == "Workers with running executions: 1"
    assert lines[6].startswith("  gpu-1: newest heartbeat 3")
    assert lines[7] == "django-q clusters reporting: 0"


@pytest.mark.django_db
def test_job_health_shows_attempts_and_the_last_error_of_failing_executions(settings):
    settings.EXECUTION_MAX_RETRIES = 3
    waiting = make_execution(
        make_job(title="Tea"),
        status=ExecutionStatus.PENDING,
        attempt=1,
        retry_at=timezone.now() + timedelta(seconds=60),
        error_kind="transient",
        error="compose failed: storage unreachable: connection refused",
    )
    failed = make_execution(
        make_job(title="Old"),
        status=ExecutionStatus.FAILED,
        attempt=4,
        finished_at=timezone.now(),
        error_kind="unexpected",
        error="subtitles failed: unexpected error ValueError: x; gave up after attempt 4 of 4",
    )
    make_execution(
        make_job(),
        status=ExecutionStatus.FAILED,
        error="long ago",
        attempt=1,
        finished_at=timezone.now() - timedelta(days=2),
    )
    make_execution(make_job(), status=ExecutionStatus.SUCCESS, attempt=1)

    lines = run("job_health").splitlines()

    start = lines.index(next(line for line in lines if line.startswith("Failing")))
    assert lines[start].endswith(": 2")
    assert lines[start + 1].startswith(
        f"  execution {failed.pk} (job {failed.job_id} 'Old'): FAILED, attempt 4 of 4; "
        "last error (unexpected): subtitles failed: unexpected error ValueError"
    )
    assert re.fullmatch(
        rf"  execution {waiting.pk} \(job {waiting.job_id} 'Tea'\): PENDING, attempt 1 of 4, next attempt at "
        r"\d\d:\d\d:\d\d \(in (59|60) s\); last error \(transient\): compose failed: storage unreachable: "
        r"connection refused",
        lines[start + 2],
    )


def test_benchmark_i2v_refuses_clearly_on_a_host_without_a_gpu():
    import torch

    with pytest.raises(CommandError, match="Only --random-weights is supported"):
        call_command("benchmark", "i2v")
    if torch.cuda.is_available():
        pytest.skip("this host has a GPU; the benchmark itself is run by hand")
    with pytest.raises(CommandError, match="i2v benchmark needs an NVIDIA GPU"):
        call_command("benchmark", "i2v", "--random-weights")
