"""Several workers on one host (issue 24): wake-ups nobody can use up, a takeover as soon as a
render is stale, errors classified by cause, one log line per outcome, chunk writes that never
replace another writer's. The deployment test with real `qcluster` processes is
tests/jobs/test_worker_farm_chaos.py."""

import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from accounts.storage import storage_put
from jobs import files, services
from jobs.models import ErrorKind, ExecutionStatus, JobExecution
from jobs.render import claims, loop, queue
from media_engine.errors import MediaError
from media_engine.words import espeak_synthesize
from tests.factories import make_execution, make_job, make_preset_job


def render_tasks() -> int:
    return sum(1 for task in OrmQ.objects.all() if task.func() == queue.RENDER_TASK)


@pytest.mark.django_db
def test_a_claim_that_leaves_others_waiting_sends_one_more_wake_up(django_capture_on_commit_callbacks):
    """The wake-up a claim used may have been sent for another execution: the other still gets one."""
    first, second = make_execution(job=make_job()), make_execution(job=make_job())

    with django_capture_on_commit_callbacks(execute=True):
        claimed = queue.execution_claim_next()

    assert claimed == first
    assert render_tasks() == 1  # for `second`, still waiting
    with django_capture_on_commit_callbacks(execute=True):
        assert queue.execution_claim_next() == second
    assert render_tasks() == 1  # nothing else waits: no more wake-ups


@pytest.mark.django_db
def test_a_claim_arms_one_takeover_watch_at_the_time_the_render_could_be_stale(settings):
    settings.EXECUTION_STALE_S = 40
    make_execution(job=make_job())
    make_execution(job=make_job())

    first = queue.execution_claim_next()
    JobExecution.objects.filter(pk=first.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=30))
    queue.execution_claim_next()

    [watch] = Schedule.objects.filter(name=queue.TAKEOVER_WATCH)
    first.refresh_from_db()
    assert watch.func == queue.RENDER_TASK and watch.schedule_type == Schedule.ONCE
    assert watch.cluster == settings.CPU_CLUSTER
    # the quietest of the two renders: its worker, if killed, is taken over then
    assert watch.next_run == first.heartbeat_at + timedelta(seconds=41)


@pytest.mark.django_db
def test_no_takeover_watch_while_nothing_renders():
    make_execution(job=make_job(), status=ExecutionStatus.SUCCESS)
    assert queue.execution_claim_next() is None
    assert not Schedule.objects.filter(name=queue.TAKEOVER_WATCH).exists()


@pytest.mark.django_db
def test_a_killed_workers_render_is_taken_over_by_the_watchs_task_and_says_so_in_the_log(settings, caplog):
    settings.EXECUTION_STALE_S = 5
    execution = make_execution(job=make_job())
    assert queue.execution_claim_next() == execution
    # its worker was killed: no heartbeat since
    JobExecution.objects.filter(pk=execution.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=6))

    with caplog.at_level(logging.WARNING, logger="jobs.render.queue"):
        taken = queue.execution_claim_next()  # what the watch's task does first

    assert taken == execution and taken.attempt == 2
    assert f"execution {execution.pk} (job {execution.job_id}): taken over as attempt 2" in caplog.text


def test_a_missing_file_in_the_work_folder_is_transient_and_elsewhere_permanent(settings, tmp_path):
    settings.WORK_ROOT = tmp_path / "work"
    removed = loop.failure_of(FileNotFoundError(2, "No such file", str(tmp_path / "work/runs/x/video.mp4")))
    assert removed.kind == ErrorKind.TRANSIENT and "missing work file:" in removed.message
    missing = loop.failure_of(FileNotFoundError(2, "No such file", "/music/calm.mp3"))
    assert missing.kind == ErrorKind.PERMANENT and missing.message == "missing file: /music/calm.mp3"


def test_espeak_that_cannot_write_its_wav_says_so_and_is_transient(tmp_path):
    with pytest.raises(MediaError) as raised:
        espeak_synthesize("hello", voice="en", rate=170, out_path=tmp_path / "gone" / "sentence.wav")
    assert str(raised.value) == (
        f"espeak-ng failed: cannot write {tmp_path / 'gone' / 'sentence.wav'}: No such file or directory"
    )
    assert not raised.value.permanent


