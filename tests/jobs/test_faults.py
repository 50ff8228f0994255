"""Renders under faults (issue 15): bounded retries, a heartbeat beside the work, one owner per
execution, no network call inside a transaction, clean-ups that never delete what a render uses.

The slow tests start real worker processes (`run_jobs` through tests/fault_worker.py, which injects
the faults into their steps) against the test database, so they commit their rows
(`transaction=True`) and need PostgreSQL. Their times are shortened to fit CI on two cores: the
stale time is 1-2 s (the heartbeat beats every quarter of it), back-offs are 1-2 s, and storage is
down for 8 s rather than 20. One module, past 500 lines: the faults share their worker, waiting
and storage helpers, and the issue lists them together.
"""

import json
import os
import re
import signal
import threading
import time
from dataclasses import replace
from datetime import timedelta
from io import BytesIO
from pathlib import Path

import boto3
import pytest
import requests
from botocore.exceptions import ClientError, EndpointConnectionError
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection
from django.urls import reverse
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ, Schedule
from moto.server import ThreadedMotoServer
from PIL import Image

from jobs import services, storyboard
from jobs.files import fetch
from jobs.maintenance import cleanup
from jobs.maintenance.cleanup import StoragePolicy
from jobs.maintenance.presets import presets_seed
from jobs.models import ErrorKind, ExecutionStatus, JobExecution
from jobs.render import claims, loop, progress, queue, steps
from media_engine.errors import MediaError
from tests import processes
from tests.admin.conftest import client_for, job_form, make_operator
from tests.api.conftest import wav_bytes
from tests.factories import make_execution, make_job, make_preset_job
from tests.jobs.test_execution import failing_then_passing
from tests.processes import free_port, process_env, start, stop, wait_for_port
from tests.storage.conftest import Bucket, use_s3

ONE_SENTENCE = "今天天气很好。"
ARTIFACTS = ["cover.jpg", "narration.wav", "subtitles.ass", "subtitles.srt", "subtitles.vtt", "video.mp4"]
# Every worker: small segments, the fastest encoder, a stale time of 2 s.
WORKER_ENV = {
    "SEGMENT_TARGET_MS": "1500",
    "VIDEO_PRESET": "ultrafast",
    "EXECUTION_STALE_S": "2",
    "STEP_BACKOFF_S": "0.5",
}


def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("fault injection across worker processes needs PostgreSQL")


def worker(tmp_path: Path, name: str, faults: dict | None = None, *, max_jobs: int = 1, **env: str):
    """A `run_jobs` worker process polling every 0.2 s, with `faults` injected into its steps. Its
    database connections are named `fault-worker-<name>` (pg_stat_activity's application_name)."""
    database_url = f"{processes.test_database_url()}?application_name=fault-worker-{name}"
    environment = process_env(
        **{**WORKER_ENV, **env}, FAULTS=json.dumps(faults or {}), DATABASE_URL=database_url
    )
    command = [
        "-m",
        "tests.fault_worker",
        "run_jobs",
        "--no-stop-when-empty",
        "--poll",
        "0.2",
        "--max-jobs",
        str(max_jobs),
    ]
    process = start(command, environment, tmp_path / f"{name}.log")
    process.log = tmp_path / f"{name}.log"
    return process


