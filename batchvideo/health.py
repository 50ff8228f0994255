"""Health endpoints for load balancers, orchestrators and Prometheus.

/health           the process answers (liveness); open.
/ready            the database answers and every migration is applied (readiness); open; 503 if not.
/health/extended  database, Redis, storage, ffmpeg, queue depth and workers, each with its latency;
                  503 when one of them fails.
/metrics          Prometheus text format (batchvideo.metrics).

The last two say more about the installation (worker host names, errors), so they answer only a
staff user (admin session or API token) or a client that sends the shared secret
settings.HEALTH_TOKEN as `Authorization: Bearer <token>` or `X-Health-Token: <token>`
(Prometheus: `authorization: {credentials: <token>}`). With no HEALTH_TOKEN set, staff only.
What is about executions (running and failing ones, counts, retries) covers every team for a
superuser and the token, and only the teams a staff user is a member of for the rest.
"""

import hmac
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .metrics import REGISTRY, team_registry

FFMPEG_TIMEOUT_S = 5
REDIS_TIMEOUT_S = 2
OK, ERROR, WARNING, NOT_CONFIGURED = "ok", "error", "warning", "not configured"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _health_token() -> str:
    return str(getattr(settings, "HEALTH_TOKEN", os.environ.get("HEALTH_TOKEN", "")) or "")


def _token_offered(request: HttpRequest) -> bool:
    token = _health_token()
    if not token:
        return False
    offered = request.headers.get("X-Health-Token", "")
    authorization = request.headers.get("Authorization", "")
    if authorization.lower().startswith("bearer "):
        offered = offered or authorization[7:].strip()
    return bool(offered) and hmac.compare_digest(offered.encode(), token.encode())


