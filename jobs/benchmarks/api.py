"""API benchmark: list pages of 50 jobs and job details under concurrent clients, over real HTTP.

It creates `jobs` jobs (one finished render and a few segments each) for a throw-away user in the
configured database, starts gunicorn (sync workers, as the README's web hosts run it) on a free
local port unless `base_url` is given, and runs `clients` threads with token auth, each on its own
keep-alive connection, for `seconds`. Everything it created is deleted afterwards.

    .venv/bin/python manage.py shell -c \
        "from jobs.benchmarks.api import *; print(format_api_line(api_benchmark(jobs=2000, seconds=5)))"

Figures include the client side (Python threads on the same machine, sharing its CPUs with the
server and the database): they are an upper bound.
"""

import http.client
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import connection, transaction
from rest_framework.authtoken.models import Token

from accounts import teams
from accounts.models import Account, Team, User
from jobs.benchmarks.queue import database_url
from jobs.models import ExecutionStatus, Job, JobExecution, JobSplit
from topics.models import Topic
from voices.models import Language

USERNAME_PREFIX = "api-benchmark-"
PAGE_SIZE = 50
SPLITS_PER_JOB = 5
SERVER_START_TIMEOUT_S = 60
ROOT = Path(__file__).resolve().parents[2]


def _seed(jobs: int) -> tuple[User, str, list[int]]:
    name = f"{USERNAME_PREFIX}{uuid.uuid4().hex[:8]}"
    with transaction.atomic():
        user = User.objects.create_user(username=name, password=uuid.uuid4().hex)
        token = Token.objects.create(user=user).key
        team = teams.team_create(name=name, admin=user, personal=True)
        language = Language.objects.create(owner=user, team=team, code="zh-CN", name="中文")
        topic = Topic.objects.create(owner=user, team=team, name="Benchmark")
        account = Account.objects.create(owner=user, team=team, username=name)
    content = "今天天气很好。我们去公园散步。" * 20
    for start in range(0, jobs, 1000):
        with transaction.atomic():
            batch = Job.objects.bulk_create(
                [
                    Job(
                        owner=user,
                        team=team,
                        title=f"Benchmark job {number}",
                        content=content,
                        language=language,
                        topic=topic,
                        account=account,
                        runorder=number,
                    )
                    for number in range(start, min(jobs, start + 1000))
                ]
            )
            JobExecution.objects.bulk_create(
                [
                    JobExecution(
                        job=job,
                        status=ExecutionStatus.SUCCESS,
                        progress=100,
                        detail="Done",
                        results={"video": f"jobs/{job.pk}/video.mp4", "cover": f"jobs/{job.pk}/cover.jpg"},
                        steps={"compose": {"status": "done", "duration_s": 1.0}},
                    )
                    for job in batch
                ]
            )
            JobSplit.objects.bulk_create(
                [
                    JobSplit(
                        job=job,
                        index=index,
                        start_ms=index * 5000,
                        end_ms=index * 5000 + 5000,
                        text="今天天气很好。",
                        prompt="a park",
                        selected=picture,
                        images=[{"key": picture, "seed": 1, "source": "card"}],
                    )
                    for job in batch
                    for index in range(SPLITS_PER_JOB)
                    for picture in [f"jobs/{job.pk}/pictures/{index:03d}.png"]
                ]
            )
    if connection.vendor == "postgresql":
        # What autovacuum does within a minute of a bulk load: statistics for the planner, and the
        # visibility map that lets index-only scans (the list's count and paging) skip the table.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE jobs_job, jobs_jobexecution, jobs_jobsplit")
    ids = list(Job.objects.filter(owner=user).values_list("id", flat=True))
    return user, token, ids


def _cleanup(user: User) -> None:
    with transaction.atomic():
        Job.objects.filter(owner=user).delete()  # executions and splits go with them
        Team.objects.filter(personal_of=user).delete()
        user.delete()  # presets and the token go with the user


