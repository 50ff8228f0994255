"""Fair share of the workers between teams (jobs.render.fairshare): the team that used the least
worker time recently, for its weight, goes first; runorder orders jobs only inside a team; a team at
its limit of concurrent renders waits and says so; priority renumbers only the acting team's jobs.
The run with real qcluster workers is tests/jobs/test_fair_share_workers.py."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from jobs import services
from jobs.models import ExecutionStatus, Job, JobExecution
from jobs.render import fairshare, queue
from tests.api.conftest import client_for
from tests.factories import make_execution, make_job, make_team, make_user

pytestmark = pytest.mark.django_db


def used(team, *, minutes: float, ended_ago_min: float = 1.0) -> JobExecution:
    """A finished render of `team` that took `minutes` of a worker, ending `ended_ago_min` ago."""
    end = timezone.now() - timedelta(minutes=ended_ago_min)
    return make_execution(
        make_job(team=team),
        status=ExecutionStatus.SUCCESS,
        started_at=end - timedelta(minutes=minutes),
        finished_at=end,
    )


def waiting(team, *, runorder: int = 0) -> JobExecution:
    return make_execution(make_job(team=team, runorder=runorder), detail="Waiting for a worker")


def test_a_very_low_runorder_does_not_put_one_team_ahead_of_a_team_that_used_less_worker_time():
    a, b = make_team(slug="a"), make_team(slug="b")
    used(a, minutes=10)
    used(b, minutes=2)
    b_earlier = waiting(b)
    a_pushed = [waiting(a, runorder=-1_000_000) for _ in range(3)]

    claimed = queue.execution_claim_next()

    assert claimed == b_earlier
    assert all(JobExecution.objects.get(pk=e.pk).status == ExecutionStatus.PENDING for e in a_pushed)


def test_inside_a_team_runorder_then_age_orders_its_jobs():
    team = make_team()
    first_queued = waiting(team, runorder=5)
    pushed = waiting(team, runorder=-3)
    later = waiting(team, runorder=5)

    order = [queue.execution_claim_next() for _ in range(3)]

    assert order == [pushed, first_queued, later]


def test_the_weight_divides_a_teams_worker_time():
    heavy, light = make_team(slug="heavy", weight=4.0), make_team(slug="light", weight=1.0)
    used(heavy, minutes=12)  # 12 / 4 = 3 per unit of weight
    used(light, minutes=5)  # 5 / 1 = 5
    light_job = waiting(light)
    heavy_job = waiting(heavy)

    assert queue.execution_claim_next() == heavy_job
    assert queue.execution_claim_next() == light_job


def test_a_running_render_counts_its_time_so_far_and_time_before_the_window_does_not_count(settings):
    settings.FAIR_SHARE_WINDOW_S = 3600
    a, b = make_team(slug="a"), make_team(slug="b")
    # Team a: a render running for 20 minutes now. Team b: 50 minutes of work, but it ended 2 hours ago.
    make_execution(
        make_job(team=a),
        status=ExecutionStatus.RUNNING,
        started_at=timezone.now() - timedelta(minutes=20),
        heartbeat_at=timezone.now(),
    )
    used(b, minutes=50, ended_ago_min=120)
    # And one render of b that started before the window: only its part inside the window counts.
    used(b, minutes=70, ended_ago_min=50)  # 10 of its minutes lie inside the window

    usage = fairshare.teams_usage(stale=queue.RENDERS.stale())

    assert usage[a.pk].running == 1 and 19.9 * 60 < usage[a.pk].used_s < 20.1 * 60
    assert usage[b.pk].running == 0 and 9.9 * 60 < usage[b.pk].used_s < 10.1 * 60
    b_job, a_job = waiting(b), waiting(a)
    assert queue.execution_claim_next() == b_job
    assert queue.execution_claim_next() == a_job


def test_a_team_at_its_limit_is_skipped_and_its_waiting_executions_say_why(settings):
    settings.TEAM_MAX_CONCURRENT_RENDERS = 2
    a, b = make_team(slug="team-a"), make_team(slug="team-b")
    for _ in range(2):
        make_execution(
            make_job(team=a),
            status=ExecutionStatus.RUNNING,
            started_at=timezone.now(),
            heartbeat_at=timezone.now(),
        )
    used(b, minutes=30)  # b used far more: without the limit a would go first
    a_waiting = waiting(a)
    b_waiting = waiting(b)

    assert queue.execution_claim_next() == b_waiting
    a_waiting.refresh_from_db()
    assert a_waiting.status == ExecutionStatus.PENDING
    assert a_waiting.detail == "Waiting: team team-a has 2 renders running, its limit"
    assert queue.execution_claim_next() is None  # only team a's work waits, and a is full
    # One of a's renders ends: a's work goes.
    ended = JobExecution.objects.filter(job__team=a, status=ExecutionStatus.RUNNING).first()
    JobExecution.objects.filter(pk=ended.pk).update(
        status=ExecutionStatus.SUCCESS, finished_at=timezone.now()
    )
    assert queue.execution_claim_next() == a_waiting


def test_a_silent_render_does_not_hold_its_teams_place_and_is_taken_over(settings):
    settings.TEAM_MAX_CONCURRENT_RENDERS = 1
    team = make_team()
    long_ago = timezone.now() - timedelta(seconds=settings.EXECUTION_STALE_S + 60)
    silent = make_execution(
        make_job(team=team),
        status=ExecutionStatus.RUNNING,
        started_at=long_ago,
        heartbeat_at=long_ago,
        attempt=1,
    )

    assert queue.execution_claim_next() == silent


def test_the_wake_up_after_a_render_ends_reaches_a_team_that_was_full(
    settings, django_capture_on_commit_callbacks
):
    from django_q.models import OrmQ

    settings.TEAM_MAX_CONCURRENT_RENDERS = 1
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    team = make_team()
    make_execution(
        make_job(team=team),
        status=ExecutionStatus.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    waiting(team)
    assert queue.execution_claim_next() is None

    with django_capture_on_commit_callbacks(execute=True):
        queue.wake_for_waiting_team()  # what the render's end calls (jobs.render.loop.execution_finish)

    assert any(task.func() == queue.RENDER_TASK for task in OrmQ.objects.all())


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_at_once_never_pass_a_teams_limit(settings):
    if connection.vendor != "postgresql":
        pytest.skip("row locks across connections need PostgreSQL")
    settings.TEAM_MAX_CONCURRENT_RENDERS = 1
    team = make_team()
    for _ in range(4):
        waiting(team)
    start = threading.Barrier(4)
    claimed = []

    def worker() -> None:
        try:
            start.wait()
            execution = queue.execution_claim_next()
            if execution is not None:
                claimed.append(execution.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(claimed) == 1
    assert JobExecution.objects.filter(status=ExecutionStatus.RUNNING).count() == 1


# ---------------------------------------------------------------- priority inside a team


def test_increase_priority_renumbers_only_the_acting_teams_jobs(monkeypatch):
    """At the lowest runorder the front is renumbered: only the acting team's jobs, never another
    team's rows (their updated_at included)."""
    monkeypatch.setattr("jobs.services.RUNORDER_MIN", -10)
    ours, theirs = make_user(), make_user()
    their_jobs = [make_job(owner=theirs, runorder=-10), make_job(owner=theirs, runorder=-4)]
    before = list(
        Job.objects.filter(pk__in=[j.pk for j in their_jobs]).values_list("pk", "runorder", "updated_at")
    )
    our_front = make_job(owner=ours, runorder=-10)
    mine = make_job(owner=ours, runorder=3)

    response = client_for(ours).post(f"/api/v1/jobs/{mine.pk}/increase_priority/")

    assert response.status_code == 200, response.content
    after = list(
        Job.objects.filter(pk__in=[j.pk for j in their_jobs]).values_list("pk", "runorder", "updated_at")
    )
    assert after == before
    our_front.refresh_from_db()
    mine.refresh_from_db()
    assert (mine.runorder, our_front.runorder) == (-2, -1)


def test_the_admins_increase_priority_leaves_other_teams_jobs_untouched(monkeypatch):
    from tests.admin.conftest import make_operator
    from tests.admin.test_job_list import act
    from tests.admin.test_job_list import client_for as admin_client_for

    ours = make_operator()
    theirs = make_user()
    their_job = make_job(owner=theirs, runorder=-50)
    before = Job.objects.filter(pk=their_job.pk).values_list("runorder", "updated_at").get()
    mine = make_job(owner=ours, runorder=0)

    act(admin_client_for(ours), "increase_priority", [mine])

    mine.refresh_from_db()
    assert mine.runorder == 0  # alone in its team's queue: already first
    assert Job.objects.filter(pk=their_job.pk).values_list("runorder", "updated_at").get() == before
    assert services.job_increase_priority(job=mine).runorder == 0
