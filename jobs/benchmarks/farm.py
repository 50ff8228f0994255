"""Farm benchmark: the render farm of README "Growing past one machine", simulated on this machine.

How hosts are simulated: each host is a real `manage.py qcluster` process (one django-q2 worker,
Q_WORKERS=1, one chunk thread, COMPOSE_CHUNK_THREADS=1) pinned to one core of its own with
os.sched_setaffinity (its ffmpeg and model children inherit the pin), with its own WORK_ROOT, so no
host sees another's work cache. They share only what real hosts share: PostgreSQL (this process's
database), Redis (REDIS_URL) and an S3-compatible server (moto's ThreadedMotoServer, in this
process, with a bucket of its own). At most two render hosts run at once, one per core; the `io`
host shares a core. Host kinds are the README's: a CPU host serves Q_CLUSTER_NAME=cpu, a GPU host
Q_CLUSTER_NAME=gpu (the tiny Flux model, built here at run time, stands in for the GPU), an io host
Q_CLUSTER_NAME=io (IO_CLUSTER: webhook sends, publications).

The figures, each from its own round of hosts:
- `fanout_speedup`: a job's composition (the compose step's own duration, from its step record)
  with one CPU host, then with two. The job is rendered once untimed; before each timed
  composition every chunk is removed (storage `chunks/` and each host's cache) and so is the stored
  video, so composition runs again from nothing while every earlier step is reused.
- `gpu_share`: over a batch of jobs with Flux pictures, on a host serving only `gpu` beside a CPU
  host: the seconds of that host's step records that needed `gpu`, over its busy seconds (the
  union of its django-q2 tasks' spans, so claims, reuse checks and hand-offs count as not `gpu`).
  `gpu_share_whole_render`: the same with CPU_CLUSTER=gpu (the GPU host runs every step). The tiny
  Flux model has a VAE that shrinks the latent 8 times each way, as Flux.1's does, so that full-size
  pictures take seconds on a CPU core.
- `webhook_wait_p50_s` / `webhook_wait_p95_s`: with renders queued on two CPU hosts and an io host,
  from each `render.done` event's time to its arrival at a local HTTP receiver
  (WEBHOOK_ALLOWED_NETWORKS / WEBHOOK_ALLOWED_PORTS let the local address through).
- `claims_per_s`: executions claimed and finished per second by jobs.benchmarks.queue's no-op
  worker processes, 32 at once, on PostgreSQL.

It refuses to start while executions wait or tasks are queued for its clusters, and removes what it
made: jobs, executions, the team and webhook, django-q2 tasks of its clusters, processes, temp
folders and the moto server (the bucket goes with it).

    .venv/bin/python manage.py benchmark farm
"""

import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone
from django_q.models import OrmQ, Task
from moto.server import ThreadedMotoServer

from accounts.models import Membership, Role, Team, User
from accounts.storage import s3_backend, s3_options
from jobs import services
from jobs.benchmarks.compose import CUE_TEXTS
from jobs.benchmarks.queue import database_url, queue_jobs, timed_round
from jobs.benchmarks.rerender import SECONDS_PER_SENTENCE
from jobs.benchmarks.tiny_models import build_tiny_flux
from jobs.files import CHUNKS_FOLDER
from jobs.maintenance.cleanup import storage_walk
from jobs.maintenance.presets import presets_seed
from jobs.models import ExecutionStatus, Job, JobExecution, Resource
from jobs.records import step_record
from jobs.render import queue
from jobs.render.workspace import cache_root
from jobs.webhooks.subscriptions import webhook_create
from voices.models import Language, Voice

TITLE = "farm benchmark"
CPU, GPU, IO = "cpu", "gpu", "io"
S3_KEYS = {"AWS_ACCESS_KEY_ID": "farm", "AWS_SECRET_ACCESS_KEY": "farm", "AWS_S3_REGION_NAME": "us-east-1"}
# Every host: one worker, one chunk thread, quick polling; short jobs' settings for the batches.
HOST_ENV = {"Q_WORKERS": "1", "COMPOSE_CHUNK_THREADS": "1", "Q_POLL_S": "0.2"}
# The tiny Flux model: one candidate, two steps (it stands in for the GPU; its time is what counts).
FLUX_ENV = {"IMAGE_CANDIDATES": "1", "IMAGE_STEPS": "2"}


