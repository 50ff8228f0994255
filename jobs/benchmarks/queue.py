"""Queue benchmark: what the queue itself costs per execution, and how it scales with workers.

It measures queue overhead only (claim + progress record + finish), not media: worker processes
run `_noop_worker`, which claims through the real `queue.execution_claim_next`, records one
no-op step through the real progress `Reporter` and ends with the render's own
`render.execution_finish`. Render steps are never called.

Run it on an idle database (no queued work, no qcluster running), e.g.

    .venv/bin/python manage.py shell -c \
        "from jobs.benchmarks.queue import *; print(format_queue_line(queue_benchmark()))"

It refuses to start while other executions wait, and deletes the jobs and executions it made.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection
from django.utils import timezone

from jobs.models import ExecutionStatus, Job, JobExecution
from jobs.records import step_write
from jobs.render import progress, queue
from jobs.render.loop import execution_finish
from jobs.render.steps import STEPS

BENCHMARK_TITLE = "queue benchmark"
NOOP_STEP = next(iter(STEPS))
# Workers load Django first, then wait for "go" on stdin, so start-up is not timed.
WORKER_SCRIPT = (
    "import os, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'batchvideo.settings'); "
    "django.setup(); from jobs.benchmarks.queue import worker_main; worker_main()"
)


def database_url() -> str:
    """A DATABASE_URL for the database this process uses (the test database during tests)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        name = str(db["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            raise RuntimeError("worker processes cannot share an in-memory SQLite database")
        return f"sqlite:///{name}"
    if db["ENGINE"] == "django.db.backends.postgresql":
        user = quote(db.get("USER") or "", safe="")
        password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
        credentials = f"{user}{password}@" if user else ""
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{credentials}{db.get('HOST') or ''}{port}/{quote(db['NAME'], safe='')}"
    raise RuntimeError(f"no DATABASE_URL for the {db['ENGINE']} engine")


def _noop_run(execution: JobExecution) -> None:
    """One no-op step recorded through the real progress reporter, then the real finish."""
    reporter = progress.Reporter(execution)
    started = timezone.now()
    clock = time.monotonic()
    step_write(execution, NOOP_STEP, {"status": "running", "started_at": started.isoformat()})
    reporter.report(NOOP_STEP, 0.0, "no-op step: started", force=True)
    step_write(
        execution,
        NOOP_STEP,
        {
            "status": "done",
            "outputs": {},
            "data": {"benchmark": "no media"},
            "started_at": started.isoformat(),
            "finished_at": timezone.now().isoformat(),
            "duration_s": round(time.monotonic() - clock, 3),
        },
    )
    reporter.report(NOOP_STEP, 1.0, "no-op step: done", force=True)
    execution.progress = 100
    execution_finish(reporter, ExecutionStatus.SUCCESS, "Done (queue benchmark: no media steps)")


def _noop_worker(stop_when_empty: bool = True, *, log_path: Path | None = None, poll_s: float = 0.5) -> int:
    """Claim and no-op-run executions until the queue is empty; returns how many it ran.

    `log_path` gets one claimed execution id a line, so tests can check who ran what.
    """
    count = 0
    log = open(log_path, "a") if log_path else None
    try:
        while True:
            execution = queue.execution_claim_next()
            if execution is None:
                # claim_next gives up when others won every candidate it saw: look again unless truly empty.
                if queue.claimable().exists():
                    continue
                if stop_when_empty:
                    return count
                time.sleep(poll_s)
                continue
            if log:
                log.write(f"{execution.pk}\n")
                log.flush()
            _noop_run(execution)
            count += 1
    finally:
        if log:
            log.close()


def worker_main() -> None:
    """Entry point of a worker process (see WORKER_SCRIPT)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", type=Path)
    parser.add_argument("--wait-for-go", action="store_true")
    options = parser.parse_args(sys.argv[1:])
    connection.ensure_connection()
    if options.wait_for_go:
        print("ready", flush=True)
        sys.stdin.readline()
    started = time.monotonic()
    count = _noop_worker(log_path=options.log)
    print(json.dumps({"executions": count, "seconds": time.monotonic() - started}), flush=True)


def worker_processes(
    count: int, *, log_dir: Path | None = None, wait_for_go: bool = False
) -> list[subprocess.Popen]:
    """Start `count` no-op worker processes on this process's database; stderr goes to a temp file."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "batchvideo.settings"),
    }
    processes = []
    for number in range(count):
        command = [sys.executable, "-c", WORKER_SCRIPT]
        if log_dir is not None:
            command += ["--log", str(log_dir / f"worker-{number}.log")]
        if wait_for_go:
            command.append("--wait-for-go")
        errors = tempfile.TemporaryFile("w+")
        process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        process.errors = errors  # Popen keeps no handle on a stderr it did not open
        processes.append(process)
    return processes


def worker_errors(process: subprocess.Popen) -> str:
    """The end of what a worker process wrote to stderr."""
    process.errors.seek(0)
    return process.errors.read()[-2000:]


def queue_jobs(count: int, *, label: str = BENCHMARK_TITLE) -> list[JobExecution]:
    """`count` jobs without media work, each with one PENDING execution (one active per job)."""
    jobs = Job.objects.bulk_create(
        Job(title=f"{label} {number}", content="no media") for number in range(count)
    )
    return JobExecution.objects.bulk_create(
        JobExecution(job=job, detail="Waiting for a worker") for job in jobs
    )


def release(processes: list[subprocess.Popen]) -> None:
    """Wait until every worker started with `wait_for_go` is ready, then let them all go at once."""
    for process in processes:
        if process.stdout.readline().strip() != "ready":
            process.wait(timeout=60)
            raise RuntimeError(f"a benchmark worker did not start: {worker_errors(process)}")
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()


def timed_round(workers: int, queued: list[JobExecution]) -> float:
    processes = worker_processes(workers, wait_for_go=True)
    try:
        release(processes)
        started = time.perf_counter()
        # Done when the last worker reports its count (interpreter shutdown is not queue work).
        reports = [process.stdout.readline() for process in processes]
        elapsed = time.perf_counter() - started
        for process in processes:
            process.communicate(timeout=600)
            if process.returncode != 0:
                raise RuntimeError(f"a benchmark worker failed: {worker_errors(process)}")
        if sum(json.loads(report)["executions"] for report in reports) != len(queued):
            raise RuntimeError(f"the workers ran {reports} executions, not {len(queued)}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.errors.close()
    done = JobExecution.objects.filter(
        pk__in=[execution.pk for execution in queued], status=ExecutionStatus.SUCCESS, retry_count=0
    ).count()
    if done != len(queued):
        raise RuntimeError(f"{workers} workers finished {done} of {len(queued)} executions exactly once")
    return elapsed


def queue_benchmark(*, executions: int = 200, worker_counts: tuple[int, ...] = (1, 2, 4)) -> dict:
    """Per-execution queue overhead with one worker (ms) and the speedup with more workers."""
    if queue.claimable().exists():
        raise RuntimeError("executions are waiting in this database: run the benchmark on an idle queue")
    seconds: dict[int, float] = {}
    for workers in worker_counts:
        queued = queue_jobs(executions)
        try:
            seconds[workers] = timed_round(workers, queued)
        finally:
            Job.objects.filter(pk__in=[execution.job_id for execution in queued]).delete()
    single = seconds[min(worker_counts)]
    result = {"overhead_ms": single / executions * 1000}
    for workers in worker_counts:
        if workers != min(worker_counts):
            result[f"speedup_{workers}w"] = single / seconds[workers]
    return result


def format_queue_line(result: dict) -> str:
    return " ".join(
        [f"overhead_ms={result['overhead_ms']:.1f}"]
        + [f"{name}={value:.2f}" for name, value in result.items() if name.startswith("speedup_")]
    )