def wait_until(condition, *, timeout: float, what: str, logs: tuple = ()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    shown = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
    pytest.fail(f"{what}: not within {timeout} s\n{shown}")


def row(execution: JobExecution) -> JobExecution:
    return JobExecution.objects.get(pk=execution.pk)


def finished(execution: JobExecution):
    current = row(execution)
    return current if current.status not in (ExecutionStatus.PENDING, ExecutionStatus.RUNNING) else None


def log_times(path: Path) -> list[float]:
    return [float(line.split()[-1]) for line in path.read_text().splitlines()] if path.exists() else []


def stored_artifacts(execution: JobExecution, media_root) -> dict[str, tuple[int, bytes]]:
    folder = Path(media_root) / "jobs" / str(execution.job_id) / str(execution.pk)
    return {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in folder.iterdir()}


@pytest.fixture
def job(settings):
    settings.SEGMENT_TARGET_MS = 1500
    settings.STEP_BACKOFF_S = 0.01
    return make_preset_job(title="故障", content=ONE_SENTENCE)


# ---------------------------------------------------------------- classification


def client_error(status: int, code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    ("error", "kind", "words"),
    [
        (MediaError("the picture is corrupt"), ErrorKind.PERMANENT, "the picture is corrupt"),
        (MediaError("the model server is busy", permanent=False), ErrorKind.TRANSIENT, "busy"),
        (
            FileNotFoundError(2, "No such file", "/music/calm.mp3"),
            ErrorKind.PERMANENT,
            "missing file: /music/calm.mp3",
        ),
        (client_error(404, "NoSuchKey"), ErrorKind.PERMANENT, "missing file in storage"),
        (client_error(403, "AccessDenied"), ErrorKind.PERMANENT, "storage refused the request"),
        (client_error(503, "SlowDown"), ErrorKind.TRANSIENT, "storage unavailable"),
        (EndpointConnectionError(endpoint_url="http://s3"), ErrorKind.TRANSIENT, "storage unreachable"),
        (
            OperationalError("server closed the connection unexpectedly"),
            ErrorKind.TRANSIENT,
            "database connection lost",
        ),
        (ConnectionResetError("connection reset by peer"), ErrorKind.TRANSIENT, "storage or network error"),
        (requests.ConnectionError("refused"), ErrorKind.TRANSIENT, "storage or network error"),
        (KeyError("corner"), ErrorKind.UNEXPECTED, "unexpected error KeyError: 'corner'"),
    ],
)
def test_every_error_is_classified_and_said_in_words(error, kind, words):
    failure = loop.failure_of(error)
    assert failure.kind == kind
    assert words in failure.message


# ---------------------------------------------------------------- retries and takeovers, in process


@pytest.mark.slow
@pytest.mark.django_db
def test_a_transient_failure_waits_for_a_delayed_retry_that_resumes_from_the_last_finished_step(
    job, monkeypatch, settings
):
    settings.STEP_ATTEMPTS = 1
    # The scheduler closes old connections first: keep the test's transaction open.
    monkeypatch.setattr("django_q.scheduler.close_old_django_connections", lambda: None)
    failing_then_passing(monkeypatch, "subtitles", [ConnectionResetError("connection reset by peer")])

    execution = loop.execution_run(execution=services.execution_create(job=job))

    assert (execution.status, execution.attempt, execution.retry_count) == (ExecutionStatus.PENDING, 1, 1)
    assert execution.error == "subtitles failed: storage or network error: connection reset by peer"
    assert execution.error_kind == ErrorKind.TRANSIENT
    assert timedelta(seconds=58) < execution.retry_at - timezone.now() <= timedelta(seconds=60)
    assert "attempt 1 of 4 ended, next attempt at " in execution.detail and "(in 60 s)" in execution.detail
    wake_up = Schedule.objects.get(func=queue.RENDER_TASK)
    assert (wake_up.schedule_type, wake_up.next_run, wake_up.cluster) == (
        Schedule.ONCE,
        execution.retry_at,
        settings.CPU_CLUSTER,
    )
    assert queue.execution_claim_next() is None  # not due yet

    # Due: the render cluster's scheduler sends a render task, and the next attempt resumes.
    past = timezone.now() - timedelta(seconds=1)
    Schedule.objects.filter(pk=wake_up.pk).update(next_run=past)
    JobExecution.objects.filter(pk=execution.pk).update(retry_at=past)
    from django_q.scheduler import scheduler

    scheduler(broker=get_broker())
    assert [task.func() for task in OrmQ.objects.all()].count(queue.RENDER_TASK) == 1
    assert not Schedule.objects.filter(pk=wake_up.pk).exists()  # a one-off
    again = loop.execution_run_next()
    assert again.pk == execution.pk, again
    assert (again.status, again.attempt, again.error, again.retry_at) == (
        ExecutionStatus.SUCCESS,
        2,
        "",
        None,
    )
    assert again.steps["narration"]["status"] == "reused" and again.steps["subtitles"]["status"] == "done"


@pytest.mark.django_db
def test_retries_back_off_exponentially_and_the_last_allowed_attempt_fails(job, monkeypatch, settings):
    settings.EXECUTION_MAX_RETRIES = 2
    settings.EXECUTION_RETRY_BACKOFF_S = 60
    failing_then_passing(monkeypatch, "subtitles", [ValueError(f"bad value {n}") for n in range(5)])
    execution = services.execution_create(job=job)
    waits = []
    for _ in range(3):
        execution = loop.execution_run(execution=JobExecution.objects.get(pk=execution.pk))
        if execution.retry_at:
            waits.append(round((execution.retry_at - timezone.now()).total_seconds()))
            JobExecution.objects.filter(pk=execution.pk).update(retry_at=timezone.now())

    assert waits == [60, 120]
    assert (execution.status, execution.attempt, execution.error_kind) == (
        ExecutionStatus.FAILED,
        3,
        ErrorKind.UNEXPECTED,
    )
    assert execution.error == (
        "subtitles failed: unexpected error ValueError: bad value 2; gave up after attempt 3 of 3"
    )
    assert queue.execution_claim_next() is None


def go_silent(execution: JobExecution) -> None:
    JobExecution.objects.filter(pk=execution.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=2))