def farm_benchmark(
    *,
    minutes: float = 10.0,
    gpu_jobs: int = 20,
    webhook_renders: int = 50,
    webhook_events: int = 20,
    claimers: int = 32,
    claims: int = 2000,
    timeout_s: float = 1800.0,
) -> dict:
    """The farm's figures (see the module docstring); the sizes are options so a test runs it small."""
    if connection.vendor != "postgresql":
        raise RuntimeError("the farm benchmark needs PostgreSQL: its hosts claim concurrently")
    cores = sorted(os.sched_getaffinity(0))[:2]
    if len(cores) < 2:
        raise RuntimeError("the farm benchmark needs two cores: one per simulated render host")
    if queue.RENDERS.claimable().exists() or OrmQ.objects.filter(key__in=[CPU, GPU, IO]).exists():
        raise RuntimeError("work is waiting in this database: run the farm benchmark on an idle queue")
    presets_seed()
    with Farm(cores) as farm:
        result = {
            **_fanout(farm, minutes=minutes, timeout_s=timeout_s),
            **_gpu_share(farm, jobs=gpu_jobs, timeout_s=timeout_s),
            **_webhook_wait(farm, renders=webhook_renders, events=webhook_events, timeout_s=timeout_s),
        }
    return {**result, **_claims(claimers=claimers, executions=claims)}


