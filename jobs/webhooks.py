"""Webhooks: a user's URLs that get a signed JSON POST when a render (or, once wired, a publication)
is done or failed, so integrations need not poll.

Nothing is lost between the event and the POST. `event_record` stores one delivery per subscribed
webhook inside the caller's transaction (for renders: the one that finishes the execution,
jobs.render.loop.execution_finish), and only after that commits is a send queued. A worker that dies in
between leaves the delivery PENDING and due; the periodic sweep (jobs.maintenance.schedules.SCHEDULES) sends it.
A sender claims a delivery by moving its `next_attempt_at` past the send's timeout (compare-and-set),
so two senders never send it at once, and one that dies mid-send leaves it due again once that lease
ends: delivery is at least once, and receivers dedupe on the event id.

Signature: `X-BatchVideo-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
A receiver recomputes it over the raw body and refuses stale timestamps, which makes a captured
request useless later (README: "Webhooks").

Addresses: a URL must resolve to public addresses only (no private, loopback, link-local, multicast,
reserved... ones, and none in the IANA special-purpose registries, which this Python's ipaddress
tables do not fully know) unless they lie in settings.WEBHOOK_ALLOWED_NETWORKS; an address that
embeds an IPv4 one (mapped, 6to4, Teredo, NAT64) is refused when that IPv4 address is, even where its
prefix is allowed. Its port must be 80, 443 or one of settings.WEBHOOK_ALLOWED_PORTS. That is checked
when a webhook is saved and again at every send, and the send connects to the very address it checked (no second DNS
lookup a rebinding name could answer differently). Redirects are not followed.

One module, past 500 lines: address checks, webhook rows, events and delivery share the address
rules and the delivery records; its sections are where to split it.
"""

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from jobs.models import (
    DeliveryStatus,
    EventKind,
    ExecutionStatus,
    JobExecution,
    Publication,
    PublicationStatus,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from jobs.workitems import backoff_s

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-BatchVideo-Signature"
EVENT_HEADER = "X-BatchVideo-Event"
EVENT_ID_HEADER = "X-BatchVideo-Event-Id"
USER_AGENT = "BatchVideo-Webhooks/1"
SECRET_PREFIX = "whsec_"
SEND_TASK = "jobs.tasks.webhook_send"
RETRY_MAX_DELAY_S = 3600
RESPONSE_READ_MAX = 64 * 1024  # of a receiver's answer, read and dropped: only its status counts
ERROR_MAX = 1000
# Which address properties refuse a URL, checked in this order (127.0.0.1 is private too: say loopback).
REFUSED_KINDS = ["loopback", "link_local", "private", "multicast", "reserved", "unspecified"]
# The IANA special-purpose address registries, whole, whatever "globally reachable" says for an entry
# (iana-ipv4-special-registry, iana-ipv6-special-registry), and the deprecated IPv6 site-local range.
SPECIAL_PURPOSE_NETWORKS = [
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.31.196.0/24",
        "192.52.193.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "192.175.48.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "100:0:0:1::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "2620:4f:8000::/48",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
    )
]
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
DEFAULT_PORTS = (80, 443)
EXECUTION_EVENTS = {
    ExecutionStatus.SUCCESS: EventKind.RENDER_DONE,
    ExecutionStatus.FAILED: EventKind.RENDER_FAILED,
}
PUBLICATION_EVENTS = {
    PublicationStatus.PUBLISHED: EventKind.PUBLISH_DONE,
    PublicationStatus.FAILED: EventKind.PUBLISH_FAILED,
}


class Refused(ValidationError):
    """A URL that may not be called: bad scheme, no host, or a non-public address."""


