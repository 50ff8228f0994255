"""Sending a delivery: signed, to the address that was checked, one sender at a time, retried with
back-off until it is delivered or out of tries.

A sender claims a delivery by moving its `next_attempt_at` past the send's timeout (compare-and-set),
so two senders never send it at once, and one that dies mid-send leaves it due again once that lease
ends. Redirects are not followed.
"""

import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from urllib3.connection import HTTPConnection, HTTPSConnection

from jobs.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from jobs.webhooks.addresses import Refused, url_addresses
from jobs.workitems import WorkKind, backoff_s

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-BatchVideo-Signature"
EVENT_HEADER = "X-BatchVideo-Event"
EVENT_ID_HEADER = "X-BatchVideo-Event-Id"
USER_AGENT = "BatchVideo-Webhooks/1"
SEND_TASK = "jobs.tasks.webhook_send"
RETRY_MAX_DELAY_S = 3600
RESPONSE_READ_MAX = 64 * 1024  # of a receiver's answer, read and dropped: only its status counts
ERROR_MAX = 1000


def signature_header(*, secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def payload_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def _due() -> Q:
    """PENDING and its next try's time has come."""
    return Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now())


def _stale() -> Q:
    """SENDING past its sender's lease: the sender died mid-send."""
    return Q(status=DeliveryStatus.SENDING, next_attempt_at__lte=timezone.now())


DELIVERIES = WorkKind(
    name="webhook delivery",
    model=WebhookDelivery,
    task=SEND_TASK,
    cluster_setting="IO_CLUSTER",
    due=_due,
    stale=_stale,
)


def queue_sends(delivery_ids: list[int]) -> None:
    """Queue a send per delivery (after the commit). A broker failure loses nothing: the sweep sends them."""
    for delivery_id in delivery_ids:
        DELIVERIES.wake(delivery_id)


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """Take a due delivery for this sender until its send must be over (compare-and-set)."""
    lease = timezone.now() + timedelta(seconds=settings.WEBHOOK_TIMEOUT_S + 60)
    if not DELIVERIES.claim(delivery_id, status=DeliveryStatus.SENDING, next_attempt_at=lease):
        return None
    return WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)


def _connection(parts, address, port: int, timeout: float) -> HTTPConnection:
    if parts.scheme == "https":
        return HTTPSConnection(
            str(address),
            port,
            timeout=timeout,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=parts.hostname,
            assert_hostname=parts.hostname,
        )
    return HTTPConnection(str(address), port, timeout=timeout)