@pytest.mark.slow
@pytest.mark.django_db
def test_every_outcome_is_one_line_on_the_worker_log(caplog, settings, monkeypatch):
    settings.SEGMENT_TARGET_MS = 1500
    job = make_preset_job(content="今天天气很好。")
    with caplog.at_level(logging.INFO, logger="jobs.render.loop"):
        done = loop.execution_run(execution=services.execution_create(job=job))
    assert done.status == ExecutionStatus.SUCCESS
    assert f"execution {done.pk} (job {job.pk}) attempt 1: SUCCESS in " in caplog.text

    caplog.clear()
    failing = make_job()  # no language: narration fails for good
    with caplog.at_level(logging.INFO, logger="jobs.render.loop"):
        failed = loop.execution_run(execution=make_execution(job=failing))
    assert failed.status == ExecutionStatus.FAILED
    assert f"execution {failed.pk} (job {failing.pk}) attempt 1: FAILED (permanent) after " in caplog.text

    caplog.clear()
    settings.STEP_ATTEMPTS = 1
    monkeypatch.setattr(
        loop, "_run_recorded", lambda *args, **kwargs: (_ for _ in ()).throw(ConnectionResetError("reset"))
    )
    with caplog.at_level(logging.INFO, logger="jobs.render.loop"):
        waiting = loop.execution_run(execution=make_execution(job=make_job()))
    assert waiting.status == ExecutionStatus.PENDING
    assert (
        f"execution {waiting.pk} (job {waiting.job_id}) attempt 1: transient error, retry scheduled at "
        in caplog.text
    )


def test_a_chunk_already_stored_is_kept_never_replaced_or_deleted(tmp_path):
    storage = FileSystemStorage(location=tmp_path / "store")
    first, second = tmp_path / "first.mp4", tmp_path / "second.mp4"
    first.write_bytes(b"first writer")
    second.write_bytes(b"second writer")

    assert storage_put(storage, first, "chunks/abc.mp4", replace=False)
    stored = Path(storage.path("chunks/abc.mp4"))
    inode = stored.stat().st_ino
    assert not storage_put(storage, second, "chunks/abc.mp4", replace=False)

    assert stored.read_bytes() == b"first writer" and stored.stat().st_ino == inode
    assert sorted(os.listdir(stored.parent)) == ["abc.mp4"]  # no temporary left beside it


def test_an_output_is_replaced_in_one_step_never_deleted_first(tmp_path, monkeypatch):
    storage = FileSystemStorage(location=tmp_path / "store")
    old, new = tmp_path / "old.wav", tmp_path / "new.wav"
    old.write_bytes(b"old")
    new.write_bytes(b"new narration")
    storage_put(storage, old, "jobs/1/2/narration.wav")
    monkeypatch.setattr(FileSystemStorage, "delete", lambda *args: pytest.fail("deleted before replacing"))

    storage_put(storage, new, "jobs/1/2/narration.wav")

    assert Path(storage.path("jobs/1/2/narration.wav")).read_bytes() == b"new narration"
    assert sorted(os.listdir(tmp_path / "store/jobs/1/2")) == ["narration.wav"]


@pytest.mark.django_db
def test_a_chunk_store_whose_render_lost_its_claim_stores_nothing(tmp_path):
    chunk = tmp_path / "abc.mp4"
    chunk.write_bytes(b"chunk")

    def lost():
        raise claims.ClaimLost("taken over")

    with pytest.raises(claims.ClaimLost):
        files.chunk_store(fence=lost).keep(chunk)
    assert not default_storage.exists(files.chunk_key("abc.mp4"))
    files.chunk_store(fence=lambda: None).keep(chunk)
    assert default_storage.exists(files.chunk_key("abc.mp4"))


@pytest.mark.django_db
def test_a_stored_output_seeds_the_work_cache_through_a_whole_file(settings, tmp_path):
    local = tmp_path / "cover.jpg"
    local.write_bytes(b"cover")
    default_storage.save("jobs/1/2/cover.jpg", ContentFile(b"older"))
    assert files.store(local, "jobs/1/2/cover.jpg") == "jobs/1/2/cover.jpg"
    assert (Path(settings.WORK_ROOT) / "cache/jobs/1/2/cover.jpg").read_bytes() == b"cover"