class Farm:
    """The shared S3 server and bucket, a temp folder for every host's WORK_ROOT, and the hosts
    started in it; all of it, and every job made through `job`, is gone after the `with`."""

    def __init__(self, cores: list[int]) -> None:
        self.cores = cores
        self.root = Path(tempfile.mkdtemp(prefix="farm-benchmark-"))
        self.hosts: list[Host] = []
        self.jobs: list[int] = []
        self.teams: list[int] = []
        self._stack = ExitStack()

    def __enter__(self) -> "Farm":
        port = free_port()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server: no line per request
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.server.start()
        endpoint = f"http://127.0.0.1:{port}"
        self.s3_env = {"AWS_STORAGE_BUCKET_NAME": "farm", "AWS_S3_ENDPOINT_URL": endpoint, **S3_KEYS}
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=S3_KEYS["AWS_S3_REGION_NAME"],
            aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket="farm")
        storage = {"BACKEND": s3_backend(self.s3_env), "OPTIONS": s3_options(self.s3_env)}
        # This process reads and deletes what the hosts store, and clusters its own wake-ups as they do.
        self._stack.enter_context(
            override_settings(
                STORAGES={**settings.STORAGES, "default": storage}, WORK_ROOT=self.root / "benchmark"
            )
        )
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stop_hosts()
            Job.objects.filter(pk__in=self.jobs).delete()
            Team.objects.filter(pk__in=self.teams).delete()
            User.objects.filter(username__startswith="farm-benchmark-").delete()
            OrmQ.objects.filter(key__in=[CPU, GPU, IO]).delete()
            Task.objects.filter(cluster__in=[CPU, GPU, IO]).delete()
        finally:
            self._stack.close()
            self.server.stop()
            shutil.rmtree(self.root, ignore_errors=True)

    def start(self, name: str, *, cluster: str, core: int, **env: str) -> "Host":
        host = Host(self, name, cluster=cluster, core=core, env=env)
        self.hosts.append(host)
        return host

    def stop_hosts(self) -> None:
        for host in self.hosts:
            host.signal(signal.SIGTERM)
        for host in self.hosts:
            host.stop()
        self.hosts = []

    @contextmanager
    def routing(self, *, cpu: str, gpu: str) -> Iterator[None]:
        """This process queues renders where the hosts of this round expect them."""
        with override_settings(CPU_CLUSTER=cpu, GPU_CLUSTER=gpu, IO_CLUSTER=IO):
            yield

    def job(self, title: str, sentences: list[str], **fields) -> Job:
        job = services.job_create(
            user=fields.pop("user", None),
            team=fields.pop("team", None),
            title=f"{TITLE}: {title}",
            content="".join(sentences),
            speech_speed=1.2,
            language=Language.objects.get(team=None, code="zh-CN"),
            voice=Voice.objects.get(team=None, name="cmn"),
            **fields,
        )
        self.jobs.append(job.pk)
        return job

    def wait(self, executions: list[int], *, timeout_s: float, what: str) -> list[JobExecution]:
        """The executions once all are SUCCESS; RuntimeError (with the hosts' logs) if one fails."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            rows = list(JobExecution.objects.filter(pk__in=executions))
            failed = [
                row for row in rows if row.status in (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)
            ]
            if failed:
                raise RuntimeError(
                    f"{what}: execution {failed[0].pk} {failed[0].status}: {failed[0].error}{self.logs()}"
                )
            if all(row.status == ExecutionStatus.SUCCESS for row in rows):
                return rows
            time.sleep(0.5)
        raise RuntimeError(f"{what}: not done within {timeout_s:g} s{self.logs()}")

    def logs(self) -> str:
        return "".join(f"\n--- {host.name}\n{host.log_tail()}" for host in self.hosts)


class Host:
    """One simulated host: a `qcluster` process pinned to `core`, with a WORK_ROOT of its own."""

    def __init__(self, farm: Farm, name: str, *, cluster: str, core: int, env: dict[str, str]) -> None:
        self.name = name
        self.work_root = farm.root / name
        self.log_path = farm.root / f"{name}.log"
        environment = {
            **os.environ,
            **HOST_ENV,
            **farm.s3_env,
            "DATABASE_URL": database_url(),
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "batchvideo.settings"),
            "WORK_ROOT": str(self.work_root),
            "Q_CLUSTER_NAME": cluster,
            "CPU_CLUSTER": settings.CPU_CLUSTER,
            "GPU_CLUSTER": settings.GPU_CLUSTER,
            "IO_CLUSTER": settings.IO_CLUSTER,
            **env,
        }
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                cwd=settings.BASE_DIR,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=lambda: os.sched_setaffinity(0, {core}),
            )

    def signal(self, number: int) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, number)

    def stop(self) -> None:
        """Stop it: TERM to its process group, KILL after 20 s."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait(5)

    def chunk_cache(self) -> Path:
        """This host's local copies of chunks (its WORK_ROOT in place of this process's)."""
        return self.work_root / (cache_root() / CHUNKS_FOLDER).relative_to(settings.WORK_ROOT)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sentences(count: int, *, tag: str = "") -> list[str]:
    return [f"{tag}第{number + 1}条，{CUE_TEXTS[number % len(CUE_TEXTS)]}。" for number in range(count)]


def step_seconds(executions: list[JobExecution], *, cluster: str) -> dict[str, float]:
    """Seconds of the step records that ran on `cluster`, by the resource they needed."""
    seconds = {Resource.CPU: 0.0, Resource.GPU: 0.0}
    for execution in executions:
        for name in execution.steps:
            record = step_record(execution.steps, name).raw
            if record.get("status") == "done" and record.get("cluster") == cluster:
                seconds[record["resource"]] += float(record["duration_s"])
    return seconds


def busy_seconds(tasks) -> float:
    """Seconds during which a one-worker host ran a task: the union of its django-q2 tasks' spans,
    from when its worker began each (`started`, as jobs.apps records it) to its end; the union
    counts once the time in which the host had taken a task while still finishing another."""
    busy, end = 0.0, None
    for task in sorted(tasks, key=lambda task: task.started):
        if end is None or task.started > end:
            busy += (task.stopped - task.started).total_seconds()
            end = task.stopped
        elif task.stopped > end:
            busy += (task.stopped - end).total_seconds()
            end = task.stopped
    return busy


