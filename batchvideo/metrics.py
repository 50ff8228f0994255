"""Prometheus metrics: HTTP requests counted by a middleware, and the render queue read from the
database at each scrape (so every web process reports the same queue figures).

HTTP counters are per process: with several server processes, scrape each one, or run
prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR).
"""

import logging
import time
from collections.abc import Callable, Iterator

from django.http import HttpRequest, HttpResponse
from prometheus_client import CollectorRegistry, Counter, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily

logger = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=False)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HTTP_REQUESTS = Counter(
    "batchvideo_http_requests",
    "HTTP requests answered, by method and status code.",
    ["method", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "batchvideo_http_request_duration_seconds",
    "Time to answer an HTTP request, by method.",
    ["method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)


class RequestMetricsMiddleware:
    """Counts every response by method and status, and times it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in METHODS else "OTHER"
        HTTP_REQUESTS.labels(method, str(response.status_code)).inc()
        HTTP_DURATION.labels(method).observe(time.perf_counter() - started)
        return response


def _quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class QueueCollector:
    """Executions by status, queue depth, retries and step durations, from the database; with
    `team_ids`, the executions of those teams only."""

    def __init__(self, team_ids: list[int] | None = None) -> None:
        self.team_ids = team_ids

    def describe(self) -> list[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("batchvideo_queue_metrics_up", "1 when the database answered this scrape.")
        try:
            metrics = list(self._collect())
        except Exception:  # a scrape must answer even when the database does not
            logger.warning("queue metrics unavailable", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        yield from metrics
        up.add_metric([], 1)
        yield up

    def _collect(self) -> Iterator[Metric]:

        from jobs.maintenance import health
        from jobs.render.progress import RECENT_EXECUTIONS

        snapshot = health.metrics_snapshot(team_ids=self.team_ids)
        executions = GaugeMetricFamily(
            "batchvideo_executions", "Executions (renders) by status.", labels=["status"]
        )
        for status, count in snapshot["executions_by_status"].items():
            executions.add_metric([status], count)
        yield executions

        depth = GaugeMetricFamily(
            "batchvideo_queue_depth",
            "Waiting work: executions a worker may take, and tasks in the django-q2 ORM broker.",
            labels=["queue"],
        )
        depth.add_metric(["executions_pending"], snapshot["queue_depth"])
        depth.add_metric(["broker_tasks"], sum(snapshot["orm_queue_depth"].values()))
        yield depth

        yield CounterMetricFamily(
            "batchvideo_execution_retries",
            "Step retries of all stored executions.",
            value=snapshot["retries_total"],
        )

        durations = snapshot["step_durations_s"]
        summary = SummaryMetricFamily(
            "batchvideo_step_duration_seconds",
            f"Durations of pipeline steps that ran (not reused) in the last {RECENT_EXECUTIONS} "
            "successful renders.",
            labels=["step"],
        )
        quantiles = GaugeMetricFamily(
            "batchvideo_step_duration_quantile_seconds",
            f"Median and 95th percentile step durations over the last {RECENT_EXECUTIONS} successful renders.",
            labels=["step", "quantile"],
        )
        for name, values in sorted(durations.items()):
            summary.add_metric([name], count_value=len(values), sum_value=sum(values))
            quantiles.add_metric([name, "0.5"], _quantile(values, 0.5))
            quantiles.add_metric([name, "0.95"], _quantile(values, 0.95))
        yield summary
        yield quantiles


REGISTRY.register(QueueCollector())


def team_registry(team_ids: list[int]) -> CollectorRegistry:
    """The queue figures of `team_ids`' executions only (what a staff user of those teams sees); the
    process's HTTP counters are the installation's and stay out."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(team_ids))
    return registry
