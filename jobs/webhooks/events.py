"""Events: one delivery per subscribed webhook, stored in the transaction that makes the event true."""

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from jobs.models import (
    EventKind,
    ExecutionStatus,
    JobExecution,
    Publication,
    PublicationStatus,
    Webhook,
    WebhookDelivery,
)
from jobs.webhooks.delivery import queue_sends

EXECUTION_EVENTS = {
    ExecutionStatus.SUCCESS: EventKind.RENDER_DONE,
    ExecutionStatus.FAILED: EventKind.RENDER_FAILED,
}
PUBLICATION_EVENTS = {
    PublicationStatus.PUBLISHED: EventKind.PUBLISH_DONE,
    PublicationStatus.FAILED: EventKind.PUBLISH_FAILED,
}


def event_record(*, team, kind: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    """Store an event for each of `team`'s webhooks that subscribe to `kind`, in the caller's
    transaction, and send them once it commits. Call it in the transaction that makes the event
    true (e.g. the one finishing an execution): then the event exists exactly when that happened."""
    if kind not in EventKind.values:
        raise ValueError(f"unknown event kind {kind!r}")
    if team is None:  # a shared preset job's events go to nobody's webhooks
        return []
    webhooks = [
        webhook for webhook in Webhook.objects.filter(team=team, is_active=True) if webhook.wants(kind)
    ]
    if not webhooks:
        return []
    now = timezone.now()
    event_id = uuid.uuid4()
    payload = {"id": str(event_id), "type": kind, "created_at": now.isoformat(), "data": data}
    with transaction.atomic():
        deliveries = [
            WebhookDelivery.objects.create(
                webhook=webhook, event_id=event_id, kind=kind, payload=payload, next_attempt_at=now
            )
            for webhook in webhooks
        ]
        ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: queue_sends(ids))
    return deliveries


def execution_event_data(execution: JobExecution) -> dict[str, Any]:
    """A render event's data: the job and the execution as the API names them (results by name:
    their signed links are at GET /api/v1/executions/{id}/)."""
    job = execution.job
    return {
        "job": {"id": job.pk, "title": job.title},
        "execution": {
            "id": execution.pk,
            "status": execution.status,
            "detail": execution.detail,
            "error": execution.error,
            "error_kind": execution.error_kind,
            "attempt": execution.attempt,
            "started_at": execution.started_at.isoformat() if execution.started_at else None,
            "finished_at": execution.finished_at.isoformat() if execution.finished_at else None,
            "results": sorted(execution.results or {}),
        },
    }


def execution_event_record(*, execution: JobExecution) -> list[WebhookDelivery]:
    """render.done or render.failed for a finished execution (nothing for other statuses)."""
    kind = EXECUTION_EVENTS.get(execution.status)
    if kind is None:
        return []
    return event_record(team=execution.job.team, kind=kind, data=execution_event_data(execution))


def publication_event_record(*, publication: Publication) -> list[WebhookDelivery]:
    """publish.done or publish.failed for a finished publication (nothing for other statuses)."""
    kind = PUBLICATION_EVENTS.get(publication.status)
    if kind is None:
        return []
    job = publication.job
    data = {
        "job": {"id": job.pk, "title": job.title},
        "publication": {
            "id": publication.pk,
            "execution_id": publication.execution_id,
            "status": publication.status,
            "video_id": publication.video_id,
            "url": publication.url,
            "privacy": publication.privacy,
            "publish_at": publication.publish_at.isoformat() if publication.publish_at else None,
            "attempts": publication.attempts,
            "error": publication.error,
        },
    }
    return event_record(team=job.team, kind=kind, data=data)