# ---------------------------------------------------------------- fan-out


def _fanout(farm: Farm, *, minutes: float, timeout_s: float) -> dict:
    """The compose step's seconds with one CPU host, then two; nothing reused by either."""
    with farm.routing(cpu=CPU, gpu=CPU):
        farm.start("cpu-0", cluster=CPU, core=farm.cores[0])
        job = farm.job("fan-out", sentences(max(3, round(minutes * 60 / SECONDS_PER_SENTENCE))))
        # Untimed: narration, subtitles, segments and pictures, kept for both timed compositions.
        _render(farm, job, timeout_s=timeout_s)
        one = _composition(farm, job, timeout_s=timeout_s)
        farm.start("cpu-1", cluster=CPU, core=farm.cores[1])
        two = _composition(farm, job, timeout_s=timeout_s)
        farm.stop_hosts()
    return {
        "fanout_compose_1_s": one,
        "fanout_compose_2_s": two,
        "fanout_speedup": one / two,
        "fanout_video_s": minutes * 60,
    }


def _render(farm: Farm, job: Job, *, timeout_s: float) -> JobExecution:
    execution = services.job_enqueue(job=job)
    [done] = farm.wait([execution.pk], timeout_s=timeout_s, what=f"job {job.pk}")
    return done


def _composition(farm: Farm, job: Job, *, timeout_s: float) -> float:
    """A fresh execution of `job` with every chunk and stored video removed: its compose step's seconds."""
    for key in list(storage_walk(CHUNKS_FOLDER)):
        default_storage.delete(key)
    for host in farm.hosts:
        shutil.rmtree(host.chunk_cache(), ignore_errors=True)
    for execution in job.executions.all():
        for key in step_record(execution.steps, "compose").outputs.values():
            default_storage.delete(key)
    done = _render(farm, job, timeout_s=timeout_s)
    record = step_record(done.steps, "compose")
    if record.status != "done" or record.chunks["reused"]:
        raise RuntimeError(f"the composition reused what it should have made: {record.raw.get('data')}")
    return float(record.raw["duration_s"])


# ---------------------------------------------------------------- GPU share


def _gpu_share(farm: Farm, *, jobs: int, timeout_s: float) -> dict:
    """The gpu host's busy seconds (its django-q2 tasks, start to stop: claims and hand-offs count)
    and the part of them its `gpu` steps took, with the steps split and with the whole render there."""
    model_dir = build_tiny_flux(farm.root / "flux", vae_levels=4)
    flux = {**FLUX_ENV, "FLUX_MODEL_DIR": str(model_dir)}
    shares = {}
    for label, cpu_cluster in (("gpu_share", CPU), ("gpu_share_whole_render", GPU)):
        started = timezone.now()
        with farm.routing(cpu=cpu_cluster, gpu=GPU):
            farm.start(f"{label}-gpu", cluster=GPU, core=farm.cores[0], **flux)
            farm.start(f"{label}-cpu", cluster=CPU, core=farm.cores[1], **flux)
            queued = [
                services.job_enqueue(job=farm.job(f"{label} {number}", sentences(1, tag=f"{label}{number}")))
                for number in range(jobs)
            ]
            done = farm.wait([row.pk for row in queued], timeout_s=timeout_s, what=label)
            # A task leaves the queue once its host saved its record (the broker's acknowledgement).
            _until(
                lambda: not OrmQ.objects.filter(key__in=[CPU, GPU]).exists(),
                timeout_s=60,
                farm=farm,
                what=f"{label}: the hosts' last tasks",
            )
            farm.stop_hosts()
        gpu_s = step_seconds(done, cluster=GPU)[Resource.GPU]
        busy_s = busy_seconds(Task.objects.filter(cluster=GPU, started__gte=started))
        if not gpu_s:
            raise RuntimeError(f"{label}: the gpu host ran no gpu step")
        shares[label] = gpu_s / busy_s
        shares[f"{label}_busy_s"] = busy_s
    return shares