@pytest.mark.django_db
def test_takeovers_count_as_attempts_and_past_the_last_one_the_execution_fails(settings):
    settings.EXECUTION_MAX_RETRIES = 2
    settings.EXECUTION_STALE_S = 60
    execution = make_execution(make_job())
    for attempt in (1, 2, 3):
        taken = queue.execution_claim_next()
        assert (taken.pk, taken.attempt, taken.retry_count) == (execution.pk, attempt, attempt - 1)
        JobExecution.objects.filter(pk=execution.pk).update(current_step="compose")
        go_silent(execution)
    assert "went silent during compose" in taken.error and taken.error_kind == ErrorKind.TRANSIENT

    assert queue.execution_claim_next() is None
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED and execution.finished_at
    assert re.fullmatch(
        r"Attempt 3 of 3 ended: the worker on .+ went silent during compose "
        r"\(no heartbeat for 1\d\d s\); gave up",
        execution.error,
    )


@pytest.mark.django_db
def test_reset_stuck_fails_an_execution_that_used_its_last_attempt(settings):
    settings.EXECUTION_MAX_RETRIES = 1
    spent = make_execution(make_job(), status=ExecutionStatus.RUNNING, attempt=2, worker_host="gpu-1")
    go_silent(spent)
    again = make_execution(make_job(), status=ExecutionStatus.RUNNING, attempt=1, worker_host="gpu-2")
    go_silent(again)

    queue.executions_reset_stuck(older_than=timedelta(minutes=1))

    spent.refresh_from_db()
    again.refresh_from_db()
    assert spent.status == ExecutionStatus.FAILED and "gave up" in spent.error
    assert again.status == ExecutionStatus.PENDING and again.retry_count == 1


@pytest.mark.django_db
def test_a_worker_that_lost_its_claim_writes_nothing_more(job):
    execution = services.execution_create(job=job)
    assert queue.execution_claim(execution=execution)
    JobExecution.objects.filter(pk=execution.pk).update(attempt=2, detail="the new owner's")  # taken over
    reporter = progress.Reporter(execution)

    with pytest.raises(claims.ClaimLost):
        reporter.report("narration", 0.5, "the old owner's", force=True)
    with pytest.raises(claims.ClaimLost):
        loop.execution_finish(reporter, ExecutionStatus.SUCCESS, "Done")
    with pytest.raises(claims.ClaimLost):
        claims.execution_fence(execution)

    assert (row(execution).status, row(execution).detail) == (ExecutionStatus.RUNNING, "the new owner's")


