"""Maintenance services: resetting stuck executions, cleaning up stored files, health, metrics, schedules."""

import os
from datetime import timedelta
from importlib import import_module

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from jobs import tasks
from jobs.maintenance import cleanup, health, schedules
from jobs.maintenance.cleanup import StoragePolicy
from jobs.models import CleanupRun, ExecutionStatus, Job, JobExecution, JobSplit
from jobs.render import queue
from tests.factories import make_execution, make_job

DAY = timedelta(days=1)


def store(key: str, size: int = 100) -> str:
    saved = default_storage.save(key, ContentFile(b"x" * size))
    assert saved == key
    return key


def finished(
    job: Job,
    *,
    age: timedelta = timedelta(0),
    status: str = ExecutionStatus.SUCCESS,
    results: dict | None = None,
    steps: dict | None = None,
) -> JobExecution:
    execution = make_execution(job, status=status, results=results or {}, steps=steps or {})
    JobExecution.objects.filter(pk=execution.pk).update(
        finished_at=timezone.now() - age, created_at=timezone.now() - age - timedelta(minutes=5)
    )
    execution.refresh_from_db()
    return execution


def with_files(
    job: Job,
    *,
    age: timedelta = timedelta(0),
    size: int = 100,
    names=("video.mp4",),
    reused: dict | None = None,
) -> JobExecution:
    """A finished execution whose own files are stored under its folder, plus `reused` keys."""
    execution = finished(job, age=age)
    results = {name.split(".")[0]: store(f"jobs/{job.pk}/{execution.pk}/{name}", size) for name in names}
    results.update(reused or {})
    steps = {"narration": {"status": "done", "outputs": dict(results), "duration_s": 1.0}}
    JobExecution.objects.filter(pk=execution.pk).update(results=results, steps=steps)
    execution.refresh_from_db()
    return execution


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("60m", 3600), ("2h", 7200), ("1d", 86400)])
def test_parse_duration_accepts_seconds_minutes_hours_days(text, seconds):
    assert cleanup.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["banana", "10", "-5m", "0m", "1.5h", ""])
def test_parse_duration_rejects_what_is_not_a_duration(text):
    with pytest.raises(ValueError, match="e.g. 90s, 60m, 2h"):
        cleanup.parse_duration(text)


# ---------------------------------------------------------------- stuck executions


