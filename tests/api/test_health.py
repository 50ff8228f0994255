import json

from django.test import Client

from batchvideo import health
from jobs.models import ExecutionStatus
from tests.api.conftest import client_for
from tests.factories import make_execution, make_job, make_user


def test_health_is_open_and_cheap(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_ready_when_the_database_is_migrated(client, db):
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["ready"] is True


def test_not_ready_with_unapplied_migrations(client, db, monkeypatch):
    monkeypatch.setattr(health, "_pending_migrations", lambda: ["jobs.0099_new"])
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["pending"] == ["jobs.0099_new"]


def test_not_ready_without_a_database(client, db, monkeypatch):
    def broken():
        raise OSError("connection refused")

    with monkeypatch.context() as patch:  # undone before the database fixture's teardown needs it
        patch.setattr(health.connection, "ensure_connection", broken)
        response = client.get("/ready")
    assert response.status_code == 503 and response.json()["ready"] is False


def test_extended_health_is_for_staff_or_the_health_token(client, db, settings):
    assert client.get("/health/extended").status_code == 403
    member = make_user()
    assert client_for(member).get("/health/extended").status_code == 403
    assert client_for(make_user(is_staff=True)).get("/health/extended").status_code == 200
    settings.HEALTH_TOKEN = "s3cret"
    assert client.get("/health/extended", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
    assert client.get("/health/extended", HTTP_X_HEALTH_TOKEN="s3cret").status_code == 200
    assert client.get("/health/extended", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


def test_extended_health_reports_each_component(client, db, settings):
    settings.HEALTH_TOKEN = "t"
    job = make_job()
    make_execution(job, status=ExecutionStatus.PENDING)
    response = client.get("/health/extended", HTTP_X_HEALTH_TOKEN="t")
    assert response.status_code == 200
    body = response.json()
    components = body["components"]
    assert set(components) == {"database", "redis", "storage", "ffmpeg", "queue", "workers"}
    assert components["database"]["status"] == "ok"
    assert components["redis"]["status"] == ("not configured" if not settings.REDIS_URL else "ok")
    assert components["storage"]["status"] == "ok"
    assert components["ffmpeg"]["status"] == "ok" and "ffmpeg" in components["ffmpeg"]["version"]
    assert components["queue"]["pending_executions"] == 1
    assert all("latency_ms" in component for component in components.values())
    assert body["status"] == "ok"


def test_extended_health_fails_with_a_broken_component(client, db, settings, monkeypatch):
    settings.HEALTH_TOKEN = "t"
    monkeypatch.setattr("media_engine.ffmpeg.FFMPEG", "/nonexistent/ffmpeg")
    response = client.get("/health/extended", HTTP_X_HEALTH_TOKEN="t")
    assert response.status_code == 503
    assert response.json()["components"]["ffmpeg"]["status"] == "error"


def test_stale_workers_make_it_degraded(client, db, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.HEALTH_TOKEN = "t"
    make_execution(
        make_job(),
        status=ExecutionStatus.RUNNING,
        worker_host="gpu-1",
        heartbeat_at=timezone.now() - timedelta(seconds=settings.EXECUTION_STALE_S + 60),
    )
    body = client.get("/health/extended", HTTP_X_HEALTH_TOKEN="t").json()
    assert body["status"] == "degraded"
    assert body["components"]["workers"]["running"][0]["worker_host"] == "gpu-1"
    assert body["components"]["workers"]["running"][0]["stale"] is True


def test_extended_health_lists_failing_executions_with_attempts_and_the_last_error(client, db, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.HEALTH_TOKEN = "t"
    execution = make_execution(
        make_job(),
        status=ExecutionStatus.PENDING,
        attempt=2,
        error_kind="transient",
        retry_at=timezone.now() + timedelta(seconds=120),
        error="compose failed: busy",
    )
    body = client.get("/health/extended", HTTP_X_HEALTH_TOKEN="t").json()
    assert body["components"]["queue"]["delayed_retries"] == 1
    [failing] = body["components"]["workers"]["failing"]
    assert failing["execution"] == execution.pk
    assert (failing["attempt"], failing["attempts_allowed"], failing["error_kind"], failing["error"]) == (
        2,
        1 + settings.EXECUTION_MAX_RETRIES,
        "transient",
        "compose failed: busy",
    )
    assert failing["next_attempt_at"] == execution.retry_at.isoformat()


def test_metrics_in_prometheus_format(db, settings):
    settings.HEALTH_TOKEN = "t"
    settings.MIDDLEWARE = ["batchvideo.metrics.RequestMetricsMiddleware", *settings.MIDDLEWARE]
    job = make_job()
    make_execution(
        job,
        status=ExecutionStatus.SUCCESS,
        retry_count=2,
        steps={"compose": {"status": "done", "duration_s": 4.0}},
        finished_at="2025-01-01T00:00:00Z",
    )
    make_execution(job, status=ExecutionStatus.PENDING)
    client = Client(HTTP_AUTHORIZATION="Bearer t")
    assert Client().get("/metrics").status_code == 403
    client.get("/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'batchvideo_http_requests_total{method="GET",status="200"}' in text
    assert 'batchvideo_executions{status="SUCCESS"} 1.0' in text
    assert 'batchvideo_queue_depth{queue="executions_pending"} 1.0' in text
    assert "batchvideo_execution_retries_total 2.0" in text
    assert 'batchvideo_step_duration_seconds_sum{step="compose"} 4.0' in text
    assert "batchvideo_queue_metrics_up 1.0" in text


def _failed_render(owner, error: str):
    from django.utils import timezone

    return make_execution(
        make_job(owner=owner),
        status=ExecutionStatus.FAILED,
        error=error,
        error_kind="permanent",
        retry_count=3,
        finished_at=timezone.now(),
    )


def test_staff_of_one_team_see_only_their_teams_failing_executions_in_extended_health(db):
    """Staff of team A asking /health/extended: team B's errors are not theirs to read; a superuser
    sees both."""
    staff_a, member_b = make_user(is_staff=True), make_user()
    ours = _failed_render(staff_a, "ours: compose failed")
    theirs = _failed_render(member_b, "theirs: https://b.example/secret-bucket refused")

    body = client_for(staff_a).get("/health/extended").json()

    failing = body["components"]["workers"]["failing"]
    assert [item["execution"] for item in failing] == [ours.pk]
    assert "secret-bucket" not in json.dumps(body)
    everyone = client_for(make_user(is_staff=True, is_superuser=True)).get("/health/extended").json()
    assert {item["execution"] for item in everyone["components"]["workers"]["failing"]} == {
        ours.pk,
        theirs.pk,
    }


def test_staff_of_one_team_get_only_their_teams_execution_figures_from_metrics(db):
    staff_a, member_b = make_user(is_staff=True), make_user()
    _failed_render(staff_a, "ours")
    for _ in range(3):
        _failed_render(member_b, "theirs")

    text = client_for(staff_a).get("/metrics").content.decode()

    assert 'batchvideo_executions{status="FAILED"} 1.0' in text
    assert "batchvideo_execution_retries_total 3.0" in text
    everyone = client_for(make_user(is_staff=True, is_superuser=True)).get("/metrics").content.decode()
    assert 'batchvideo_executions{status="FAILED"} 4.0' in everyone
