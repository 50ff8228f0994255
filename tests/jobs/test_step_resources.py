"""Steps say what they need (issue 27): a render is a chain of step tasks, each on the cluster that
serves its step's resource (`cpu`, `gpu`); a worker hands the render off at a step it does not
serve and never holds it while it waits. Here the steps are quick fakes and "a worker" is this
process with its `Q_CLUSTER_NAME` (settings) set; the embedded default (both clusters `default`)
is every other render test."""

import json
import os
import signal
import subprocess
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from jobs import services
from jobs.models import ExecutionStatus, JobExecution, Resource
from jobs.render import loop, queue, steps
from tests.factories import make_job, make_preset_job
from tests.jobs.test_faults import WORKER_ENV
from tests.jobs.test_worker_farm_chaos import CLUSTER_ENV, wait_until
from tests.processes import process_env, start, stop

CPU_STEPS = ["narration", "subtitles", "segments"]
GPU_STEPS = ["pictures", "animation"]  # for a job that animates a segment (`animating_job`)
LAST_STEPS = ["compose", "cover"]


class WorkerKilled(BaseException):
    """The worker process dies where this is raised: nothing of the render catches it."""


@pytest.fixture
def farm(settings):
    """A farm: steps needing a CPU on the `default` cluster, model steps on `gpu`."""
    settings.CPU_CLUSTER = "default"
    settings.GPU_CLUSTER = "gpu"


@pytest.fixture
def ran(monkeypatch) -> list[tuple[str, str]]:
    """Quick fake steps; each that runs to its end appends (its name, the cluster it ran on)."""
    finished: list[tuple[str, str]] = []
    for name, step in list(steps.STEPS.items()):

        def run(context, inputs, name=name):
            finished.append((name, queue.own_cluster()))
            return {}, {"ran": name}

        monkeypatch.setitem(
            steps.STEPS,
            name,
            replace(step, inputs=lambda context, name=name: {"step": name}, run=run, restore=None),
        )
    return finished


def animating_job():
    """A job whose `animate` lists a segment: its animation step needs the image-to-video model."""
    return make_job(extra={"animate": [0]})


def as_worker(settings, cluster: str) -> None:
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "cluster_name": cluster}


def render_tasks(cluster: str) -> int:
    return sum(1 for task in OrmQ.objects.filter(key=cluster) if task.func() == queue.RENDER_TASK)


@pytest.mark.django_db
def test_each_step_runs_once_and_only_on_a_worker_serving_its_resource(
    farm, ran, settings, django_capture_on_commit_callbacks
):
    job = animating_job()
    with django_capture_on_commit_callbacks(execute=True):
        execution = services.job_enqueue(job=job)
    assert execution.needs == Resource.CPU and render_tasks("default") == 1 and render_tasks("gpu") == 0

    as_worker(settings, "gpu")
    assert queue.execution_claim_next() is None  # its first step needs a CPU

    as_worker(settings, "default")
    with django_capture_on_commit_callbacks(execute=True):
        first = loop.execution_run_next()
    assert ran == [(name, "default") for name in CPU_STEPS]
    # Handed off: waiting for the gpu cluster, which got a render task; not a failure nor a retry.
    assert (first.status, first.needs, first.handed_off, first.attempt, first.retry_count) == (
        ExecutionStatus.PENDING,
        Resource.GPU,
        True,
        1,
        0,
    )
    assert first.detail == "Waiting for a gpu worker (cluster gpu) for pictures"
    assert first.progress == 30  # narration, subtitles and segments: the progress bar goes on from there
    assert render_tasks("gpu") == 1
    assert queue.execution_claim_next() is None  # a CPU worker does not take what needs the GPU

    as_worker(settings, "gpu")
    with django_capture_on_commit_callbacks(execute=True):
        second = loop.execution_run_next()
    assert second.pk == execution.pk
    assert ran[3:] == [(name, "gpu") for name in GPU_STEPS]
    assert (second.status, second.needs, second.attempt) == (ExecutionStatus.PENDING, Resource.CPU, 1)
    assert render_tasks("default") == 2

    as_worker(settings, "default")
    done = loop.execution_run_next()
    assert ran[5:] == [(name, "default") for name in LAST_STEPS]
    done.refresh_from_db()
    assert (done.status, done.attempt, done.retry_count, done.progress, done.handed_off) == (
        ExecutionStatus.SUCCESS,
        1,
        0,
        100,
        False,
    )
    # Every step ran exactly once, and its record says where and on what.
    assert sorted(ran) == sorted(set(ran)) and len(ran) == len(steps.STEPS)
    for name, record in done.steps.items():
        resource = Resource.GPU if name in GPU_STEPS else Resource.CPU
        cluster = "gpu" if name in GPU_STEPS else "default"
        assert (record["status"], record["resource"], record["cluster"], record["attempt"]) == (
            "done",
            resource,
            cluster,
            1,
        ), name
        assert record["host"]


