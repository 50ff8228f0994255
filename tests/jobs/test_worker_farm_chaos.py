"""Several workers on one host, as a deployment runs them (issue 24): real `qcluster` processes
sharing one WORK_ROOT and the PostgreSQL test database, the API served by gunicorn under a bounded
load, and faults injected from outside: a `kill -9` of a worker while its ffmpeg runs, a SIGSTOP
past the stale time, and a `pg_terminate_backend` of every connection.

Times are shortened to fit CI on two cores: the stale time is 6 s (heartbeat every second);
django-q2 would hand a killed worker's task back only after Q_RETRY_S = 900 s, so a takeover must
come from the takeover watch or another worker's claim. The workers write through
tests/fault_worker.py, which logs every storage write with the render it belongs to.
"""

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
import requests
from django.db import connection
from django_q.status import Stat
from rest_framework.authtoken.models import Token

from jobs.models import ExecutionStatus, JobExecution
from tests.factories import make_preset_job, make_user
from tests.processes import free_port, process_env, start, stop, wait_for_port

CONTENT = "今天天气很好，我们一起去公园散步吧。公园里有很多花。晚上我们回家吃饭。"
RENDERS = 12
CLUSTER_ENV = {
    "SEGMENT_TARGET_MS": "1500",
    "VIDEO_PRESET": "ultrafast",
    "EXECUTION_STALE_S": "6",
    "EXECUTION_HEARTBEAT_S": "1",
    "Q_TIMEOUT_S": "600",
    "Q_RETRY_S": "900",
    "EXECUTION_RETRY_BACKOFF_S": "1",
    "STEP_BACKOFF_S": "0.5",
}


def wait_until(condition, *, timeout: float, what: str, logs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    shown = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}" for log in logs)
    pytest.fail(f"{what}: not within {timeout} s\n{shown}")


class Load(threading.Thread):
    """A bounded API load: one client, about five requests a second, every answer's status kept."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(daemon=True)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.base = base
        self.statuses: Counter = Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        paths = ["/api/v1/jobs/", "/api/v1/executions/", "/health/extended"]
        while not self.stopping.wait(0.2):
            for path in paths:
                try:
                    self.statuses[self.session.get(self.base + path, timeout=30).status_code] += 1
                except requests.RequestException as error:
                    self.statuses[type(error).__name__] += 1


def live(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def ffmpeg_in(folder: Path) -> list[psutil.Process]:
    """Live ffmpeg processes reading or writing in `folder` (a zombie has ended), with their
    parent's pid read as they were listed (`info["ppid"]`): one may end before it is asked again."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "ppid"]):
        if (
            process.info["name"] == "ffmpeg"
            and str(folder) in " ".join(process.info["cmdline"] or [])
            and live(process)
        ):
            found.append(process)
    return found