def _staff(request: HttpRequest):
    """The staff user the request is from (admin session or API token), or None."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return user
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.exceptions import AuthenticationFailed

    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    return found[0] if found is not None and found[0].is_staff else None


def _team_scope(request: HttpRequest) -> tuple[bool, list[int] | None]:
    """Whether the request may read these pages, and the teams whose executions it sees (None: all)."""
    if _token_offered(request):
        return True, None
    user = _staff(request)
    if user is None:
        return False, None
    if user.is_superuser:
        return True, None
    from accounts.teams import teams_of

    return True, list(teams_of(user).values_list("pk", flat=True))


def _forbidden() -> JsonResponse:
    return JsonResponse({"detail": "Staff only: log in as staff, or send the health token."}, status=403)


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "timestamp": _now()})


def _pending_migrations() -> list[str]:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


@never_cache
@require_safe
def ready(request: HttpRequest) -> JsonResponse:
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        return JsonResponse(
            {"ready": False, "reason": f"database: {error.__class__.__name__}", "timestamp": _now()},
            status=503,
        )
    try:
        pending = _pending_migrations()
    except Exception as error:
        return JsonResponse(
            {"ready": False, "reason": f"migrations: {error.__class__.__name__}", "timestamp": _now()},
            status=503,
        )
    if pending:
        return JsonResponse(
            {"ready": False, "reason": "unapplied migrations", "pending": pending, "timestamp": _now()},
            status=503,
        )
    return JsonResponse({"ready": True, "timestamp": _now()})


# ---------------------------------------------------------------- extended


def _timed(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as error:  # any failure of a component is its status, never a 500
        result = {"status": ERROR, "error": f"{error.__class__.__name__}: {error}"[:500]}
    result.setdefault("status", OK)
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"vendor": connection.vendor}


def _redis() -> dict[str, Any]:
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return {"status": NOT_CONFIGURED}
    import redis

    client = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
    try:
        client.ping()
    finally:
        client.close()
    return {}


def _storage() -> dict[str, Any]:
    payload = uuid.uuid4().hex.encode()
    name = default_storage.save(f"health/probe-{uuid.uuid4().hex}.txt", ContentFile(payload))
    try:
        with default_storage.open(name, "rb") as handle:
            if handle.read() != payload:
                return {"status": ERROR, "error": "the probe file read back differs"}
    finally:
        default_storage.delete(name)
    return {"backend": default_storage.__class__.__name__}


def _ffmpeg() -> dict[str, Any]:
    from media_engine.ffmpeg import FFMPEG

    completed = subprocess.run(
        [FFMPEG, "-hide_banner", "-version"],
        capture_output=True,
        text=True,
        timeout=FFMPEG_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    if completed.returncode != 0:
        return {"status": ERROR, "error": completed.stderr.strip()[-300:] or f"exit {completed.returncode}"}
    return {"version": (completed.stdout.splitlines() or [""])[0][:200]}


def _queue() -> dict[str, Any]:
    from django.db.models import Count, Min
    from django_q.models import OrmQ

    from jobs.models import ExecutionStatus, JobExecution
    from jobs.render.queue import waiting

    pending = waiting().aggregate(count=Count("id"), oldest=Min("created_at"))
    oldest = pending["oldest"]
    return {
        "pending_executions": pending["count"],
        "delayed_retries": JobExecution.objects.filter(
            status=ExecutionStatus.PENDING, retry_at__gt=timezone.now()
        ).count(),
        "oldest_pending_age_s": round((timezone.now() - oldest).total_seconds(), 1) if oldest else None,
        "broker_tasks": OrmQ.objects.count(),
    }


def _workers(team_ids: list[int] | None = None) -> dict[str, Any]:
    from django_q.status import Stat

    from jobs.maintenance.health import health_report

    report = health_report(team_ids=team_ids)
    running = [
        {
            "execution": item.id,
            "job": item.job_id,
            "worker_host": item.worker_host,
            "heartbeat_age_s": None if item.heartbeat_age_s is None else round(item.heartbeat_age_s, 1),
            "stale": item.stale,
            "attempt": item.attempt,
        }
        for item in report.running[:100]
    ]
    stale = sum(item.stale for item in report.running)
    try:
        clusters = [
            {
                "cluster": str(stat.cluster_id),
                "host": stat.host,
                "status": stat.status,
                "workers": len(stat.workers),
                "uptime_s": round(stat.uptime(), 1),
            }
            for stat in Stat.get_all()
        ]
    except Exception as error:
        clusters = [{"error": f"{error.__class__.__name__}: {error}"[:200]}]
    failing = [
        {
            "execution": item.id,
            "job": item.job_id,
            "status": item.status,
            "attempt": item.attempt,
            "attempts_allowed": item.attempts_allowed,
            "next_attempt_at": item.retry_at.isoformat() if item.retry_at else None,
            "error_kind": item.error_kind,
            "error": item.error[:300],
        }
        for item in report.failing
    ]
    result: dict[str, Any] = {"running": running, "stale": stale, "clusters": clusters, "failing": failing}
    if stale:
        result["status"] = WARNING
        result["error"] = (
            f"{stale} running execution(s) without a heartbeat for over {settings.EXECUTION_STALE_S} s"
        )
    return result


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": _database,
    "redis": _redis,
    "storage": _storage,
    "ffmpeg": _ffmpeg,
    "queue": _queue,
    "workers": _workers,
}


@never_cache
@require_safe
def health_extended(request: HttpRequest) -> JsonResponse:
    allowed, team_ids = _team_scope(request)
    if not allowed:
        return _forbidden()
    checks = {**CHECKS, "workers": partial(_workers, team_ids)}
    components = {name: _timed(check) for name, check in checks.items()}
    statuses = {component["status"] for component in components.values()}
    overall = "error" if ERROR in statuses else "degraded" if WARNING in statuses else "ok"
    return JsonResponse(
        {"status": overall, "timestamp": _now(), "components": components},
        status=503 if overall == "error" else 200,
    )


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    allowed, team_ids = _team_scope(request)
    if not allowed:
        return _forbidden()
    registry = REGISTRY if team_ids is None else team_registry(team_ids)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