@pytest.mark.django_db
def test_a_job_that_animates_nothing_spends_one_gpu_task_on_its_pictures_only(
    farm, ran, settings, django_capture_on_commit_callbacks
):
    execution = services.job_enqueue(job=make_job())
    as_worker(settings, "default")
    loop.execution_run_next()

    as_worker(settings, "gpu")
    OrmQ.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        loop.execution_run_next(chained=True)
    execution.refresh_from_db()
    assert ran[3:] == [("pictures", "gpu")]
    # The animation step goes to a CPU worker: no second GPU task for a step with no model to run.
    assert (execution.status, execution.needs, execution.detail) == (
        ExecutionStatus.PENDING,
        Resource.CPU,
        "Waiting for a cpu worker (cluster default) for animation",
    )
    assert render_tasks("default") == 1 and render_tasks("gpu") == 0

    as_worker(settings, "default")
    loop.execution_run_next()
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCESS
    assert (execution.steps["animation"]["resource"], execution.steps["animation"]["cluster"]) == (
        Resource.CPU,
        "default",
    )


@pytest.mark.django_db
def test_a_worker_serving_both_clusters_runs_the_whole_render_without_a_hand_off(ran, settings):
    settings.CPU_CLUSTER = settings.GPU_CLUSTER = "farm"
    as_worker(settings, "farm")
    execution = services.job_enqueue(job=animating_job())

    loop.execution_run_next()

    execution.refresh_from_db()
    assert (execution.status, execution.attempt) == (ExecutionStatus.SUCCESS, 1)
    assert [name for name, _cluster in ran] == list(steps.STEPS)


@pytest.mark.django_db
def test_a_render_task_runs_one_step_and_queues_the_next_on_the_cluster_that_step_needs(
    farm, ran, settings, django_capture_on_commit_callbacks
):
    """The chain of step tasks, as django-q2 runs it: each task one step, no worker holds the render
    between two, and the next task waits on the cluster of the next step."""
    from jobs import tasks

    execution = services.job_enqueue(job=animating_job())
    names = list(steps.STEPS)
    for number, name in enumerate(names):
        cluster = "gpu" if name in GPU_STEPS else "default"
        as_worker(settings, cluster)
        OrmQ.objects.all().delete()
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.run_next_execution() == execution.pk
        execution.refresh_from_db()
        assert ran[-1] == (name, cluster) and len(ran) == number + 1
        if number + 1 < len(names):
            following = "gpu" if names[number + 1] in GPU_STEPS else "default"
            assert (execution.status, execution.handed_off, execution.attempt) == (
                ExecutionStatus.PENDING,
                True,
                1,
            )
            assert (
                render_tasks(following) == 1
                and render_tasks("gpu" if following == "default" else "default") == 0
            )
    assert (execution.status, execution.attempt, execution.retry_count) == (ExecutionStatus.SUCCESS, 1, 0)
    assert [name for name, _cluster in ran] == names