def read_log(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def composing(writes: Path, folder: Path, *, besides: int = 0) -> tuple[JobExecution, int] | None:
    """A render in compose, and the pid of its worker, while that worker's ffmpeg runs."""
    claims = {(int(line[2]), int(line[3])): int(line[1]) for line in read_log(writes) if line[0] == "claim"}
    encoding = {process.info["ppid"] for process in ffmpeg_in(folder)}
    for execution in JobExecution.objects.filter(status=ExecutionStatus.RUNNING, current_step="compose"):
        pid = claims.get((execution.pk, execution.attempt))
        if pid and pid != besides and pid in encoding:
            return execution, pid
    return None


@pytest.mark.processes
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("workers_per_cluster", [1, 2], ids=["two-workers", "four-workers"])
def test_workers_sharing_a_host_survive_kill_pause_and_dropped_connections_with_one_success_each(
    workers_per_cluster, tmp_path, settings
):
    if connection.vendor != "postgresql":
        pytest.skip("worker processes, pg_terminate_backend: needs PostgreSQL")
    owner = make_user()
    token = Token.objects.create(user=owner).key
    jobs = [make_preset_job(title=f"农场 {index}", content=CONTENT, owner=owner) for index in range(RENDERS)]
    writes = tmp_path / "writes.log"
    scratch = tmp_path / "tmp"  # the workers' system temp folder: nothing may be left there
    scratch.mkdir()
    env = process_env(
        **CLUSTER_ENV,
        Q_WORKERS=str(workers_per_cluster),
        TMPDIR=str(scratch),
        FAULTS=json.dumps({"writes": str(writes)}),
    )
    port = free_port()
    web = start(
        ["-m", "gunicorn", "--workers", "2", "-b", f"127.0.0.1:{port}", "batchvideo.wsgi:application"],
        process_env(),
        tmp_path / "web.log",
    )
    clusters = [
        start(["-m", "tests.fault_worker", "qcluster"], env, tmp_path / f"cluster-{n}.log") for n in (1, 2)
    ]
    logs = [tmp_path / "web.log", *(tmp_path / f"cluster-{n}.log" for n in (1, 2))]
    load = Load(f"http://127.0.0.1:{port}", token)
    try:
        wait_for_port(port)
        load.start()
        for job in jobs:
            response = requests.post(
                f"http://127.0.0.1:{port}/api/v1/jobs/{job.pk}/render/",
                headers={"Authorization": f"Token {token}"},
                timeout=30,
            )
            assert response.status_code == 202, response.text
        # Every cluster reports its status where every process sees it.
        wait_until(
            lambda: len(Stat.get_all()) == 2, timeout=30, what="both clusters in the shared status", logs=logs
        )

        # kill -9 a worker while its ffmpeg runs in compose.
        work_root = Path(settings.WORK_ROOT)
        _, killed_pid = wait_until(
            lambda: composing(writes, tmp_path), timeout=180, what="a render in compose", logs=logs
        )
        killed = psutil.Process(killed_pid)
        children = [child for child in killed.children(recursive=True) if live(child)]
        killed.kill()
        time.sleep(1.5)
        assert not [child.cmdline() for child in children if live(child)], (
            "the killed worker's children ran on"
        )

        # SIGSTOP a rendering worker past the stale time; SIGCONT once another took its render over.
        paused_execution, paused_pid = wait_until(
            lambda: composing(writes, tmp_path, besides=killed_pid),
            timeout=180,
            what="another render in compose",
            logs=logs,
        )
        os.kill(paused_pid, signal.SIGSTOP)
        try:
            wait_until(
                lambda: JobExecution.objects.get(pk=paused_execution.pk).attempt > paused_execution.attempt,
                timeout=120,
                what="the paused worker's render taken over",
                logs=logs,
            )
        finally:
            os.kill(paused_pid, signal.SIGCONT)
        resumed_at = time.time()

        # Every database connection dropped at once, under the API load.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            [dropped] = cursor.fetchone()
        assert dropped >= 3

        unfinished = JobExecution.objects.filter(
            status__in=[ExecutionStatus.PENDING, ExecutionStatus.RUNNING]
        )
        wait_until(lambda: not unfinished.exists(), timeout=300, what="every render finished", logs=logs)
        time.sleep(2)  # the resumed worker had time to write anything it still would
    finally:
        load.stopping.set()
        load.join(60)
        for process in (*clusters, web):
            stop(process)

    executions = JobExecution.objects.filter(job__in=jobs)
    outcomes = sorted(executions.values_list("job_id", "status"))
    assert outcomes == [(job.pk, ExecutionStatus.SUCCESS) for job in jobs], [
        (execution.pk, execution.status, execution.error) for execution in executions
    ]
    assert executions.get(pk=paused_execution.pk).attempt > paused_execution.attempt
    late = [
        line
        for line in read_log(writes)
        if line[0] != "claim"
        and line[1:4] == [str(paused_pid), str(paused_execution.pk), str(paused_execution.attempt)]
        and float(line[5]) > resumed_at
        and not Path(line[4]).name.startswith(".")
    ]
    assert not late, f"the paused worker stored after its claim was lost: {late}"
    assert not ffmpeg_in(tmp_path)
    # jieba (keywords for stock footage) keeps its dictionary cache there on purpose: not a render's
    left = [path for path in scratch.iterdir() if path.name != "jieba.cache"]
    assert not left, f"temp files left in the system temp folder: {left}"
    assert not [path for path in (work_root / "runs").iterdir()], "attempt folders left behind"
    errors = {
        status: count
        for status, count in load.statuses.items()
        if not (isinstance(status, int) and status < 500)
    }
    assert not errors and sum(load.statuses.values()) > 50, load.statuses
    worker_log = "\n".join(log.read_text(errors="replace") for log in logs[1:])
    assert worker_log.count(": SUCCESS in ") >= RENDERS, worker_log[-4000:]
    assert "taken over as attempt" in worker_log