@pytest.mark.slow
@pytest.mark.django_db
def test_a_render_taken_over_mid_step_stops_and_stores_nothing_more(job, monkeypatch, settings):
    def taken_over_during_compose(context, inputs):
        JobExecution.objects.filter(pk=context.execution.pk).update(attempt=99)
        return steps.compose_run(context, inputs)

    monkeypatch.setitem(
        steps.STEPS, "compose", replace(steps.STEPS["compose"], run=taken_over_during_compose)
    )
    execution = loop.execution_run(execution=services.execution_create(job=job))

    assert execution.status == ExecutionStatus.RUNNING  # left to its new owner
    assert row(execution).attempt == 99 and "video" not in row(execution).results
    folder = Path(settings.MEDIA_ROOT) / "jobs" / str(job.pk) / str(execution.pk)
    assert sorted(path.name for path in folder.iterdir()) == [
        "narration.wav",
        "subtitles.ass",
        "subtitles.srt",
        "subtitles.vtt",
    ]


# ---------------------------------------------------------------- no network call inside a transaction


@pytest.fixture
def network_calls(monkeypatch):
    """Every storage call and HTTP request, with whether the calling thread's connection was inside
    a transaction (local storage stands in for S3, where each of these is a network call)."""
    calls: list[tuple[str, bool]] = []

    def watch(owner, name, fake=None):
        original = getattr(owner, name)

        def watched(*args, **kwargs):
            calls.append((f"{owner.__name__}.{name}", connection.in_atomic_block))
            return (fake or original)(*args, **kwargs)

        monkeypatch.setattr(owner, name, watched)

    for name in ("_save", "_open", "delete", "exists", "size", "listdir"):
        watch(FileSystemStorage, name)
    watch(requests.Session, "request", fake=fake_llm)
    return calls


def fake_llm(session, method, url, **kwargs) -> requests.Response:
    """An OpenAI-compatible chat answer with as many prompts as the request asks for."""
    asked = kwargs["json"]["messages"][1]["content"]
    count = int(re.search(r"There are (\d+) segments", asked).group(1))
    prompts = [f"a calm landscape, part {number}" for number in range(count)]
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps({"choices": [{"message": {"content": json.dumps(prompts)}}]}).encode()
    return response


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_no_storage_or_http_call_runs_inside_a_database_transaction(network_calls, settings):
    settings.SEGMENT_TARGET_MS = 1500
    settings.LLM_BASE_URL, settings.LLM_MODEL = "http://llm.test/v1", "tiny"
    presets_seed()  # stores the demo channel's logo
    operator = make_operator()
    posted = client_for(operator).post(
        reverse("admin:jobs_job_add"),
        job_form(narration_audio=SimpleUploadedFile("voice.wav", wav_bytes(), "audio/wav")),
    )
    assert posted.status_code == 302
    job = make_preset_job(content="今天天气很好。我们去公园散步吧。")
    first = loop.execution_run(execution=services.execution_create(job=job))
    services.job_update(job=job, user=None, title="新标题")  # a new cover: the first one's can go
    second = loop.execution_run(execution=services.execution_create(job=job))
    assert (first.status, second.status) == (ExecutionStatus.SUCCESS, ExecutionStatus.SUCCESS), second.detail
    assert "a calm landscape, part 0" in job.splits.first().prompt  # the fake LLM answered
    JobExecution.objects.filter(pk=first.pk).update(finished_at=timezone.now() - timedelta(days=40))
    cleanup.storage_cleanup(mode="manual", policy=StoragePolicy(1, 10**12, timedelta(hours=1)))
    cleanup.old_jobs_cleanup(days=30)

    seen = {call for call, _ in network_calls}
    assert {"FileSystemStorage._save", "FileSystemStorage.delete", "Session.request"} <= seen
    assert [call for call, in_transaction in network_calls if in_transaction] == []