@pytest.mark.django_db
def test_a_gpu_worker_killed_between_two_steps_is_taken_over_from_the_last_finished_step(
    farm, ran, settings, monkeypatch
):
    execution = services.job_enqueue(job=animating_job())
    as_worker(settings, "default")
    loop.execution_run_next()  # narration, subtitles, segments; handed off to the GPU

    # The GPU worker finishes the pictures and dies as the animation starts.
    fake_animation = steps.STEPS["animation"]

    def killed(context, inputs):
        raise WorkerKilled

    monkeypatch.setitem(steps.STEPS, "animation", replace(fake_animation, run=killed))
    as_worker(settings, "gpu")
    with pytest.raises(WorkerKilled):
        loop.execution_run_next()
    execution.refresh_from_db()
    assert (execution.status, execution.needs, execution.attempt) == (
        ExecutionStatus.RUNNING,
        Resource.GPU,
        1,
    )
    assert execution.steps["pictures"]["status"] == "done"
    # The takeover watch is armed on the cluster that can take it over.
    assert Schedule.objects.filter(name=queue.TAKEOVER_WATCH, cluster="gpu").exists()

    # Silent past the stale time: a CPU worker cannot take it over, a GPU worker can.
    monkeypatch.setitem(steps.STEPS, "animation", fake_animation)
    stale = timezone.now() - timedelta(seconds=settings.EXECUTION_STALE_S + 1)
    JobExecution.objects.filter(pk=execution.pk).update(heartbeat_at=stale)
    as_worker(settings, "default")
    assert queue.execution_claim_next() is None
    as_worker(settings, "gpu")
    taken = loop.execution_run_next()
    assert taken.pk == execution.pk
    assert (taken.status, taken.needs, taken.attempt, taken.retry_count) == (
        ExecutionStatus.PENDING,
        Resource.CPU,
        2,  # the takeover is an attempt; the hand-offs were not
        1,
    )
    assert taken.steps["pictures"]["status"] == "reused"  # from the dead worker's attempt, not made again
    assert taken.steps["animation"]["status"] == "done"

    as_worker(settings, "default")
    loop.execution_run_next()
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCESS
    # Nothing rendered twice, nothing lost.
    assert [name for name, _cluster in ran] == list(steps.STEPS)


@pytest.mark.django_db
def test_an_execution_waiting_for_the_other_cluster_is_cancelled_at_once(farm, ran, settings):
    execution = services.job_enqueue(job=animating_job())
    as_worker(settings, "default")
    loop.execution_run_next()

    cancelled = services.execution_cancel(execution=JobExecution.objects.get(pk=execution.pk))

    assert cancelled.status == ExecutionStatus.CANCELLED
    as_worker(settings, "gpu")
    assert queue.execution_claim_next() is None
    assert [name for name, _cluster in ran] == CPU_STEPS


@pytest.mark.django_db
def test_a_cancel_asked_for_during_the_last_step_before_a_hand_off_cancels_instead(
    farm, ran, settings, monkeypatch
):
    execution = services.job_enqueue(job=animating_job())
    fake_segments = steps.STEPS["segments"]

    def cancel_meanwhile(context, inputs):
        JobExecution.objects.filter(pk=context.execution.pk).update(cancel_requested=True)
        return fake_segments.run(context, inputs)

    monkeypatch.setitem(steps.STEPS, "segments", replace(fake_segments, run=cancel_meanwhile))
    as_worker(settings, "default")
    loop.execution_run_next()

    execution.refresh_from_db()
    assert (execution.status, execution.detail) == (ExecutionStatus.CANCELLED, "Cancelled before pictures")


@pytest.mark.django_db
def test_the_wait_for_the_other_cluster_does_not_count_against_the_time_limit(farm, ran, settings):
    settings.EXECUTION_TIME_LIMIT_S = 60
    execution = services.job_enqueue(job=animating_job())
    as_worker(settings, "default")
    loop.execution_run_next()
    # The GPU hosts were busy for ten minutes.
    ten_minutes_ago = timezone.now() - timedelta(minutes=10)
    JobExecution.objects.filter(pk=execution.pk).update(
        started_at=ten_minutes_ago - timedelta(seconds=5), updated_at=ten_minutes_ago
    )

    as_worker(settings, "gpu")
    continued = loop.execution_run_next()

    assert (continued.status, continued.needs, continued.error) == (ExecutionStatus.PENDING, Resource.CPU, "")
    assert [name for name, _cluster in ran] == CPU_STEPS + GPU_STEPS
    assert timedelta(seconds=4) < timezone.now() - continued.started_at < timedelta(seconds=30)