@pytest.mark.django_db
def test_reset_stuck_requeues_silent_running_executions_and_wakes_a_worker(
    django_capture_on_commit_callbacks,
):
    silent = make_execution(
        make_job(),
        status=ExecutionStatus.RUNNING,
        worker_host="gpu-7",
        retry_count=1,
        started_at=timezone.now(),
    )
    JobExecution.objects.filter(pk=silent.pk).update(heartbeat_at=timezone.now() - timedelta(hours=2))
    no_heartbeat = make_execution(make_job(), status=ExecutionStatus.RUNNING)
    JobExecution.objects.filter(pk=no_heartbeat.pk).update(updated_at=timezone.now() - timedelta(hours=2))
    alive = make_execution(make_job(), status=ExecutionStatus.RUNNING, heartbeat_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        reset = queue.executions_reset_stuck(older_than=timedelta(minutes=60))

    assert {execution.pk for execution in reset} == {silent.pk, no_heartbeat.pk}
    silent.refresh_from_db()
    assert silent.status == ExecutionStatus.PENDING
    assert silent.retry_count == 2  # the reset ends an attempt: one more retry
    assert silent.error_kind == "transient" and "the worker on gpu-7 went silent" in silent.error
    assert silent.started_at is None  # the next attempt gets the whole time limit
    assert silent.worker_host == "gpu-7"
    assert "no heartbeat from gpu-7 for 120 min" in silent.detail
    alive.refresh_from_db()
    assert alive.status == ExecutionStatus.RUNNING
    assert OrmQ.objects.filter(key="default").count() == 2


@pytest.mark.django_db
def test_reset_stuck_cancels_a_silent_execution_an_operator_asked_to_cancel(
    django_capture_on_commit_callbacks,
):
    execution = make_execution(make_job(), status=ExecutionStatus.RUNNING, cancel_requested=True)
    JobExecution.objects.filter(pk=execution.pk).update(heartbeat_at=timezone.now() - timedelta(hours=3))

    with django_capture_on_commit_callbacks(execute=True):
        queue.executions_reset_stuck(older_than=timedelta(minutes=60))

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLED
    assert execution.finished_at is not None
    assert OrmQ.objects.count() == 0


# ---------------------------------------------------------------- old jobs


@pytest.mark.django_db
def test_old_jobs_cleanup_removes_old_executions_but_keeps_files_newer_ones_reuse():
    job = make_job()
    old = finished(job, age=40 * DAY)
    narration = store(f"jobs/{job.pk}/{old.pk}/narration.wav", 300)
    old_video = store(f"jobs/{job.pk}/{old.pk}/video.mp4", 500)
    leftover = store(f"jobs/{job.pk}/{old.pk}/tmp/part.bin", 50)
    JobExecution.objects.filter(pk=old.pk).update(results={"narration": narration, "video": old_video})
    # The newer run reused the old narration: only its step record and results name it.
    newer = finished(job, age=35 * DAY)
    new_video = store(f"jobs/{job.pk}/{newer.pk}/video.mp4", 700)
    JobExecution.objects.filter(pk=newer.pk).update(
        results={"narration": narration, "video": new_video},
        steps={"narration": {"status": "reused", "outputs": {"narration": narration}}},
    )

    report = cleanup.old_jobs_cleanup(days=30)

    assert report.executions == [old.pk]
    assert {stored.key for stored in report.files} == {old_video, leftover}
    assert report.bytes == 550
    assert not JobExecution.objects.filter(pk=old.pk).exists()
    assert JobExecution.objects.filter(pk=newer.pk).exists()  # the latest stays, however old
    assert default_storage.exists(narration) and default_storage.exists(new_video)
    assert not default_storage.exists(old_video) and not default_storage.exists(leftover)


@pytest.mark.django_db
def test_old_jobs_cleanup_purges_long_deleted_jobs_with_their_files():
    gone = make_job(deleted_at=timezone.now() - 40 * DAY)
    recently_deleted = make_job(deleted_at=timezone.now() - 2 * DAY)
    execution = with_files(gone, age=50 * DAY)
    card = store(f"jobs/{gone.pk}/pictures/000-card.png", 80)
    JobSplit.objects.create(job=gone, index=0, start_ms=0, end_ms=1000, text="a", selected=card)
    gone.narration_audio.save("voice.wav", ContentFile(b"v" * 20))
    narration_key = gone.narration_audio.name
    kept = with_files(recently_deleted, age=50 * DAY)

    report = cleanup.old_jobs_cleanup(days=30)

    assert report.jobs == [gone.pk]
    assert not Job.objects.filter(pk=gone.pk).exists()
    assert not JobExecution.objects.filter(pk=execution.pk).exists()
    assert not default_storage.exists(card) and not default_storage.exists(narration_key)
    assert not default_storage.exists(execution.results["video"])
    assert default_storage.exists(kept.results["video"])
    assert Job.objects.filter(pk=recently_deleted.pk).exists()


@pytest.mark.django_db
def test_old_jobs_cleanup_dry_run_lists_sizes_and_deletes_nothing():
    job = make_job()
    old = with_files(job, age=40 * DAY, size=1234)
    with_files(job, age=1 * DAY)

    report = cleanup.old_jobs_cleanup(days=30, dry_run=True)

    assert [(stored.key, stored.size) for stored in report.files] == [(old.results["video"], 1234)]
    assert JobExecution.objects.filter(pk=old.pk).exists()
    assert default_storage.exists(old.results["video"])


@pytest.mark.django_db
def test_old_jobs_cleanup_leaves_a_rendering_job_alone():
    job = make_job()
    old = with_files(job, age=40 * DAY)
    make_execution(job, status=ExecutionStatus.RUNNING, heartbeat_at=timezone.now())

    report = cleanup.old_jobs_cleanup(days=30)

    assert report.files == [] and report.executions == []
    assert JobExecution.objects.filter(pk=old.pk).exists()


# ---------------------------------------------------------------- storage clean-up


@pytest.mark.django_db
def test_storage_cleanup_keeps_the_newest_executions_per_job_and_clears_older_results():
    job = make_job()
    oldest = with_files(job, age=4 * DAY, size=100)
    older = with_files(job, age=3 * DAY, size=100, names=("video.mp4", "narration.wav"))
    # The two kept executions reuse older's narration.
    reuse = {"narration": older.results["narration"]}
    kept = [with_files(job, age=2 * DAY, size=100, reused=reuse), with_files(job, age=1 * DAY, reused=reuse)]
    policy = StoragePolicy(keep_executions=2, max_bytes=10**9, min_interval=timedelta(hours=6))

    report = cleanup.storage_cleanup(mode="manual", policy=policy)

    assert sorted(report.executions) == [oldest.pk, older.pk]
    assert {stored.key for stored in report.files} == {oldest.results["video"], older.results["video"]}
    assert default_storage.exists(older.results["narration"])  # still reused by a kept execution
    oldest.refresh_from_db()
    older.refresh_from_db()
    assert oldest.results == {} and older.results == {}
    assert oldest.steps  # the row and its history stay
    for execution in kept:
        assert default_storage.exists(execution.results["video"])
    run = CleanupRun.objects.get()
    assert (run.mode, run.dry_run, run.skipped) == ("manual", False, False)
    assert (run.files_removed, run.bytes_freed) == (2, 200)


@pytest.mark.django_db
def test_storage_cleanup_removes_oldest_files_until_under_the_size_cap_but_never_a_latest_execution():
    first_job, second_job = make_job(), make_job()
    oldest = with_files(first_job, age=5 * DAY, size=1000)
    second_oldest = with_files(second_job, age=4 * DAY, size=1000)
    middle = with_files(first_job, age=3 * DAY, size=1000)
    latest = [with_files(first_job, age=2 * DAY, size=1000), with_files(second_job, age=1 * DAY, size=1000)]
    policy = StoragePolicy(keep_executions=10, max_bytes=3500, min_interval=timedelta(hours=6))

    report = cleanup.storage_cleanup(mode="manual", policy=policy)

    assert report.executions == [oldest.pk, second_oldest.pk]  # 5000 -> 3000 bytes
    assert default_storage.exists(middle.results["video"])
    assert all(default_storage.exists(execution.results["video"]) for execution in latest)

    tiny_cap = StoragePolicy(keep_executions=10, max_bytes=0, min_interval=timedelta(hours=6))
    report = cleanup.storage_cleanup(mode="manual", policy=tiny_cap)
    assert report.executions == [middle.pk]
    assert all(default_storage.exists(execution.results["video"]) for execution in latest)


@pytest.mark.django_db
def test_storage_cleanup_dry_run_removes_nothing_and_records_a_dry_run():
    job = make_job()
    old = with_files(job, age=3 * DAY, size=4096)
    with_files(job, age=1 * DAY)
    policy = StoragePolicy(keep_executions=1, max_bytes=10**9, min_interval=timedelta(hours=6))

    report = cleanup.storage_cleanup(mode="manual", dry_run=True, policy=policy)

    assert [(stored.key, stored.size) for stored in report.files] == [(old.results["video"], 4096)]
    old.refresh_from_db()
    assert old.results and default_storage.exists(old.results["video"])
    run = CleanupRun.objects.get()
    assert run.dry_run and run.files_removed == 1 and run.bytes_freed == 4096


@pytest.mark.django_db
def test_storage_cleanup_auto_mode_skips_and_records_it_within_the_minimum_interval():
    job = make_job()
    old = with_files(job, age=3 * DAY)
    with_files(job, age=1 * DAY)
    policy = StoragePolicy(keep_executions=1, max_bytes=10**9, min_interval=timedelta(hours=6))
    recent = CleanupRun.objects.create(mode="manual")
    CleanupRun.objects.create(mode="manual", dry_run=True)  # dry runs do not count

    report = cleanup.storage_cleanup(mode="auto", policy=policy)

    assert report.skipped and report.files == []
    assert "waits 6 h between runs" in report.detail
    assert CleanupRun.objects.filter(mode="auto", skipped=True).count() == 1
    assert default_storage.exists(old.results["video"])

    CleanupRun.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(hours=7))
    CleanupRun.objects.filter(skipped=True).update(created_at=timezone.now() - timedelta(hours=7))
    report = cleanup.storage_cleanup(mode="auto", policy=policy)
    assert not report.skipped and report.executions == [old.pk]