def _start_gunicorn(workers: int, log_dir: Path) -> tuple[str, list[subprocess.Popen], socket.socket]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "batchvideo.settings"),
        # Throttling stays on (its cost is measured) with a rate the benchmark's one user cannot reach.
        "API_THROTTLE_USER": "100000/s",
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    with open(log_dir / "gunicorn.log", "w") as log:  # the child keeps its own copy
        server = subprocess.Popen(
            [
                gunicorn,
                "--bind",
                f"fd://{listener.fileno()}",
                "--workers",
                str(workers),
                "batchvideo.wsgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=[listener.fileno()],
            start_new_session=True,
        )
    return f"http://127.0.0.1:{port}", [server], listener


def _stop(servers: list[subprocess.Popen]) -> None:
    for server in servers:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
    for server in servers:
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)


def _wait_until_up(base_url: str, token: str, servers: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(server.poll() is not None for server in servers):
            raise RuntimeError("the API server exited while starting; see its log")
        try:
            response = requests.get(
                f"{base_url}/api/v1/auth/me/", timeout=5, headers={"Authorization": f"Token {token}"}
            )
            if response.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the API server did not answer within {SERVER_START_TIMEOUT_S} s")


def _client(
    base_url: str,
    token: str,
    ids: list[int],
    deadline: float,
    seed: int,
    latencies: list[float],
    errors: list[str],
) -> None:
    chooser = random.Random(seed)
    pages = max(1, (len(ids) + PAGE_SIZE - 1) // PAGE_SIZE)
    address = urlsplit(base_url)
    # http.client rather than requests: a lighter client leaves more of the shared CPUs to the server.
    http_connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    headers = {"Authorization": f"Token {token}"}
    number = 0
    try:
        while time.monotonic() < deadline:
            if number % 2 == 0:
                path = f"/api/v1/jobs/?page={chooser.randint(1, pages)}&page_size={PAGE_SIZE}"
            else:
                path = f"/api/v1/jobs/{chooser.choice(ids)}/"
            number += 1
            started = time.perf_counter()
            try:
                http_connection.request("GET", path, headers=headers)
                response = http_connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as error:
                errors.append(f"{path}: {error!r}")
                http_connection.close()  # reconnects on the next request
                continue
            elapsed = time.perf_counter() - started
            if response.status != 200:
                errors.append(f"{path}: HTTP {response.status}")
                continue
            latencies.append(elapsed)
    finally:
        http_connection.close()


def api_benchmark(
    *,
    jobs: int = 10000,
    clients: int = 16,
    seconds: float = 20,
    base_url: str | None = None,
    processes: int | None = None,
) -> dict:
    """p50/p95 latency (ms) and requests per second of job list pages and job details.

    `base_url`: measure an already running server instead (it must use the same database);
    `processes`: gunicorn workers to start (default: one per CPU, 2 to 8).
    """
    if processes is None:
        processes = max(2, min(8, os.cpu_count() or 2))
    user, token, ids = _seed(jobs)
    servers: list[subprocess.Popen] = []
    listener = None
    log_dir = Path(tempfile.mkdtemp(prefix="api-benchmark-"))
    try:
        if base_url is None:
            base_url, servers, listener = _start_gunicorn(processes, log_dir)
        _wait_until_up(base_url, token, servers)
        latencies: list[float] = []
        errors: list[str] = []
        started = time.monotonic()
        deadline = started + seconds
        threads = [
            threading.Thread(target=_client, args=(base_url, token, ids, deadline, number, latencies, errors))
            for number in range(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        _stop(servers)
        if listener is not None:
            listener.close()
        _cleanup(user)
    if not latencies:
        raise RuntimeError(f"no successful request; first errors: {errors[:3]}; server logs in {log_dir}")
    if not errors:
        shutil.rmtree(log_dir, ignore_errors=True)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(cuts[94] * 1000, 1),
        "rps": round(len(latencies) / elapsed, 1),
        "requests": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:3],
        "server_logs": "" if not errors else str(log_dir),
        "server": "external" if not servers else f"gunicorn x{processes}",
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
    }


def format_api_line(result: dict) -> str:
    return f"p50_ms={result['p50_ms']} p95_ms={result['p95_ms']} rps={result['rps']}"