# ---------------------------------------------------------------- URLs and addresses


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(network, strict=False) for network in settings.WEBHOOK_ALLOWED_NETWORKS]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a 6to4, Teredo (server and client) or NAT64 address reaches."""
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    if address in NAT64_PREFIX:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


def address_refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a webhook may not call this address ("a private address"), or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_refusal(address.ipv4_mapped)  # ::ffff:10.0.0.1 is 10.0.0.1
        for ipv4 in _embedded_ipv4(address):
            refusal = address_refusal(ipv4)
            if refusal is not None:
                return f"an address that reaches {ipv4}, {refusal}"
    if any(address in network for network in _allowed_networks()):
        return None
    for kind in REFUSED_KINDS:
        if getattr(address, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    if any(address in network for network in SPECIAL_PURPOSE_NETWORKS):
        return "a special-purpose address"
    if not address.is_global:  # e.g. 100.64.0.0/10, the carriers' shared space
        return "an address that is not public"
    return None


def url_addresses(url: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The checked addresses a webhook URL resolves to; Refused names what is wrong with it.
    A name that does not resolve (now) raises OSError."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as error:  # "Invalid IPv6 URL", a port out of range or not a number
        raise Refused(f"Webhook URL is not a valid URL: {error}.", code="invalid") from error
    if parts.scheme not in ("http", "https"):
        raise Refused(
            f"Webhook URL must start with http:// or https://, not {parts.scheme or 'nothing'}.",
            code="invalid",
        )
    if parts.username is not None or parts.password is not None:
        raise Refused(
            "Webhook URL must not hold a user name or password; the signature authenticates.", code="invalid"
        )
    if not host:
        raise Refused("Webhook URL has no host.", code="invalid")
    port = (443 if parts.scheme == "https" else 80) if port is None else port
    if port not in (*DEFAULT_PORTS, *settings.WEBHOOK_ALLOWED_PORTS):
        raise Refused(
            f"Webhook URL port {port} is not allowed: only 80 and 443 (an operator may allow "
            "others with WEBHOOK_ALLOWED_PORTS).",
            code="invalid",
        )
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    for address in addresses:
        refusal = address_refusal(address)
        if refusal is not None:
            literal = str(address) == host.strip("[]")
            what = f"is {refusal}" if literal else f"resolves to {address}, {refusal}"
            raise Refused(
                f"Webhook URL host {host} {what}: only public addresses are allowed "
                "(an operator may allow networks with WEBHOOK_ALLOWED_NETWORKS).",
                code="not_public",
            )
    return addresses


def url_check(url: Any) -> str:
    """A webhook URL that may be saved: http(s), resolving to allowed addresses only. The same
    words for the admin and the API."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("Webhook URL is empty.", code="required")
    url = url.strip()
    try:
        url_addresses(url)
    except Refused:
        raise
    except (OSError, UnicodeError) as error:
        host = urlsplit(url).hostname
        raise ValidationError(
            f"Webhook URL host {host} cannot be resolved: {error}.", code="unresolvable"
        ) from error
    return url


def events_check(events: Any) -> list[str]:
    """Event kinds a webhook subscribes to: a list of known kinds (empty: all of them)."""
    if not isinstance(events, list) or not all(isinstance(kind, str) for kind in events):
        raise ValidationError("Events must be a list of event kinds.", code="invalid")
    unknown = [kind for kind in events if kind not in EventKind.values]
    if unknown:
        known = ", ".join(EventKind.values)
        raise ValidationError(f"Unknown event kind(s) {', '.join(unknown)}; known: {known}.", code="invalid")
    return list(dict.fromkeys(events))


# ---------------------------------------------------------------- webhooks


def secret_new() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def webhook_create(
    *, user, url: str, description: str = "", events: list[str] | None = None, is_active: bool = True
) -> Webhook:
    """A checked webhook of `user`'s with a new secret: the caller shows it to its owner once."""
    webhook = Webhook(owner=user, secret=secret_new(), description=description, is_active=is_active)
    return webhook_update(webhook=webhook, url=url, events=events or [])


def webhook_update(*, webhook: Webhook, **fields: Any) -> Webhook:
    """Change a webhook's url, description, events or is_active; the URL is checked again."""
    checks = {"url": url_check, "events": events_check}
    errors = {}
    for name, value in fields.items():
        try:
            setattr(webhook, name, checks[name](value) if name in checks else value)
        except ValidationError as error:
            errors[name] = error.messages
    if errors:
        raise ValidationError(errors)
    webhook.full_clean(exclude=["owner", "secret"])
    webhook.save()
    return webhook


def webhook_rotate_secret(*, webhook: Webhook) -> str:
    """A new secret for the webhook, returned once; the old one stops verifying at once."""
    webhook.secret = secret_new()
    webhook.save(update_fields=["secret", "updated_at"])
    return webhook.secret