@pytest.mark.django_db(transaction=True)
def test_admin_logo_and_reference_uploads_are_stored_outside_a_database_transaction(network_calls):
    operator = make_operator()
    client = client_for(operator)
    logo = SimpleUploadedFile("logo.png", png("red"), "image/png")
    reference = SimpleUploadedFile("voice.wav", wav_bytes(), "audio/wav")
    assert (
        client.post(
            reverse("admin:accounts_account_add"),
            {"username": "mine", "platform": "youtube", "area": "", "logo": logo},
        ).status_code
        == 302
    )
    assert (
        client.post(
            reverse("admin:voices_voice_add"), {"name": "cmn", "language": "", "reference": reference}
        ).status_code
        == 302
    )

    assert "FileSystemStorage._save" in {call for call, _ in network_calls}
    assert [call for call, in_transaction in network_calls if in_transaction] == []


# ---------------------------------------------------------------- clean-up against renders


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cleanup_beside_rerenders_never_deletes_what_a_render_uses(job, monkeypatch):
    """20 times: a clean-up (keeping one execution per job) starts, and just before it deletes its
    first file a re-render runs to the end; then the clean-up goes on. The re-renders alternate a
    segment between two pictures, so each could reuse the video and cover of the render before last,
    which that clean-up is deleting. Compose and cover are quick fakes that read every input from
    storage (a deleted input fails them)."""

    def compose(context, inputs):
        visuals = [visual for *_, visual in inputs["visuals"]]
        for key in (inputs["narration"], *inputs["subtitles"].values(), *visuals):
            fetch(key)
        out = context.workdir / "video.mp4"
        out.write_text(json.dumps(inputs["visuals"]))
        return {"video": context.store(out, context.key("video.mp4"))}, {}

    def cover(context, inputs):
        out = context.workdir / "cover.jpg"
        out.write_bytes(fetch(inputs["video"]).read_bytes())
        return {"cover": context.store(out, context.key("cover.jpg"))}, {}

    monkeypatch.setitem(steps.STEPS, "compose", replace(steps.STEPS["compose"], run=compose))
    monkeypatch.setitem(steps.STEPS, "cover", replace(steps.STEPS["cover"], run=cover))
    first = loop.execution_run(execution=services.execution_create(job=job))
    assert first.status == ExecutionStatus.SUCCESS, first.detail
    segment = job.splits.order_by("index").first()
    pictures = [
        storyboard.split_add_image(
            split_row=segment, uploaded=SimpleUploadedFile(f"{colour}.png", png(colour), "image/png")
        ).selected
        for colour in ("red", "blue")
    ]

    original_delete = FileSystemStorage.delete
    deleting, rendered = threading.Event(), threading.Event()
    cleared: list[int] = []
    errors: list[Exception] = []

    def delete_once_the_render_ran(storage, name):
        if threading.current_thread().name == "cleanup":
            deleting.set()
            rendered.wait(30)
        original_delete(storage, name)

    monkeypatch.setattr(FileSystemStorage, "delete", delete_once_the_render_ran)

    def clean_up():
        try:
            report = cleanup.storage_cleanup(mode="manual", policy=StoragePolicy(1, 10**12, timedelta(0)))
            cleared.extend(report.executions)
        except Exception as error:  # noqa: BLE001 - the test reports it
            errors.append(error)
        finally:
            connection.close()

    for number in range(20):
        storyboard.split_choose_image(split_row=segment, key=pictures[number % 2])
        deleting.clear()
        rendered.clear()
        cleaner = threading.Thread(target=clean_up, name="cleanup")
        cleaner.start()
        wait_until(
            lambda cleaner=cleaner: deleting.is_set() or not cleaner.is_alive(),
            timeout=30,
            what="the clean-up",
        )
        try:
            execution = loop.execution_run(execution=services.execution_create(job=job))
        finally:
            rendered.set()
            cleaner.join(30)
        assert not errors, errors
        assert execution.status == ExecutionStatus.SUCCESS, (number, execution.detail)
        lost = [key for key in row(execution).results.values() if not default_storage.exists(key)]
        assert not lost, f"render {number} (execution {execution.pk}) lost {lost}"
    assert len(cleared) >= 18, cleared  # each clean-up cleared the render before last
    for execution in JobExecution.objects.filter(job=job).exclude(results={}):
        for key in execution.results.values():
            assert default_storage.exists(key), f"execution {execution.pk} lost {key}"