def _cut(connection: HTTPConnection) -> None:
    """End a send that ran past its deadline: a blocked read in the sending thread returns at once."""
    try:
        connection.sock.shutdown(socket.SHUT_RDWR)
    except (AttributeError, OSError):  # not connected yet, or already closed
        pass


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST to the addresses that url_addresses checked, in turn until one connects (never a second
    lookup); TLS still checks the certificate against the URL's host name. The receiver's status.

    One deadline, WEBHOOK_TIMEOUT_S, bounds the whole send: connecting, sending, the answer's headers
    and body together; a receiver that answers a byte at a time is cut off at it."""
    deadline = time.monotonic() + settings.WEBHOOK_TIMEOUT_S
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    unreachable: Exception | None = None
    for address in url_addresses(url):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        connection = _connection(parts, address, port, remaining)
        cutoff = threading.Timer(remaining, _cut, [connection])
        cutoff.start()
        try:
            try:
                connection.connect()
            except urllib3.exceptions.NewConnectionError as error:  # e.g. no IPv6 route: the next address
                unreachable = error
                continue
            connection.request("POST", target, body=body, headers={**headers, "Host": parts.netloc})
            response = connection.getresponse()
            response.read(RESPONSE_READ_MAX)
            return response.status
        except (OSError, urllib3.exceptions.HTTPError) as error:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"the receiver took longer than {settings.WEBHOOK_TIMEOUT_S:g} s "
                    "(connecting, sending and its answer together)"
                ) from error
            raise
        finally:
            cutoff.cancel()
            connection.close()
    if time.monotonic() >= deadline:
        raise TimeoutError(f"no address of {parts.hostname} answered within {settings.WEBHOOK_TIMEOUT_S:g} s")
    raise unreachable or OSError(f"no address of {parts.hostname} to connect to")


def retry_delay_s(attempts: int) -> float:
    """Wait before try attempts+1: WEBHOOK_RETRY_BACKOFF_S, doubling, at most an hour."""
    return backoff_s(settings.WEBHOOK_RETRY_BACKOFF_S, attempts, max_s=RETRY_MAX_DELAY_S)


def delivery_send(*, delivery_id: int) -> WebhookDelivery | None:
    """One try at a due delivery, logged; None when it is not due (sent, or another sender holds it)
    or its webhook is paused.
    A 2xx answer delivers it; anything else is retried later until WEBHOOK_MAX_ATTEMPTS; a URL that
    now resolves to a refused address fails it at once."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    webhook = delivery.webhook
    if not webhook.is_active:  # paused since: due again, for when it is active
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING, next_attempt_at=timezone.now()
        )
        return None
    body = payload_body(delivery.payload)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: delivery.kind,
        EVENT_ID_HEADER: str(delivery.event_id),
        SIGNATURE_HEADER: signature_header(secret=webhook.secret, body=body, timestamp=timestamp),
    }
    status_code, error, refused = None, "", False
    clock = time.monotonic()
    try:
        status_code = _post(webhook.url, body, headers)
        if not 200 <= status_code < 300:
            error = f"the receiver answered {status_code}"
    except Refused as refusal:
        error, refused = " ".join(refusal.messages), True
    except (OSError, urllib3.exceptions.HTTPError, UnicodeError) as failure:
        error = f"{type(failure).__name__}: {failure}"
    duration_ms = round((time.monotonic() - clock) * 1000)
    return _delivery_outcome(
        delivery, status_code=status_code, error=error[:ERROR_MAX], refused=refused, duration_ms=duration_ms
    )


@transaction.atomic
def _delivery_outcome(
    delivery: WebhookDelivery, *, status_code: int | None, error: str, refused: bool, duration_ms: int
) -> WebhookDelivery:
    WebhookAttempt.objects.create(
        delivery=delivery, status_code=status_code, error=error, duration_ms=duration_ms
    )
    delivery.attempts += 1
    now = timezone.now()
    if not error:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = DeliveryStatus.DELIVERED, now, None
    elif refused or delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        logger.warning(
            "webhook delivery %s failed for good after %s tries: %s", delivery.pk, delivery.attempts, error
        )
    else:
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = now + timedelta(seconds=retry_delay_s(delivery.attempts))
        retry = (delivery.pk, delivery.next_attempt_at)
        transaction.on_commit(lambda: DELIVERIES.wake(retry[0], when=retry[1]))
    delivery.save(update_fields=["attempts", "status", "delivered_at", "next_attempt_at"])
    return delivery


def deliveries_sweep(*, limit: int = 200) -> int:
    """Wake the senders of due deliveries of active webhooks (a paused one's wait until it is active):
    retries whose wake-up was lost, and events whose first send was never queued (a worker that died
    after its commit). How many were woken."""
    return DELIVERIES.sweep(quiet=Q(webhook__is_active=True), limit=limit)


def delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again (delivered, failed or waiting for a retry): the same event id and body,
    a fresh signature, a fresh set of tries; its log keeps the earlier ones. A delivery being sent
    right now is refused: it keeps its one sender."""
    with transaction.atomic():
        being_sent = Q(status=DeliveryStatus.SENDING, next_attempt_at__gt=timezone.now())
        resent = (
            WebhookDelivery.objects.filter(pk=delivery.pk)
            .exclude(being_sent)
            .update(
                status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), delivered_at=None
            )
        )
        if not resent:
            raise ValidationError(
                f"Delivery {delivery.pk} is being sent right now; send it again once this try is over.",
                code="busy",
            )
        transaction.on_commit(lambda: queue_sends([delivery.pk]))
    delivery.refresh_from_db()
    return delivery
