"""`benchmark farm` at tiny sizes, end to end: real qcluster hosts pinned to the two cores, the moto S3
server, the tiny Flux model and a local webhook receiver. Its figures must be what the step records
and the receiver say, and it must leave nothing behind."""

import math

import psutil
import pytest
from django.db import connection
from django_q.models import OrmQ

from jobs.benchmarks import farm
from jobs.models import Job, Resource
from jobs.records import step_record

pytestmark = [pytest.mark.processes, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def finished(monkeypatch) -> list[list]:
    """The executions every round of the benchmark waited for, as it read them when they were done."""
    rounds: list[list] = []
    wait = farm.Farm.wait

    def recording(self, *args, **kwargs):
        rows = wait(self, *args, **kwargs)
        rounds.append(rows)
        return rows

    monkeypatch.setattr(farm.Farm, "wait", recording)
    return rounds


def test_the_farm_benchmark_measures_its_hosts_and_leaves_nothing_behind(finished, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the farm benchmark needs PostgreSQL")
    monkeypatch.setenv("VIDEO_PRESET", "ultrafast")  # the hosts inherit it

    result = farm.farm_benchmark(
        minutes=0.2, gpu_jobs=1, webhook_renders=3, webhook_events=2, claimers=4, claims=40, timeout_s=120
    )

    line = farm.format_farm_line(result)
    figures = dict(pair.split("=") for pair in line.split())
    assert set(figures) == {
        "fanout_speedup",
        "gpu_share",
        "gpu_share_whole_render",
        "webhook_wait_p50_s",
        "webhook_wait_p95_s",
        "claims_per_s",
    }
    assert all(math.isfinite(float(value)) for value in figures.values())

    # Rounds: the untimed render, the compositions on one host and on two, then the two GPU batches.
    untimed, [one], [two], split, whole = finished
    for execution, seconds in ((one, result["fanout_compose_1_s"]), (two, result["fanout_compose_2_s"])):
        compose = step_record(execution.steps, "compose")
        assert compose.status == "done" and compose.chunks["reused"] == 0 and compose.chunks["total"] > 0
        assert float(compose.raw["duration_s"]) == seconds > 0
        # Everything before composition was reused from the untimed render.
        assert step_record(execution.steps, "narration").status == "reused"
    assert result["fanout_speedup"] == pytest.approx(
        result["fanout_compose_1_s"] / result["fanout_compose_2_s"]
    )

    # Steps split: the gpu host ran the pictures and nothing that needs a CPU; it was busy at least
    # as long as its steps took, and its share is its gpu steps' seconds over that.
    done = [
        record for execution in split for record in execution.steps.values() if record["status"] == "done"
    ]
    for record in done:
        assert record["cluster"] == (farm.GPU if record["resource"] == Resource.GPU else farm.CPU)
    assert step_record(split[0].steps, "pictures").raw["cluster"] == farm.GPU
    gpu_s = sum(record["duration_s"] for record in done if record["resource"] == Resource.GPU)
    assert result["gpu_share_busy_s"] >= gpu_s > 0
    assert result["gpu_share"] == pytest.approx(gpu_s / result["gpu_share_busy_s"])
    assert 0 < result["gpu_share"] <= 1
    # The whole render on the gpu host: every step there, the pictures a smaller part of its time.
    done = [
        record for execution in whole for record in execution.steps.values() if record["status"] == "done"
    ]
    assert {record["cluster"] for record in done} == {farm.GPU}
    gpu_s = sum(record["duration_s"] for record in done if record["resource"] == Resource.GPU)
    all_s = sum(record["duration_s"] for record in done)
    assert result["gpu_share_whole_render_busy_s"] >= all_s > gpu_s > 0
    assert result["gpu_share_whole_render"] == pytest.approx(gpu_s / result["gpu_share_whole_render_busy_s"])

    assert result["webhook_events"] == 2
    assert 0 < result["webhook_wait_p50_s"] <= result["webhook_wait_p95_s"] < 60
    assert result["claims_per_s"] > 0

    assert not Job.objects.filter(title__startswith=farm.TITLE).exists()
    assert not OrmQ.objects.filter(key__in=[farm.CPU, farm.GPU, farm.IO]).exists()
    assert not [child for child in psutil.Process().children(recursive=True) if "qcluster" in child.cmdline()]