@pytest.mark.processes
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_render_crosses_real_clusters_and_survives_its_cpu_worker_killed_right_after_the_hand_off(
    farm, tmp_path
):
    """Real `qcluster` processes, one per cluster: the CPU worker is killed (kill -9) as soon as it
    has handed the render to the GPU cluster; the GPU worker makes the pictures and hands back; a
    new CPU worker finishes. One attempt, every step run once, each on its own cluster."""
    if connection.vendor != "postgresql":
        pytest.skip("worker processes: needs PostgreSQL")
    env = {**WORKER_ENV, "CPU_CLUSTER": "default", "GPU_CLUSTER": "gpu"}
    logs = [tmp_path / "cpu-1.log", tmp_path / "gpu.log", tmp_path / "cpu-2.log"]

    def cluster(name: str, log: Path) -> subprocess.Popen:
        return start(["manage.py", "qcluster"], process_env(**env, Q_CLUSTER_NAME=name), log)

    def shown() -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in logs if log.exists()
        )

    def wait_for(what: str, timeout: float = 120, **fields) -> JobExecution:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := JobExecution.objects.filter(pk=execution.pk, **fields).first():
                return found
            time.sleep(0.05)
        pytest.fail(f"{what}: not within {timeout} s\n{shown()}")

    execution = services.job_enqueue(job=make_preset_job())
    processes = [cluster("default", logs[0])]
    try:
        wait_for(
            "the hand-off to the GPU", status=ExecutionStatus.PENDING, handed_off=True, needs=Resource.GPU
        )
        os.killpg(processes[0].pid, signal.SIGKILL)  # the CPU worker dies right after its hand-off
        processes[0].wait(10)

        processes.append(cluster("gpu", logs[1]))
        wait_for(
            "the hand-back to the CPU", status=ExecutionStatus.PENDING, handed_off=True, needs=Resource.CPU
        )
        processes.append(cluster("default", logs[2]))
        done = wait_for("the render", status__in=[ExecutionStatus.SUCCESS, ExecutionStatus.FAILED])
    finally:
        for process in processes:
            stop(process)

    assert (done.status, done.attempt, done.retry_count) == (ExecutionStatus.SUCCESS, 1, 0), (
        done.error,
        shown(),
    )
    for name, record in done.steps.items():
        # The job animates nothing: its animation step needs no model, and no GPU task is spent on it.
        cluster_name = "gpu" if name == "pictures" else "default"
        assert (record["status"], record["cluster"]) == ("done", cluster_name), (name, record)
    assert set(done.steps) == set(steps.STEPS)


@pytest.mark.processes
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_chain_of_step_tasks_survives_a_worker_killed_between_two_steps(tmp_path):
    """Two real `qcluster`s; the worker that finished the first step dies (kill -9) before it hands
    the render on. The other takes the render over once it is silent and goes on from there: every
    step run once, the video made."""
    if connection.vendor != "postgresql":
        pytest.skip("worker processes: needs PostgreSQL")
    ran_log = tmp_path / "steps.log"
    faults = {name: {"log": str(ran_log)} for name in steps.STEPS}
    faults["hand_off"] = {"kill_once": str(tmp_path / "killed")}
    env = process_env(**CLUSTER_ENV, FAULTS=json.dumps(faults))
    logs = [tmp_path / f"cluster-{n}.log" for n in range(2)]
    execution = services.job_enqueue(job=make_preset_job())
    processes = [start(["-m", "tests.fault_worker", "qcluster"], env, log) for log in logs]
    try:
        done = wait_until(
            lambda: JobExecution.objects.filter(
                pk=execution.pk, status__in=[ExecutionStatus.SUCCESS, ExecutionStatus.FAILED]
            ).first(),
            timeout=240,
            what="the render",
            logs=logs,
        )
    finally:
        for process in processes:
            stop(process)

    assert (tmp_path / "killed").exists()
    assert (done.status, done.attempt) == (ExecutionStatus.SUCCESS, 2), done.error
    ran = [line.split()[0] for line in ran_log.read_text().splitlines()]
    assert ran == sorted(ran, key=list(steps.STEPS).index)  # in pipeline order
    assert sorted(ran) == sorted(set(ran)), f"a step ran twice: {ran}"
    assert done.steps["narration"]["status"] == "reused" and done.steps["narration"]["attempt"] == 2
    assert all(record["status"] in ("done", "reused") for record in done.steps.values())
