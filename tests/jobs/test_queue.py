"""The queue across processes: exclusive claims, command exit status, and the queue benchmark.

Worker processes reach the test database through DATABASE_URL, so these tests commit their rows
(`transaction=True`) and need a database other processes can open: PostgreSQL, or SQLite with a
file test database (a test database in memory cannot be shared, and the tests say so).
"""

import os
import queue as task_queues
import subprocess
import sys
from datetime import timedelta
from multiprocessing import Value

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_q import worker as django_q_worker

from jobs.benchmarks import queue as benchmark
from jobs.models import ExecutionStatus, Job, JobExecution
from tests.factories import make_job


def shared_database_url() -> str:
    try:
        return benchmark.database_url()
    except RuntimeError as error:
        pytest.skip(f"{error}: give SQLite tests a file database (DATABASES['default']['TEST']['NAME'])")


def manage(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": shared_database_url(),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "WORK_ROOT": str(tmp_path / "work"),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_two_worker_processes_never_run_one_execution_together(tmp_path):
    shared_database_url()
    queued = benchmark.queue_jobs(50)

    workers = benchmark.worker_processes(2, log_dir=tmp_path, wait_for_go=True)
    benchmark.release(workers)  # both start claiming at the same moment
    for worker in workers:
        worker.communicate(timeout=300)
        assert worker.returncode == 0, benchmark.worker_errors(worker)
        worker.errors.close()

    logs = [log.read_text().split() for log in sorted(tmp_path.glob("worker-*.log"))]
    assert len(logs) == 2 and all(logs), "both workers should have claimed executions"
    claims = [int(line) for log in logs for line in log]
    assert sorted(claims) == sorted(execution.pk for execution in queued)  # each claimed exactly once
    rows = JobExecution.objects.filter(pk__in=claims)
    assert set(rows.values_list("status", flat=True)) == {ExecutionStatus.SUCCESS}
    assert set(rows.values_list("retry_count", flat=True)) == {0}
    assert set(rows.values_list("progress", flat=True)) == {100}
    assert all(record["narration"]["status"] == "done" for record in rows.values_list("steps", flat=True))


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_run_jobs_process_exits_1_when_an_execution_failed_and_0_on_an_empty_queue(tmp_path):
    shared_database_url()
    job = make_job()  # no language: narration fails at once
    execution = JobExecution.objects.create(job=job)

    failed = manage("run_jobs", "--max-jobs", "1", tmp_path=tmp_path)

    assert failed.returncode == 1, failed.stderr
    assert f"attempted=1 run=1 succeeded=0 failed=1 last_id={execution.pk}" in failed.stdout
    assert "1 of 1 executions failed" in failed.stderr

    empty = manage("run_jobs", tmp_path=tmp_path)
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.strip() == "attempted=0 run=0 succeeded=0 failed=0 last_id=-"


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
def test_queue_benchmark_measures_overhead_and_speedup_and_leaves_no_rows():
    shared_database_url()
    make_job(title="a real job")

    result = benchmark.queue_benchmark(executions=20, worker_counts=(1, 2))

    assert set(result) == {"overhead_ms", "speedup_2w"}
    assert result["overhead_ms"] > 0 and result["speedup_2w"] > 0
    assert list(Job.objects.values_list("title", flat=True)) == ["a real job"]
    assert not JobExecution.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_queue_benchmark_refuses_to_run_while_real_work_waits():
    JobExecution.objects.create(job=make_job())
    with pytest.raises(RuntimeError, match="run the benchmark on an idle queue"):
        benchmark.queue_benchmark(executions=5)


def test_format_queue_line_rounds_like_the_report():
    line = benchmark.format_queue_line({"overhead_ms": 12.345, "speedup_2w": 1.876, "speedup_4w": 3.1})
    assert line == "overhead_ms=12.3 speedup_2w=1.88 speedup_4w=3.10"


@pytest.mark.django_db
def test_database_url_points_workers_at_the_same_database():
    if connection.vendor == "postgresql":
        url = benchmark.database_url()
        assert url.startswith("postgres://") and url.endswith(f"/{connection.settings_dict['NAME']}")
    else:
        name = str(connection.settings_dict["NAME"])
        if "memory" in name:
            with pytest.raises(RuntimeError, match="in-memory SQLite"):
                benchmark.database_url()
        else:
            assert benchmark.database_url() == f"sqlite:///{name}"


def test_a_task_records_when_a_worker_began_it_not_when_it_was_queued():
    """django-q2 fills `started` when a task is queued; the admin's task times and the farm
    benchmark's busy time read it as the start of the work (jobs.apps)."""
    queued_at = timezone.now() - timedelta(minutes=5)
    task = {
        "id": "t1",
        "name": "t1",
        "func": "math.floor",
        "args": (1.5,),
        "kwargs": {},
        "started": queued_at,
    }
    tasks, results = task_queues.Queue(), task_queues.Queue()
    tasks.put(task)
    tasks.put("STOP")

    django_q_worker.worker(tasks, results, Value("f", -1))

    done = results.get_nowait()
    assert (done["success"], done["result"]) == (True, 1)
    assert timezone.now() - timedelta(seconds=10) < done["started"] <= done["stopped"]