def png(colour: str) -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (64, 36), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_render_queued_while_the_cleanup_holds_its_job_waits_for_it(monkeypatch):
    """The clean-up's row lock holds back a new execution of the job until the old one's results
    are emptied: the new render cannot pick what is about to be deleted."""
    postgres_only()
    job = make_job()
    executions = []
    for number in range(2):
        execution = make_execution(job, status=ExecutionStatus.SUCCESS, finished_at=timezone.now())
        key = default_storage.save(f"jobs/{job.pk}/{execution.pk}/video.mp4", BytesIO(b"v" * 10))
        JobExecution.objects.filter(pk=execution.pk).update(
            results={"video": key},
            steps={"compose": {"status": "done", "input_hash": f"h{number}", "outputs": {"video": key}}},
        )
        executions.append(execution)
    locked, go = threading.Event(), threading.Event()
    real_references = cleanup._job_references

    def references_while_locked(job_id, *, excluding):
        locked.set()
        go.wait(10)
        return real_references(job_id, excluding=excluding)

    monkeypatch.setattr(cleanup, "_job_references", references_while_locked)
    created: list[JobExecution] = []

    def in_thread(action):
        def run():
            try:
                action()
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    cleaner = in_thread(
        lambda: cleanup.storage_cleanup(mode="manual", policy=StoragePolicy(1, 10**12, timedelta(hours=1)))
    )
    assert locked.wait(10)
    queuing = in_thread(lambda: created.append(services.execution_create(job=job)))
    time.sleep(1)
    assert queuing.is_alive() and not created  # waiting for the clean-up's lock on the job
    go.set()
    cleaner.join(10)
    queuing.join(10)
    assert created and row(executions[0]).results == {}  # released before the new render existed
    assert loop._find_reusable(job, "compose", "h0") is None
    assert loop._find_reusable(job, "compose", "h1") is not None


# ---------------------------------------------------------------- real worker processes


@pytest.mark.processes
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_unexpected_step_error_fails_after_the_allowed_attempts_with_backoff_and_never_loops(
    job, tmp_path
):
    postgres_only()
    execution = services.execution_create(job=job)
    calls = tmp_path / "subtitles.calls"
    process = worker(
        tmp_path,
        "worker",
        {"subtitles": {"raise": "bad extra value", "log": str(calls)}},
        max_jobs=10,
        EXECUTION_MAX_RETRIES="2",
        EXECUTION_RETRY_BACKOFF_S="1",
    )
    try:
        failed = wait_until(
            lambda: finished(execution), timeout=90, what="the execution failing", logs=(process.log,)
        )
        time.sleep(3)  # time for more attempts, were there any
        assert finished(execution) is not None and process.poll() is None
    finally:
        stop(process)
    times = log_times(calls)
    assert len(times) == 3, times
    assert times[1] - times[0] >= 1 and times[2] - times[1] >= 2  # 1 s, then 2 s back-off
    assert (failed.status, failed.attempt, failed.error_kind) == (
        ExecutionStatus.FAILED,
        3,
        ErrorKind.UNEXPECTED,
    )
    assert failed.error == (
        "subtitles failed: unexpected error ValueError: bad extra value; gave up after attempt 3 of 3"
    )


