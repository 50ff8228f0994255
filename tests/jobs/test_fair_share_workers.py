"""Fair share with real workers (issue 26): one `qcluster` with two worker processes on the
PostgreSQL test database renders real, tiny videos (one short sentence, the preset voice and picture
cards, ultrafast encoding). Team A queues its renders first; once A holds both workers, team B queues
5. B's first render starts before A's third render after B queued (not after all of A's), and up to
B's last render's end the two teams' worker time differs by at most one render.

The issue asks for 100 renders of A; on CI's two cores a real render takes seconds, so A queues 20
(the proportions: B's 5 come while A has many more waiting, and the claim order is what is tested).
"""

import time

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Team
from jobs import services
from jobs.models import ExecutionStatus, JobExecution
from tests.factories import make_preset_job, make_user
from tests.processes import process_env, start, stop

A_RENDERS, B_RENDERS = 20, 5
CONTENT = "今天天气很好。"
CLUSTER_ENV = {
    "Q_WORKERS": "2",
    "SEGMENT_TARGET_MS": "1500",
    "VIDEO_PRESET": "ultrafast",
    "EXECUTION_HEARTBEAT_S": "1",
    "FAIR_SHARE_WINDOW_S": "3600",
}

pytestmark = [pytest.mark.processes, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_until(condition, *, timeout: float, what: str, log):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout} s\n{log.read_text(errors='replace')[-4000:]}")


def worker_time(executions, *, since, until) -> float:
    """Seconds of worker time of `executions` between `since` and `until` (a running one: until then)."""
    total = 0.0
    for execution in executions:
        if execution.started_at is None:
            continue
        start_at = max(execution.started_at, since)
        end_at = min(execution.finished_at or until, until)
        total += max(0.0, (end_at - start_at).total_seconds())
    return total


def test_a_team_queueing_later_gets_its_fair_share_of_real_workers(tmp_path, settings):
    if connection.vendor != "postgresql":
        pytest.skip("qcluster workers on the test database: needs PostgreSQL")
    a, b = make_user(), make_user()
    team_a, team_b = Team.objects.get(personal_of=a), Team.objects.get(personal_of=b)
    a_jobs = [
        make_preset_job(owner=a, title=f"A {n}", content=CONTENT, speech_speed=2.0, runorder=-1_000_000)
        for n in range(A_RENDERS)
    ]
    b_jobs = [
        make_preset_job(owner=b, title=f"B {n}", content=CONTENT, speech_speed=2.0) for n in range(B_RENDERS)
    ]
    log = tmp_path / "cluster.log"
    for job in a_jobs:
        services.job_enqueue(job=job)
    cluster = start(["manage.py", "qcluster"], process_env(**CLUSTER_ENV), log)
    try:
        running_a = JobExecution.objects.filter(job__team=team_a, status=ExecutionStatus.RUNNING)
        wait_until(lambda: running_a.count() == 2, timeout=60, what="team A on both workers", log=log)
        b_queued_at = timezone.now()
        for job in b_jobs:
            services.job_enqueue(job=job)
        b_left = JobExecution.objects.filter(job__team=team_b).exclude(status=ExecutionStatus.SUCCESS)
        wait_until(lambda: not b_left.exists(), timeout=150, what="team B's renders done", log=log)
    finally:
        stop(cluster)

    failed = JobExecution.objects.filter(status=ExecutionStatus.FAILED)
    assert not failed.exists(), [(e.pk, e.error) for e in failed]
    a_runs = list(
        JobExecution.objects.filter(job__team=team_a, started_at__isnull=False).order_by("started_at")
    )
    b_runs = list(JobExecution.objects.filter(job__team=team_b).order_by("started_at"))
    timeline = sorted([(run.started_at, "A") for run in a_runs] + [(run.started_at, "B") for run in b_runs])
    shown = [(team, f"{(start - b_queued_at).total_seconds():.1f}") for start, team in timeline]
    # B's first render starts before A's third render after B queued (not after A's 20).
    a_first_after_b = [run for run in a_runs if b_queued_at < run.started_at < b_runs[0].started_at]
    assert len(a_first_after_b) <= 2, shown
    since, until = a_runs[0].started_at, max(run.finished_at for run in b_runs)
    used_a = worker_time(a_runs, since=since, until=until)
    used_b = worker_time(b_runs, since=since, until=until)
    one_render = max(
        (run.finished_at - run.started_at).total_seconds() for run in a_runs + b_runs if run.finished_at
    )
    assert abs(used_a - used_b) <= one_render, (used_a, used_b, one_render, shown)
