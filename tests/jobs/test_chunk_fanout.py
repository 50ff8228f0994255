"""One video on many hosts (issue 27): a composition's chunks are tasks any CPU worker takes; the
worker that planned them makes chunks too and assembles the MP4 once all are in storage.

The first tests run the farm in this process, with a second "host" in a thread (its own database
connection, its own worker name); the last ones are the deployment: real `qcluster` processes on
PostgreSQL, a worker killed from outside mid-chunk and one that dies between two chunks."""

import json
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django_q.models import OrmQ

from jobs import services
from jobs.files import chunk_key, chunk_store
from jobs.models import ChunkStatus, ChunkWork, ExecutionStatus, JobExecution
from jobs.render import fanout
from media_engine import chunks
from media_engine.chunks import ChunkJob
from tests.factories import make_execution, make_job, make_preset_job
from tests.jobs.test_worker_farm_chaos import CLUSTER_ENV, read_log, wait_until
from tests.processes import process_env, start, stop

LONG_CONTENT = "。".join(f"第{n}句话讲的是公园里的花和树，还有天上的云" for n in range(1, 9)) + "。"


def colour_jobs(count: int) -> list[ChunkJob]:
    """`count` small real chunks (a colour each, 0.4 s at 64x36), no inputs: made in well under a second."""
    return [
        ChunkJob(
            f"{n:02x}" * 32 + ".mp4",
            [
                "-f",
                "lavfi",
                "-i",
                f"color=c=0x{n * 20:02x}4080:s=64x36:r=30:d=0.4",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-threads",
                "1",
            ],
            0.4,
        )
        for n in range(count)
    ]


def chunk_tasks(cluster: str) -> list[int]:
    return [task.args()[0] for task in OrmQ.objects.filter(key=cluster) if task.func() == fanout.CHUNK_TASK]


@pytest.mark.django_db(transaction=True)
def test_the_planner_and_another_worker_share_the_chunks_each_made_once_and_progress_counts_chunks(
    settings, tmp_path, monkeypatch
):
    settings.COMPOSE_CHUNK_THREADS = 1
    settings.CPU_CLUSTER, settings.GPU_CLUSTER = "cpu", "gpu"
    monkeypatch.setattr(fanout, "worker_name", lambda: f"host:{threading.current_thread().name}")
    execution = make_execution(job=make_job(), status=ExecutionStatus.RUNNING)
    jobs = colour_jobs(8)
    made_by: Counter = Counter()
    store = chunk_store(farm=fanout.chunks_farm(execution, made_by, fence=lambda: None))
    store.folder.mkdir(parents=True, exist_ok=True)
    progress: list[float] = []
    made: list[str] = []
    real_make = chunks.make_chunk
    monkeypatch.setattr(
        chunks,
        "make_chunk",
        lambda job, *args, **kwargs: made.append(job.name) or real_make(job, *args, **kwargs),
    )
    stop_other = threading.Event()

    def other_host() -> None:
        """A CPU worker on another host: runs the queued make_chunk tasks as they come."""
        try:
            while not stop_other.is_set():
                for pk in chunk_tasks("cpu"):
                    fanout.chunk_make(pk)
                time.sleep(0.05)
        finally:
            connection.close()

    other = threading.Thread(target=other_host, name="other")
    other.start()
    try:
        store.farm(jobs, store, tmp_path, progress.append, None, time.monotonic() + 120)
    finally:
        stop_other.set()
        other.join(30)

    # One task per chunk, on the CPU cluster only.
    assert sorted(chunk_tasks("cpu")) == sorted(set(chunk_tasks("cpu"))) and len(chunk_tasks("cpu")) == 8
    assert chunk_tasks("gpu") == []
    # Each chunk made once, by one of the two, and stored where every host finds it.
    assert sorted(made) == sorted(job.name for job in jobs)
    assert set(made_by) == {"host:MainThread", "host:other"} and sum(made_by.values()) == 8
    assert all(default_storage.exists(chunk_key(job.name)) for job in jobs)
    # Progress counts chunks: a step of 1/8 (of the 98 % before the join) each time.
    steps = {round(fraction / 0.98 * 8, 6) for fraction in progress}
    assert steps <= set(range(9)) and max(steps) == 8 and progress == sorted(progress)
    # The rows live only while the composition is made.
    assert not ChunkWork.objects.filter(execution=execution).exists()


@pytest.mark.django_db(transaction=True)
def test_a_chunk_whose_worker_went_silent_is_made_by_the_planner_and_a_failed_one_too(
    settings, tmp_path, monkeypatch
):
    settings.COMPOSE_CHUNK_THREADS = 2
    settings.CHUNK_STALE_S = 1
    execution = make_execution(job=make_job(), status=ExecutionStatus.RUNNING)
    jobs = colour_jobs(3)
    made_by: Counter = Counter()
    store = chunk_store(farm=fanout.chunks_farm(execution, made_by, fence=lambda: None))
    store.folder.mkdir(parents=True, exist_ok=True)
    real_bulk_create = ChunkWork.objects.bulk_create

    def planned_then_taken(rows, **kwargs):
        """Another worker takes the first chunk and goes silent; the second fails on another host."""
        created = real_bulk_create(rows, **kwargs)
        silent, failed = (ChunkWork.objects.get(execution=execution, name=jobs[n].name) for n in (0, 1))
        ChunkWork.objects.filter(pk=silent.pk).update(
            status=ChunkStatus.MAKING,
            worker="gone:1",
            heartbeat_at=silent.heartbeat_at or execution.created_at,
        )
        ChunkWork.objects.filter(pk=failed.pk).update(
            status=ChunkStatus.FAILED, worker="other:2", error="disk full"
        )
        return created

    monkeypatch.setattr(ChunkWork.objects, "bulk_create", planned_then_taken)
    store.farm(jobs, store, tmp_path, None, None, time.monotonic() + 60)

    assert made_by == Counter({fanout.worker_name(): 3})
    assert all((store.folder / job.name).is_file() for job in jobs)