def secret_hint(secret: str) -> str:
    """Enough of a secret to tell which one it is, too little to sign with."""
    return f"{secret[: len(SECRET_PREFIX) + 4]}…" if secret else ""


# ---------------------------------------------------------------- events


def event_record(*, user, kind: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    """Store an event for each of `user`'s webhooks that subscribe to `kind`, in the caller's
    transaction, and send them once it commits. Call it in the transaction that makes the event
    true (e.g. the one finishing an execution): then the event exists exactly when that happened."""
    if kind not in EventKind.values:
        raise ValueError(f"unknown event kind {kind!r}")
    if user is None:
        return []
    webhooks = [
        webhook for webhook in Webhook.objects.filter(owner=user, is_active=True) if webhook.wants(kind)
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
        transaction.on_commit(lambda: _queue_sends(ids))
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
    return event_record(user=execution.job.owner, kind=kind, data=execution_event_data(execution))


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
    return event_record(user=job.owner, kind=kind, data=data)


# ---------------------------------------------------------------- sending


def signature_header(*, secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def payload_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def _queue_sends(delivery_ids: list[int]) -> None:
    """Queue a send per delivery (after the commit). A broker failure loses nothing: the sweep sends them."""
    from django_q.tasks import async_task

    for delivery_id in delivery_ids:
        try:
            async_task(SEND_TASK, delivery_id, cluster=settings.MAINTENANCE_CLUSTER)
        except Exception:  # the broker's own errors vary; the delivery stays due for the sweep
            logger.exception("webhook delivery %s: not queued; the sweep will send it", delivery_id)


def _due() -> Q:
    return Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now())


def deliveries_due() -> QuerySet[WebhookDelivery]:
    """What the sweep sends: due deliveries of active webhooks (a paused one's wait until it is active)."""
    return WebhookDelivery.objects.filter(_due(), webhook__is_active=True).order_by("next_attempt_at", "id")


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """Take a due delivery for this sender until its send must be over (compare-and-set)."""
    lease = timezone.now() + timedelta(seconds=settings.WEBHOOK_TIMEOUT_S + 60)
    if not WebhookDelivery.objects.filter(_due(), pk=delivery_id).update(next_attempt_at=lease):
        return None
    return WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST to the addresses that url_addresses checked, in turn until one connects (never a second
    lookup); TLS still checks the certificate against the URL's host name. The receiver's status."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = urllib3.Timeout(total=settings.WEBHOOK_TIMEOUT_S)
    unreachable: Exception | None = None
    for address in url_addresses(url):
        if parts.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                str(address),
                port,
                timeout=timeout,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                ca_certs=certifi.where(),
                server_hostname=parts.hostname,
                assert_hostname=parts.hostname,
            )
        else:
            pool = urllib3.HTTPConnectionPool(str(address), port, timeout=timeout, retries=False)
        with pool:
            try:
                response = pool.urlopen(
                    "POST",
                    target,
                    body=body,
                    headers={**headers, "Host": parts.netloc},
                    redirect=False,
                    preload_content=False,
                )
            except urllib3.exceptions.NewConnectionError as error:  # e.g. no IPv6 route: the next address
                unreachable = error
                continue
            response.read(RESPONSE_READ_MAX)
            response.release_conn()
            return response.status
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
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
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
        delivery.next_attempt_at = now + timedelta(seconds=retry_delay_s(delivery.attempts))
    delivery.save(update_fields=["attempts", "status", "delivered_at", "next_attempt_at"])
    return delivery


def deliveries_sweep(*, limit: int = 200) -> int:
    """Send the deliveries that are due: retries, and events whose first send was never queued
    (a worker that died after its commit). How many were tried."""
    tried = 0
    for delivery_id in list(deliveries_due().values_list("pk", flat=True)[:limit]):
        if delivery_send(delivery_id=delivery_id) is not None:
            tried += 1
    return tried


def delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again (delivered or failed): the same event id and body, a fresh signature,
    a fresh set of tries; its log keeps the earlier ones."""
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), delivered_at=None
        )
        transaction.on_commit(lambda: _queue_sends([delivery.pk]))
    delivery.refresh_from_db()
    return delivery
