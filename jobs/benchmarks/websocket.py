"""`manage.py benchmark websocket`: publish-to-receipt latency of live progress.

One daphne process serves 200 websocket clients watching 20 jobs; a separate process
publishes their progress through progress.execution_broadcast (channels-redis), ending
each job with `done`. Every event carries the publisher's clock (`at`), so a client's
receipt time minus `at` is the publish-to-receipt latency.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

from accounts import teams
from accounts.models import Team, User
from jobs.models import ExecutionStatus, Job, JobExecution
from jobs.render import progress

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK_USER = "benchmark-websocket"


def websocket_benchmark(*, clients: int = 200, jobs: int = 20, updates: int = 40, port: int = 8765) -> dict:
    if not settings.REDIS_URL:
        raise RuntimeError("the websocket benchmark needs REDIS_URL (a cross-process channel layer)")
    user, job_ids = _seed(jobs)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "batchvideo.settings"}
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "batchvideo.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        tickets = [progress.ws_ticket_issue(user=user) for _ in range(clients)]
        latencies, done_counts = asyncio.run(_watch(port, job_ids, tickets, updates))
    finally:
        server.terminate()
        server.wait(10)
        _cleanup(user)
    latencies.sort()
    p95 = latencies[int(len(latencies) * 0.95) - 1] if latencies else float("nan")
    lost_done = sum(1 for received in done_counts if received == 0)
    return {"clients": clients, "p95_ms": p95, "lost_done": lost_done, "events": len(latencies)}


def format_websocket_line(result: dict) -> str:
    return f"clients={result['clients']} p95_ms={result['p95_ms']:.1f} lost_done={result['lost_done']}"


def _seed(jobs: int) -> tuple[User, list[int]]:
    user, _ = User.objects.get_or_create(username=BENCHMARK_USER)
    Job.objects.filter(owner=user).delete()
    team = getattr(user, "personal_team", None) or teams.team_create(
        name=user.username, admin=user, personal=True
    )
    created = Job.objects.bulk_create(
        Job(owner=user, team=team, title=f"websocket benchmark {number}", content="基准测试。")
        for number in range(jobs)
    )
    JobExecution.objects.bulk_create(JobExecution(job=job, status=ExecutionStatus.RUNNING) for job in created)
    return user, [job.pk for job in created]


def _cleanup(user: User) -> None:
    Job.objects.filter(owner=user).delete()
    Team.objects.filter(personal_of=user).delete()
    user.delete()


async def _watch(
    port: int, job_ids: list[int], tickets: list[str], updates: int
) -> tuple[list[float], list[int]]:
    import websockets

    latencies: list[float] = []
    done_counts = [0] * len(tickets)
    ready = asyncio.Event()
    connected = [0]

    async def client(number: int) -> None:
        job_id = job_ids[number % len(job_ids)]
        url = f"ws://127.0.0.1:{port}/ws/jobs/{job_id}/?ticket={tickets[number]}"
        for _attempt in range(50):
            try:
                socket = await websockets.connect(url, origin="http://localhost", open_timeout=20)
                break
            except (OSError, websockets.exceptions.InvalidHandshake):
                await asyncio.sleep(0.2)
        else:
            return
        async with socket:
            await socket.recv()  # init
            connected[0] += 1
            if connected[0] == len(tickets):
                ready.set()
            try:
                while True:
                    event = json.loads(await asyncio.wait_for(socket.recv(), timeout=60))
                    if "at" in event:
                        latencies.append((time.time() - event["at"]) * 1000)
                    if event["type"] == "done":
                        done_counts[number] += 1
                        return
            except (TimeoutError, websockets.exceptions.ConnectionClosed):
                return

    tasks = [asyncio.create_task(client(number)) for number in range(len(tickets))]
    await asyncio.wait_for(ready.wait(), timeout=120)
    publisher = await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        "shell",
        "-c",
        f"from jobs.benchmarks.websocket import publish; publish({job_ids!r}, {updates})",
        cwd=ROOT,
    )
    await publisher.wait()
    await asyncio.wait(tasks, timeout=120)
    return latencies, done_counts


def publish(job_ids: list[int], updates: int) -> None:
    """The publisher process: each job climbs to 100 % at ~3 updates a second (under the consumer's limit of 4), then finishes."""
    executions = list(JobExecution.objects.filter(job_id__in=job_ids).select_related("job"))
    for step in range(1, updates + 1):
        for execution in executions:
            execution.progress = step * 100 // (updates + 1)
            execution.detail = f"step {step}"
            progress.execution_broadcast(execution)
        time.sleep(0.3)
    for execution in executions:
        execution.status = ExecutionStatus.SUCCESS
        execution.progress = 100
        execution.detail = "Done"
        progress.execution_broadcast(execution)