@pytest.mark.django_db
def test_storage_cleanup_keeps_pictures_that_segments_use():
    job = make_job()
    old = finished(job, age=3 * DAY)
    picture = store(f"jobs/{job.pk}/{old.pk}/picture.png")
    JobExecution.objects.filter(pk=old.pk).update(results={"picture": picture})
    JobSplit.objects.create(job=job, index=0, start_ms=0, end_ms=1000, text="a", images=[{"key": picture}])
    with_files(job, age=1 * DAY)
    policy = StoragePolicy(keep_executions=1, max_bytes=10**9, min_interval=timedelta(hours=6))

    report = cleanup.storage_cleanup(mode="manual", policy=policy)

    assert report.executions == [old.pk] and report.files == []
    assert default_storage.exists(picture)


@pytest.mark.django_db
def test_storage_cleanup_removes_old_chunks_that_no_kept_execution_is_made_of():
    job = make_job()
    old = with_files(job, age=3 * DAY)
    latest = with_files(job, age=1 * DAY)
    for execution, chunks in ((old, ["a.mp4", "b.mp4"]), (latest, ["b.mp4", "c.mp4", "audio-c.m4a"])):
        # The latest also lists the audio track its audio chunk is cut from (what its previews cut).
        sources = ["audio-c.wav"] if execution is latest else []
        steps = {
            **execution.steps,
            "compose": {"status": "done", "data": {"chunks": chunks, "chunk_sources": sources}},
        }
        JobExecution.objects.filter(pk=execution.pk).update(steps=steps)
    for name in ("a.mp4", "b.mp4", "c.mp4", "audio-c.m4a", "audio-c.wav", "unused.mp4", "recent.mp4"):
        store(f"chunks/{name}")
        if name != "recent.mp4":  # made just now: a render may be about to use it
            stamp = (timezone.now() - 10 * DAY).timestamp()
            os.utime(default_storage.path(f"chunks/{name}"), (stamp, stamp))
    policy = StoragePolicy(
        keep_executions=1, max_bytes=10**9, min_interval=timedelta(hours=6), chunk_age=7 * DAY
    )

    report = cleanup.storage_cleanup(mode="manual", policy=policy)

    assert report.executions == [old.pk]
    removed = {stored.key for stored in report.files}
    assert {"chunks/a.mp4", "chunks/unused.mp4"} <= removed
    assert not removed & {
        "chunks/b.mp4",
        "chunks/c.mp4",
        "chunks/audio-c.m4a",
        "chunks/audio-c.wav",
        "chunks/recent.mp4",
    }
    assert sorted(default_storage.listdir("chunks")[1]) == [
        "audio-c.m4a",
        "audio-c.wav",
        "b.mp4",
        "c.mp4",
        "recent.mp4",
    ]
    assert "unused video chunks older than 7 days: 2" in report.detail


