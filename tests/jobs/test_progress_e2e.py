"""Across real processes: a qcluster worker renders while a websocket client on daphne listens via Redis."""

import asyncio
import json

import pytest
from django.conf import settings

from jobs import services
from jobs.render import progress
from tests.factories import make_preset_job, make_user
from tests.processes import free_port, process_env, reachable, start, stop, wait_for_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not reachable("127.0.0.1", 6379), reason="no Redis at 127.0.0.1:6379"),
]


def test_worker_progress_reaches_a_websocket_client_through_redis(tmp_path):
    import websockets

    user = make_user()
    job = make_preset_job(owner=user, title="端到端", content="第一句话。第二句话。", speech_speed=1.3)
    # This worker's own Redis database when the run has one (tests/conftest.py).
    env = process_env(REDIS_URL=settings.REDIS_URL or "redis://127.0.0.1:6379/13", SEGMENT_TARGET_MS="1500")
    port = free_port()
    server = start(
        ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "batchvideo.asgi:application"],
        env,
        tmp_path / "daphne.log",
    )
    worker = None
    try:
        wait_for_port(port)
        ticket = progress.ws_ticket_issue(user=user)

        async def listen() -> list[dict]:
            events = []
            url = f"ws://127.0.0.1:{port}/ws/jobs/{job.pk}/?ticket={ticket}"
            async with websockets.connect(url, origin="http://localhost") as socket:
                events.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
                nonlocal worker
                await asyncio.to_thread(services.job_enqueue, job=job)
                worker = start(["manage.py", "qcluster"], env, tmp_path / "worker.log")
                while events[-1]["type"] not in ("done", "error"):
                    events.append(json.loads(await asyncio.wait_for(socket.recv(), 120)))
            return events

        events = asyncio.run(listen())
    finally:
        if worker is not None:
            stop(worker)
        stop(server)
    kinds = [event["type"] for event in events]
    assert kinds[0] == "init" and kinds[-1] == "done", (kinds, (tmp_path / "worker.log").read_text())
    updates = [event for event in events if event["type"] == "update"]
    assert len(updates) >= 3
    percents = [event["progress"] for event in updates]
    assert percents == sorted(percents)
    assert events[-1]["urls"]["video"]


def test_a_websockets_wait_on_redis_outlasts_the_blocking_pop_it_waits_for():
    """redis-py's default read timeout (5 s) equalled channels-redis' blocking pop (5 s): on a busy
    host a socket with nothing to say timed out in Redis and daphne closed it with 1011."""
    from channels_redis.core import RedisChannelLayer
    from channels_redis.utils import create_pool

    from batchvideo import settings as project  # as servers load it (the tests' own layer differs)

    if "CONFIG" not in project.CHANNEL_LAYERS["default"]:
        pytest.skip("no REDIS_URL: the in-memory channel layer")
    [host] = project.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    pool = create_pool(host if isinstance(host, dict) else {"address": host})
    assert pool.connection_kwargs["socket_timeout"] > RedisChannelLayer.brpop_timeout + 5