@pytest.mark.processes
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_step_silent_for_three_stale_times_is_not_taken_over(job, tmp_path):
    postgres_only()
    execution = services.execution_create(job=job)
    calls = tmp_path / "subtitles.calls"
    silent = {"subtitles": {"silent_s": 6, "log": str(calls)}}
    first = worker(tmp_path, "first", silent, EXECUTION_STALE_S="1")
    second = None
    try:
        wait_until(
            lambda: row(execution).status == ExecutionStatus.RUNNING,
            timeout=60,
            what="the first claim",
            logs=(first.log,),
        )
        second = worker(tmp_path, "second", silent, EXECUTION_STALE_S="1")  # polls for stale executions
        done = wait_until(
            lambda: finished(execution), timeout=90, what="the render", logs=(first.log, second.log)
        )
    finally:
        stop(first)
        if second is not None:
            stop(second)
    assert len(log_times(calls)) == 1  # the silent step ran once: nobody took the execution over
    assert "Execution" not in second.log.read_text()
    assert (done.status, done.retry_count) == (ExecutionStatus.SUCCESS, 0), done.detail
    assert done.attempt == 1


@pytest.mark.processes
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_paused_worker_finds_its_claim_lost_and_the_new_owner_finishes_once(job, tmp_path, settings):
    postgres_only()
    execution = services.execution_create(job=job)
    paused = worker(tmp_path, "paused", {"pictures": {"busy_s": 8}})
    new_owner = None
    try:
        wait_until(
            lambda: row(execution).current_step == "pictures",
            timeout=60,
            what="the pictures step",
            logs=(paused.log,),
        )
        new_owner = worker(tmp_path, "new-owner")
        os.killpg(paused.pid, signal.SIGSTOP)  # past the stale time: no heartbeat, no progress
        done = wait_until(
            lambda: finished(execution),
            timeout=90,
            what="the new owner's render",
            logs=(paused.log, new_owner.log),
        )
        artifacts = stored_artifacts(execution, settings.MEDIA_ROOT)
        os.killpg(paused.pid, signal.SIGCONT)
        paused.wait(30)
    finally:
        if paused.poll() is None:
            os.killpg(paused.pid, signal.SIGCONT)
        stop(paused)
        if new_owner is not None:
            stop(new_owner)
    assert (done.status, done.retry_count) == (ExecutionStatus.SUCCESS, 1), done.detail
    assert "SUCCESS" in new_owner.log.read_text()
    after = row(execution)
    assert (after.status, after.updated_at, after.results, after.steps) == (
        done.status,
        done.updated_at,
        done.results,
        done.steps,
    )  # the paused worker wrote nothing
    assert sorted(artifacts) == ARTIFACTS
    assert stored_artifacts(execution, settings.MEDIA_ROOT) == artifacts  # nor stored anything
    output = paused.log.read_text()
    assert paused.returncode == 0 and "stopped: another worker took it over" in output, output
    assert done.attempt == 2
    names = ("narration", "srt", "vtt", "ass", "video", "cover")
    assert sorted(Path(done.results[name]).name for name in names) == ARTIFACTS


@pytest.mark.processes
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_database_connections_are_killed_mid_render_reconnects_and_finishes_once(
    job, tmp_path, settings
):
    postgres_only()
    execution = services.execution_create(job=job)
    process = worker(tmp_path, "worker", {"pictures": {"busy_s": 4}})
    try:
        wait_until(
            lambda: row(execution).current_step == "pictures",
            timeout=60,
            what="the pictures step",
            logs=(process.log,),
        )
        time.sleep(1)  # the heartbeat thread has beaten too: it holds a connection of its own
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'fault-worker-worker'"
            )
            [killed] = cursor.fetchone()
        done = wait_until(lambda: finished(execution), timeout=90, what="the render", logs=(process.log,))
        process.wait(30)
    finally:
        stop(process)
    output = process.log.read_text()
    assert killed == 2, output  # the render's connection and its heartbeat's
    # The heartbeat says its connection went; the render's own is found dead and replaced before a query
    # (CONN_HEALTH_CHECKS) or on its next check ("the database connection was lost"): either way it goes on.
    assert "heartbeat of execution" in output, output
    assert (done.status, done.attempt) == (ExecutionStatus.SUCCESS, 1), (done.detail, output)
    assert process.returncode == 0
    assert JobExecution.objects.filter(job=job).count() == 1
    assert sorted(stored_artifacts(execution, settings.MEDIA_ROOT)) == ARTIFACTS