def test_storage_policy_reads_settings_with_defaults(settings):
    assert StoragePolicy.from_settings() == StoragePolicy(
        3, 50 * 1024**3, timedelta(hours=6), timedelta(days=7)
    )
    settings.CLEANUP_KEEP_EXECUTIONS = 5
    settings.CLEANUP_MAX_BYTES = 1000
    settings.CLEANUP_MIN_INTERVAL_S = 60
    settings.CLEANUP_CHUNK_DAYS = 0.5
    assert StoragePolicy.from_settings() == StoragePolicy(5, 1000, timedelta(minutes=1), timedelta(hours=12))


# ---------------------------------------------------------------- metrics and schedules


@pytest.mark.django_db
def test_metrics_snapshot_counts_statuses_queue_retries_and_step_durations():
    make_execution(
        make_job(),
        status=ExecutionStatus.SUCCESS,
        finished_at=timezone.now(),
        steps={
            "narration": {"status": "done", "duration_s": 2.0},
            "compose": {"status": "done", "duration_s": 10.0},
        },
    )
    make_execution(
        make_job(),
        status=ExecutionStatus.SUCCESS,
        finished_at=timezone.now(),
        steps={
            "narration": {"status": "done", "duration_s": 4.0},
            "compose": {"status": "reused", "duration_s": 0.0},
        },
    )
    make_execution(
        make_job(),
        status=ExecutionStatus.FAILED,
        retry_count=2,
        steps={"narration": {"status": "failed", "duration_s": 99.0}},
    )
    make_execution(make_job(), status=ExecutionStatus.PENDING, retry_count=1)
    make_execution(make_job(deleted_at=timezone.now()), status=ExecutionStatus.PENDING)

    snapshot = health.metrics_snapshot()

    assert snapshot["executions_by_status"] == {
        "PENDING": 2,
        "RUNNING": 0,
        "SUCCESS": 2,
        "FAILED": 1,
        "CANCELLED": 0,
    }
    assert snapshot["queue_depth"] == 1  # a deleted job's execution never runs
    assert snapshot["retries_total"] == 3
    durations = {step: sorted(values) for step, values in snapshot["step_durations_s"].items()}
    assert durations == {"compose": [10.0], "narration": [2.0, 4.0]}
    assert snapshot["orm_queue_depth"] == {}