# ---------------------------------------------------------------- webhook wait


class Receiver(ThreadingHTTPServer):
    """A local webhook receiver: each event's first arrival time (epoch seconds) and its created_at."""

    def __init__(self) -> None:
        self.arrivals: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), ReceiverHandler)


class ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        arrived = time.time()
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        created = datetime.fromisoformat(payload["created_at"]).timestamp()
        with self.server.lock:
            self.server.arrivals.setdefault(payload["id"], (created, arrived))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def _webhook_wait(farm: Farm, *, renders: int, events: int, timeout_s: float) -> dict:
    """`renders` short renders queued on two CPU hosts; the first `events` render.done events' waits."""
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    port = receiver.server_address[1]
    allowed = {"WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32", "WEBHOOK_ALLOWED_PORTS": str(port)}
    try:
        with (
            farm.routing(cpu=CPU, gpu=CPU),
            override_settings(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.1/32"], WEBHOOK_ALLOWED_PORTS=[port]),
        ):
            user = User.objects.create(username=f"farm-benchmark-{port}")
            team = Team.objects.create(name=user.username, slug=user.username)
            farm.teams.append(team.pk)
            Membership.objects.create(team=team, user=user, role=Role.ADMIN)
            webhook_create(user=user, team=team, url=f"http://127.0.0.1:{port}/", events=["render.done"])
            queued = [
                services.job_enqueue(
                    job=farm.job(f"webhook {number}", sentences(2, tag=f"w{number}"), user=user, team=team)
                )
                for number in range(renders)
            ]
            farm.start("io", cluster=IO, core=farm.cores[0], **allowed)
            farm.start("webhook-cpu-0", cluster=CPU, core=farm.cores[0], **allowed)
            farm.start("webhook-cpu-1", cluster=CPU, core=farm.cores[1], **allowed)
            _until(lambda: len(receiver.arrivals) >= events, timeout_s=timeout_s, farm=farm, what="webhooks")
            for execution in JobExecution.objects.filter(pk__in=[row.pk for row in queued]):
                services.execution_cancel(execution=execution)
            farm.stop_hosts()
    finally:
        receiver.shutdown()
        receiver.server_close()
    waits = sorted(arrived - created for created, arrived in list(receiver.arrivals.values())[:events])
    return {
        "webhook_wait_p50_s": statistics.median(waits),
        "webhook_wait_p95_s": waits[max(0, round(0.95 * len(waits)) - 1)],
        "webhook_events": len(waits),
    }


def _until(condition: Callable[[], bool], *, timeout_s: float, farm: Farm, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout_s:g} s{farm.logs()}")
        time.sleep(0.2)


# ---------------------------------------------------------------- claims


def _claims(*, claimers: int, executions: int) -> dict:
    """Empty executions claimed and finished per second by `claimers` no-op worker processes."""
    queued = queue_jobs(executions, label=TITLE)
    try:
        seconds = timed_round(claimers, queued)
    finally:
        Job.objects.filter(pk__in=[execution.job_id for execution in queued]).delete()
    return {"claims_per_s": executions / seconds, "claimers": claimers}


def format_farm_line(result: dict) -> str:
    return (
        "fanout_speedup={fanout_speedup:.2f} gpu_share={gpu_share:.3f} "
        "gpu_share_whole_render={gpu_share_whole_render:.3f} webhook_wait_p50_s={webhook_wait_p50_s:.2f} "
        "webhook_wait_p95_s={webhook_wait_p95_s:.2f} claims_per_s={claims_per_s:.0f}"
    ).format(**result)


def format_farm_details(result: dict) -> str:
    return (
        "compose of {fanout_video_s:.0f} s of video: {fanout_compose_1_s:.1f} s on 1 CPU host, "
        "{fanout_compose_2_s:.1f} s on 2; gpu host busy {gpu_share_busy_s:.1f} s (steps split), "
        "{gpu_share_whole_render_busy_s:.1f} s (whole render); {webhook_events} webhook events; "
        "{claimers} claimers"
    ).format(**result)