class RestartableS3:
    """A moto S3 server on a fixed port that can go down and come back with its buckets (moto keeps
    them in this process)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def s3(settings):
    server = RestartableS3()
    server.start()
    # A bucket of its own: moto keeps every bucket in this process, from test to test.
    bucket = Bucket(server.endpoint, f"faults-{server.port}")
    boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket.name)
    # One try per S3 call and a short connect timeout: the render's own retries are under test.
    server.env = use_s3(
        settings,
        server.endpoint,
        bucket.name,
        AWS_S3_MAX_ATTEMPTS="1",
        AWS_S3_CONNECT_TIMEOUT_S="1",
        AWS_S3_READ_TIMEOUT_S="10",
    )
    server.bucket = bucket
    yield server
    server.stop()


@pytest.mark.processes
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_storage_down_mid_upload_the_render_waits_and_finishes_with_whole_artifacts(s3, tmp_path, settings):
    postgres_only()
    job = make_preset_job(title="故障", content=ONE_SENTENCE)
    execution = services.execution_create(job=job)
    marker = tmp_path / "store.calls"
    process = worker(
        tmp_path,
        "worker",
        {"store": {"match": "video.mp4", "pause_s": 2, "log": str(marker)}},
        max_jobs=10,
        STEP_ATTEMPTS="2",
        STEP_BACKOFF_S="1",
        EXECUTION_MAX_RETRIES="4",
        EXECUTION_RETRY_BACKOFF_S="2",
        **s3.env,
    )
    try:
        wait_until(marker.exists, timeout=90, what="the video upload", logs=(process.log,))
        s3.stop()  # before the upload's first byte, for 8 s
        wait_until(lambda: row(execution).error, timeout=30, what="an attempt failing", logs=(process.log,))
        time.sleep(8 - 2)
        s3.start()
        done = wait_until(lambda: finished(execution), timeout=90, what="the render", logs=(process.log,))
    finally:
        stop(process)
    assert done.status == ExecutionStatus.SUCCESS, (done.detail, process.log.read_text())
    assert done.attempt >= 2 and done.retry_count >= 2 and done.error == ""
    in_bucket = s3.bucket.keys(f"jobs/{job.pk}/{execution.pk}/")
    assert sorted(Path(key).name for key in in_bucket) == ARTIFACTS
    for key in done.results.values():
        assert key in in_bucket and s3.bucket.head(key)["ContentLength"] > 0, key
    with Image.open(BytesIO(s3.bucket.read(done.results["cover"]))) as cover:
        cover.load()  # the whole JPEG


@pytest.mark.slow
@pytest.mark.django_db
def test_storage_down_for_good_fails_the_render_clearly_without_a_half_recorded_artifact(
    s3, monkeypatch, settings
):
    settings.SEGMENT_TARGET_MS = 1500
    settings.STEP_BACKOFF_S = 0.01
    settings.EXECUTION_MAX_RETRIES = 0
    job = make_preset_job(title="故障", content=ONE_SENTENCE)
    real_store = steps.store

    def store_with_storage_gone(local_path, key):
        if key.endswith("video.mp4"):
            s3.stop()
        return real_store(local_path, key)

    monkeypatch.setattr(steps, "store", store_with_storage_gone)

    execution = loop.execution_run(execution=services.execution_create(job=job))

    assert execution.status == ExecutionStatus.FAILED and execution.error_kind == ErrorKind.TRANSIENT
    assert execution.error.startswith("compose failed: storage unreachable: Could not connect")
    assert execution.error.endswith("gave up after attempt 1 of 1")
    assert execution.steps["compose"]["tries"] == 3
    s3.start()
    assert "video" not in execution.results
    in_bucket = s3.bucket.keys()
    assert all(key in in_bucket for key in execution.results.values())
    assert not [key for key in in_bucket if key.endswith("video.mp4")]