# ---------------------------------------------------------------- the deployment


def start_clusters(tmp_path: Path, faults: dict, count: int = 2) -> list:
    env = process_env(
        **CLUSTER_ENV,
        Q_WORKERS="1",
        COMPOSE_CHUNK_THREADS="1",
        CHUNK_STALE_S="3",
        FAULTS=json.dumps(faults),
    )
    return [
        start(["-m", "tests.fault_worker", "qcluster"], env, tmp_path / f"cluster-{n}.log")
        for n in range(count)
    ]


def made_chunks(log: Path) -> list[tuple[str, int]]:
    return [(line[1], int(line[2])) for line in read_log(log) if line[0] == "chunk"]


def render_on_clusters(
    tmp_path: Path, faults: dict, during=None
) -> tuple[JobExecution, list[tuple[str, int]], int]:
    """A ten-segment render on two qcluster processes; `during(execution, planner_pid, logs)` runs
    while it composes. The finished execution, the chunks made (name, pid), the planner's pid."""
    job = make_preset_job(title="扇出", content=LONG_CONTENT)
    clusters = start_clusters(tmp_path, faults)
    logs = [tmp_path / f"cluster-{n}.log" for n in range(2)]
    try:
        execution = services.job_enqueue(job=job)
        wait_until(
            lambda: (
                JobExecution.objects.filter(pk=execution.pk, current_step="compose").exists()
                or JobExecution.objects.filter(pk=execution.pk, status=ExecutionStatus.SUCCESS).exists()
            ),
            timeout=240,
            what="the render composing",
            logs=logs,
        )
        planner = next(int(line[1]) for line in read_log(tmp_path / "writes.log") if line[0] == "claim")
        if during is not None:
            during(execution, planner, logs)
        wait_until(
            lambda: JobExecution.objects.get(pk=execution.pk).status not in ("PENDING", "RUNNING"),
            timeout=300,
            what="the render finished",
            logs=logs,
        )
    finally:
        for process in clusters:
            stop(process)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCESS, (execution.error, execution.detail)
    return execution, made_chunks(tmp_path / "chunks.log"), planner


def check_made_once(execution: JobExecution, made: list[tuple[str, int]], planner: int) -> Counter:
    """Every chunk of the video made exactly once, stored; the workers that made them."""
    record = execution.steps["compose"]["data"]
    names = [name for name, _pid in made]
    assert sorted(names) == sorted(set(names)), "a chunk was made twice"
    assert set(names) == set(record["chunks"]) - set(record["chunk_sources"])
    assert all(default_storage.exists(chunk_key(name)) for name in names)
    by_pid = Counter(pid for _name, pid in made)
    assert by_pid[planner] >= 1 and len(by_pid) >= 2, by_pid
    assert sum(record["chunks_made_by"].values()) == len(names)
    assert not ChunkWork.objects.exists()
    return by_pid


def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("qcluster processes sharing a database: needs PostgreSQL")


@pytest.mark.processes
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_chunk_from_outside_is_replaced_and_the_video_is_whole(tmp_path):
    postgres_only()
    killed: list[int] = []

    def kill_a_helper_mid_chunk(execution, planner, logs):
        def helper_making() -> int | None:
            for worker in ChunkWork.objects.filter(
                execution=execution, status=ChunkStatus.MAKING
            ).values_list("worker", flat=True):
                pid = int(worker.rsplit(":", 1)[1])
                if pid != planner and any(
                    child.name() == "ffmpeg" for child in psutil.Process(pid).children()
                ):
                    return pid
            return None

        pid = wait_until(helper_making, timeout=120, what="another worker making a chunk", logs=logs)
        psutil.Process(pid).send_signal(signal.SIGKILL)
        killed.append(pid)

    faults = {"chunks": {"log": str(tmp_path / "chunks.log")}, "writes": str(tmp_path / "writes.log")}
    execution, made, planner = render_on_clusters(tmp_path, faults, kill_a_helper_mid_chunk)

    by_pid = check_made_once(execution, made, planner)
    assert killed and killed[0] != planner
    # Its chunk was made by another worker; django-q2 started a new worker in its place.
    assert len(by_pid) >= 2


@pytest.mark.processes
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_workers_dying_between_two_chunks_lose_nothing_and_render_nothing_twice(tmp_path):
    postgres_only()
    faults = {
        "chunks": {"log": str(tmp_path / "chunks.log"), "kill_after": 1},
        "writes": str(tmp_path / "writes.log"),
    }
    execution, made, planner = render_on_clusters(tmp_path, faults)

    by_pid = check_made_once(execution, made, planner)
    # Each helper made one chunk and died before the next (django-q2 started the next one).
    helpers = [pid for pid in by_pid if pid != planner]
    assert helpers and all(by_pid[pid] == 1 for pid in helpers)
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in helpers)
