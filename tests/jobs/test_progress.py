"""Live progress: the websocket consumer, tickets, the progress page and its JSON."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batchvideo.asgi import application
from jobs.live import consumers
from jobs.models import ExecutionStatus, JobExecution
from jobs.render import progress, steps
from tests.factories import make_execution, make_job, make_user
from tests.processes import reachable

pytestmark = pytest.mark.django_db(transaction=True)


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def communicator(path: str, user=None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
    return WebsocketCommunicator(application, path, headers=headers)


async def receive_types(connection: WebsocketCommunicator, count: int, timeout: float = 5) -> list[dict]:
    return [await connection.receive_json_from(timeout=timeout) for _ in range(count)]


@pytest.fixture
def fast_polling(monkeypatch, settings):
    settings.REDIS_URL = ""
    monkeypatch.setattr(consumers, "POLL_INTERVAL_S", 0.05)
    monkeypatch.setattr(consumers, "MIN_UPDATE_INTERVAL_S", 0.0)


async def test_anonymous_socket_is_closed_with_4401_and_gets_nothing():
    job = await sync_to_async(make_job)()
    connection = await communicator(f"/ws/jobs/{job.pk}/")
    connected, _ = await connection.connect()
    assert connected
    closed = await connection.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_someone_elses_job_is_closed_with_4403_and_gets_nothing():
    owner, stranger = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    job = await sync_to_async(make_job)(owner=owner)
    connection = await communicator(f"/ws/jobs/{job.pk}/", stranger)
    await connection.connect()
    assert await connection.receive_output(timeout=2) == {"type": "websocket.close", "code": 4403}


async def test_foreign_origin_is_refused():
    user = await sync_to_async(make_user)()
    job = await sync_to_async(make_job)(owner=user)
    connection = WebsocketCommunicator(
        application,
        f"/ws/jobs/{job.pk}/",
        headers=[(b"origin", b"http://evil.example"), (b"host", b"localhost")],
    )
    connected, _ = await connection.connect()
    assert not connected


async def test_events_arrive_init_update_done_from_the_database(fast_polling):
    user = await sync_to_async(make_user)()
    job = await sync_to_async(make_job)(owner=user)
    execution = await sync_to_async(make_execution)(job)
    connection = await communicator(f"/ws/jobs/{job.pk}/", user)
    assert (await connection.connect())[0]
    init = await connection.receive_json_from(timeout=3)
    assert init["type"] == "init" and init["status"] == "PENDING" and init["execution"] == execution.pk

    await sync_to_async(JobExecution.objects.filter(pk=execution.pk).update)(
        status=ExecutionStatus.RUNNING, progress=40, detail="Narrating"
    )
    update = await connection.receive_json_from(timeout=3)
    assert (update["type"], update["progress"], update["message"]) == ("update", 40, "Narrating")

    await sync_to_async(JobExecution.objects.filter(pk=execution.pk).update)(
        status=ExecutionStatus.SUCCESS, progress=100, detail="Done", results={"video": "jobs/x/video.mp4"}
    )
    done = await connection.receive_json_from(timeout=3)
    assert done["type"] == "done" and done["urls"]["video"].startswith("/files/")
    await connection.disconnect()


async def test_failure_arrives_as_an_error_event(fast_polling):
    user = await sync_to_async(make_user)()
    job = await sync_to_async(make_job)(owner=user)
    execution = await sync_to_async(make_execution)(job, status=ExecutionStatus.RUNNING)
    connection = await communicator(f"/ws/jobs/{job.pk}/", user)
    await connection.connect()
    await connection.receive_json_from(timeout=3)
    await sync_to_async(JobExecution.objects.filter(pk=execution.pk).update)(
        status=ExecutionStatus.FAILED, detail="narration failed: x", error="unknown TTS platform 'zz'"
    )
    error = await connection.receive_json_from(timeout=3)
    assert error["type"] == "error" and "unknown TTS platform" in error["message"]
    await connection.disconnect()


async def test_feed_starts_with_a_snapshot_of_active_jobs_only(fast_polling):
    user, other = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    mine = await sync_to_async(make_job)(owner=user)
    running = await sync_to_async(make_execution)(mine, status=ExecutionStatus.RUNNING, progress=10)
    finished_job = await sync_to_async(make_job)(owner=user)
    await sync_to_async(make_execution)(finished_job, status=ExecutionStatus.SUCCESS)
    theirs = await sync_to_async(make_job)(owner=other)
    await sync_to_async(make_execution)(theirs, status=ExecutionStatus.RUNNING)
    connection = await communicator("/ws/jobs/", user)
    await connection.connect()
    snapshot = await connection.receive_json_from(timeout=3)
    assert snapshot["type"] == "snapshot"
    assert [event["execution"] for event in snapshot["jobs"]] == [running.pk]
    await sync_to_async(JobExecution.objects.filter(pk=running.pk).update)(progress=55, detail="Composing")
    update = await connection.receive_json_from(timeout=3)
    assert (update["job"], update["progress"]) == (mine.pk, 55)
    await connection.disconnect()


async def test_api_client_connects_with_a_ticket(fast_polling):
    user = await sync_to_async(make_user)()
    job = await sync_to_async(make_job)(owner=user)
    ticket = await sync_to_async(progress.ws_ticket_issue)(user=user)
    connection = await communicator(f"/ws/jobs/{job.pk}/?ticket={ticket}")
    await connection.connect()
    assert (await connection.receive_json_from(timeout=3))["type"] == "init"
    await connection.disconnect()
    forged = await communicator(f"/ws/jobs/{job.pk}/?ticket={ticket[:-2]}xx")
    await forged.connect()
    assert await forged.receive_output(timeout=2) == {"type": "websocket.close", "code": 4401}


async def test_published_events_reach_the_socket_through_the_layer(settings):
    settings.REDIS_URL = "in-memory-for-this-test"  # publish through the (in-process) layer, no polling
    user = await sync_to_async(make_user)()
    job = await sync_to_async(make_job)(owner=user)
    execution = await sync_to_async(make_execution)(job, status=ExecutionStatus.RUNNING)
    connection = await communicator(f"/ws/jobs/{job.pk}/", user)
    await connection.connect()
    await connection.receive_json_from(timeout=3)
    execution.progress, execution.detail = 70, "Composing the video"
    await sync_to_async(progress.execution_broadcast)(execution)
    update = await connection.receive_json_from(timeout=3)
    assert (update["type"], update["progress"]) == ("update", 70)
    assert await connection.receive_nothing(timeout=0.3)
    await connection.disconnect()


def test_ticket_endpoint_requires_a_login(client):
    assert client.post("/api/v1/ws-ticket/").status_code in (401, 403)
    user = make_user()
    client.force_login(user)
    response = client.post("/api/v1/ws-ticket/")
    assert response.status_code == 200
    assert progress.ws_ticket_user(response.json()["ticket"]) == user


def test_progress_page_and_json(client):
    user = make_user()
    job = make_job(owner=user)
    make_execution(job, status=ExecutionStatus.RUNNING, progress=33, detail="Pictures 2/6")
    assert client.get(f"/jobs/{job.pk}/progress").status_code == 302  # to the login page
    client.force_login(user)
    page = client.get(f"/jobs/{job.pk}/progress")
    assert page.status_code == 200
    assert b"job-progress-initial" in page.content and b"progress.js" in page.content
    snapshot = client.get(f"/jobs/{job.pk}/progress.json").json()
    assert (snapshot["type"], snapshot["progress"], snapshot["message"]) == ("init", 33, "Pictures 2/6")
    client.force_login(make_user())
    assert client.get(f"/jobs/{job.pk}/progress").status_code == 404


def test_eta_comes_from_recent_step_durations():
    job = make_job()
    records = {name: {"status": "done", "duration_s": 2.0} for name in steps.STEPS}
    make_execution(job, status=ExecutionStatus.SUCCESS, steps=records)
    running = make_execution(
        make_job(), status=ExecutionStatus.RUNNING, steps={"narration": {"status": "done", "duration_s": 2.0}}
    )
    assert progress.execution_eta(running) == 2.0 * (len(steps.STEPS) - 1)


def test_eta_follows_a_render_that_succeeded_after_it_was_last_read():
    running = make_execution(
        make_job(), status=ExecutionStatus.RUNNING, steps={"narration": {"status": "done", "duration_s": 2.0}}
    )
    records = {name: {"status": "done", "duration_s": 2.0} for name in steps.STEPS}
    make_execution(make_job(), status=ExecutionStatus.SUCCESS, steps=records, finished_at=timezone.now())
    assert progress.execution_eta(running) == 2.0 * (len(steps.STEPS) - 1)
    with CaptureQueriesContext(connection) as read:
        assert progress.execution_eta(running) == 2.0 * (len(steps.STEPS) - 1)
    # No other render ended since: only the newest success is asked for, not the steps of 100.
    assert len(read) == 1 and '"steps"' not in read[0]["sql"]

    slower = {name: {"status": "done", "duration_s": 8.0} for name in steps.STEPS}
    for _ in range(2):
        make_execution(make_job(), status=ExecutionStatus.SUCCESS, steps=slower, finished_at=timezone.now())

    assert progress.execution_eta(running) == 8.0 * (len(steps.STEPS) - 1)


def test_a_worker_publishes_its_progress_events_on_one_redis_connection_not_one_each(monkeypatch):
    from channels.layers import get_channel_layer
    from channels_redis.core import RedisChannelLayer
    from redis.asyncio.connection import Connection

    if not isinstance(get_channel_layer(), RedisChannelLayer) or not reachable("127.0.0.1", 6379):
        pytest.skip("the channel layer is not Redis, or no Redis at 127.0.0.1:6379")
    opened = []
    open_socket = Connection._connect

    async def counted(self):
        opened.append(self)
        await open_socket(self)

    monkeypatch.setattr(Connection, "_connect", counted)
    execution = make_execution(make_job(owner=make_user()), status=ExecutionStatus.RUNNING)
    progress.execution_broadcast(execution)  # this process's first event may connect
    opened.clear()
    for percent in range(10, 60, 10):
        execution.progress = percent
        progress.execution_broadcast(execution)
    assert opened == []


@pytest.mark.django_db
def test_events_say_how_many_of_the_video_chunks_were_reused():
    job = make_job(owner=make_user())
    made = {
        "status": "done",
        "duration_s": 3.0,
        "data": {"chunks": ["a.mp4", "b.mp4", "audio-c.m4a"], "chunks_reused": 2},
    }
    execution = make_execution(
        job,
        status=ExecutionStatus.SUCCESS,
        steps={
            "narration": {"status": "reused", "duration_s": 0.0, "data": {"duration_ms": 1000}},
            "compose": made,
        },
    )
    event = progress.execution_event(execution)
    assert event["steps"]["compose"]["chunks"] == {"reused": 2, "total": 3}
    assert "chunks" not in event["steps"]["narration"]
    # A reused compose step encoded nothing.
    execution.steps = {"compose": {**made, "status": "reused"}}
    assert progress.execution_event(execution)["steps"]["compose"]["chunks"] == {"reused": 3, "total": 3}