@pytest.mark.django_db
def test_schedules_ensure_is_idempotent_and_restores_changed_schedules():
    first = schedules.schedules_ensure()
    Schedule.objects.filter(name="batchvideo: reset stuck jobs").update(minutes=99)
    next_runs = dict(Schedule.objects.values_list("name", "next_run"))

    again = schedules.schedules_ensure()

    assert [schedule.pk for schedule in first] == [schedule.pk for schedule in again]
    assert Schedule.objects.count() == len(schedules.SCHEDULES)
    by_name = {schedule.name: schedule for schedule in Schedule.objects.all()}
    reset = by_name["batchvideo: reset stuck jobs"]
    assert (reset.schedule_type, reset.minutes) == (Schedule.MINUTES, 10)
    assert by_name["batchvideo: storage clean-up"].schedule_type == Schedule.HOURLY
    assert by_name["batchvideo: old jobs clean-up"].schedule_type == Schedule.DAILY
    assert dict(Schedule.objects.values_list("name", "next_run")) == next_runs
    for schedule in by_name.values():
        module, name = schedule.func.rsplit(".", 1)
        assert callable(getattr(import_module(module), name))
        assert schedule.cluster == "default"


@pytest.mark.django_db
def test_scheduled_tasks_run_the_maintenance_services():
    assert tasks.task_reset_stuck() == 0
    assert tasks.task_cleanup_old_jobs() == 0
    assert tasks.task_cleanup_storage().startswith("Kept the newest 3 executions per job")
    assert tasks.task_cleanup_storage().startswith("Skipped")
