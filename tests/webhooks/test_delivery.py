"""Render events reach a real receiver signed, once, after the commit; 500s are retried; nothing is lost
when the worker dies between finishing and sending; non-public addresses are refused, also at send time."""

import threading
import time
from datetime import timedelta
from http.server import HTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_q.conf import Conf

from jobs import services
from jobs.models import DeliveryStatus, EventKind, ExecutionStatus, WebhookDelivery
from jobs.render import loop, queue
from jobs.render.steps import Step
from jobs.webhooks import delivery as sending
from jobs.webhooks import events, subscriptions
from media_engine.errors import MediaError
from tests.factories import make_execution, make_job, make_user
from tests.webhooks.conftest import readme_receiver, sweep_and_send

pytestmark = pytest.mark.django_db


def quick_render(monkeypatch, *, fail: bool = False) -> None:
    """Renders of one instant step (the webhook side does not care what the steps make)."""

    def run(context, inputs):
        if fail:
            raise MediaError("the voice backend refused the text", permanent=True)
        return {}, {}

    monkeypatch.setattr(loop, "STEPS", {"narration": Step(100, lambda context: {}, run)})


@pytest.fixture
def owner(db):
    return make_user()


@pytest.fixture
def hook(owner, receiver):
    webhook = subscriptions.webhook_create(user=owner, team=owner.personal_team, url=receiver.url)
    receiver.secret = webhook.secret
    return webhook


def finish_a_render(owner, monkeypatch, *, fail: bool = False):
    quick_render(monkeypatch, fail=fail)
    job = make_job(owner=owner, title="公园散步")
    return loop.execution_run(execution=services.execution_create(job=job))


def test_render_done_is_posted_signed_once_after_the_commit(
    owner, hook, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(Conf, "SYNC", True)  # the queued send runs in this process

    with django_capture_on_commit_callbacks(execute=True):
        execution = finish_a_render(owner, monkeypatch)

    assert execution.status == ExecutionStatus.SUCCESS
    [request] = receiver.requests
    assert request.verified
    event = request.event
    assert event["type"] == EventKind.RENDER_DONE
    assert event["data"]["execution"]["id"] == execution.pk
    assert event["data"]["execution"]["status"] == "SUCCESS"
    assert event["data"]["job"] == {"id": execution.job_id, "title": "公园散步"}
    assert request.headers["X-BatchVideo-Event-Id"] == event["id"]
    assert request.headers["X-BatchVideo-Event"] == "render.done"
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED and str(delivery.event_id) == event["id"]
    assert [(a.status_code, a.error) for a in delivery.attempt_log.all()] == [(200, "")]


def test_a_failed_render_posts_render_failed_with_its_error(owner, hook, receiver, monkeypatch):
    execution = finish_a_render(owner, monkeypatch, fail=True)
    sweep_and_send()

    assert execution.status == ExecutionStatus.FAILED
    [request] = receiver.requests
    assert request.verified and request.event["type"] == "render.failed"
    assert "the voice backend refused the text" in request.event["data"]["execution"]["error"]


def test_no_event_is_lost_when_the_worker_dies_between_finishing_and_sending(
    owner, hook, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    # The execution's outcome and its event commit together; the worker then dies before its
    # after-commit send runs (the callbacks are captured and never run).
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        execution = finish_a_render(owner, monkeypatch)
    assert callbacks and execution.status == ExecutionStatus.SUCCESS
    assert receiver.requests == []
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING

    assert sweep_and_send() == 1
    assert sweep_and_send() == 0  # sent once only

    [request] = receiver.requests
    assert request.verified and request.event["data"]["execution"]["id"] == execution.pk
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_receiver_500s_are_retried_with_the_same_event_until_it_answers_2xx(owner, hook, receiver, settings):
    settings.WEBHOOK_RETRY_BACKOFF_S = 0  # due again at once; the waits themselves are retry_delay_s's
    receiver.statuses = [500, 503]
    [delivery] = events.event_record(
        team=owner.personal_team, kind="render.done", data={"job": {"id": 1, "title": "t"}}
    )

    for _ in range(4):
        sweep_and_send()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 3
    log = list(delivery.attempt_log.order_by("id").values_list("status_code", "error"))
    assert log == [(500, "the receiver answered 500"), (503, "the receiver answered 503"), (200, "")]
    assert len(receiver.requests) == 3 and all(request.verified for request in receiver.requests)
    assert len({request.headers["X-BatchVideo-Event-Id"] for request in receiver.requests}) == 1


def test_a_delivery_fails_for_good_after_the_last_try_and_can_be_sent_again(owner, hook, receiver, settings):
    settings.WEBHOOK_RETRY_BACKOFF_S = 0
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    receiver.statuses = [500, 500]
    [delivery] = events.event_record(team=owner.personal_team, kind="render.failed", data={})
    for _ in range(3):
        sweep_and_send()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and len(receiver.requests) == 2

    sending.delivery_resend(delivery=delivery)
    sweep_and_send()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempt_log.count() == 3
    assert receiver.requests[-1].event == receiver.requests[0].event  # the same event, signed afresh
    assert receiver.requests[-1].verified


def test_retry_waits_double_up_to_an_hour(settings):
    settings.WEBHOOK_RETRY_BACKOFF_S = 30
    assert [sending.retry_delay_s(attempts) for attempts in (1, 2, 3, 10)] == [30, 60, 120, 3600]


def test_a_stale_or_forged_signature_does_not_verify(receiver):
    verify = readme_receiver()["verify"]
    body = b'{"type":"render.done"}'
    now = int(time.time())
    good = sending.signature_header(secret="whsec_a", body=body, timestamp=now)
    assert verify("whsec_a", body, good)
    assert not verify("whsec_b", body, good)
    assert not verify("whsec_a", body + b" ", good)
    stale = sending.signature_header(secret="whsec_a", body=body, timestamp=now - 3600)
    assert not verify("whsec_a", body, stale)
    assert not verify("whsec_a", body, "")


def test_the_readme_receiver_accepts_a_real_delivery(owner, settings, monkeypatch):
    """The README's receiver, unchanged, answers 204 to a real delivery and 400 under another secret."""
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    server = HTTPServer(("127.0.0.1", 0), readme_receiver()["Receiver"])
    settings.WEBHOOK_ALLOWED_PORTS = [server.server_address[1]]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        webhook = subscriptions.webhook_create(
            user=owner, team=owner.personal_team, url=f"http://127.0.0.1:{server.server_address[1]}/"
        )
        monkeypatch.setenv("WEBHOOK_SECRET", webhook.secret)
        [delivery] = events.event_record(team=owner.personal_team, kind="render.done", data={})
        sweep_and_send()
        monkeypatch.setenv("WEBHOOK_SECRET", "whsec_someone-else")
        [forged] = events.event_record(team=owner.personal_team, kind="render.done", data={})
        sweep_and_send()
    finally:
        server.shutdown()
        server.server_close()
    assert delivery.attempt_log.get().status_code == 204
    assert forged.attempt_log.get().status_code == 400


def test_events_go_only_to_the_owners_active_webhooks_that_want_them(owner, receiver):
    other = make_user()
    wanted = subscriptions.webhook_create(
        user=owner, team=owner.personal_team, url=receiver.url, events=["render.failed"]
    )
    subscriptions.webhook_create(
        user=owner, team=owner.personal_team, url=receiver.url, events=["render.done"]
    )
    subscriptions.webhook_create(user=owner, team=owner.personal_team, url=receiver.url, is_active=False)
    subscriptions.webhook_create(user=other, team=other.personal_team, url=receiver.url)

    deliveries = events.event_record(team=owner.personal_team, kind="render.failed", data={})

    assert [delivery.webhook_id for delivery in deliveries] == [wanted.pk]
    assert events.event_record(team=None, kind="render.failed", data={}) == []


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1/hook", "Webhook URL host 127.0.0.1 is a loopback address"),
        ("http://localhost/hook", "resolves to"),
        ("http://10.1.2.3/", "is a private address"),
        ("http://192.168.0.10/", "is a private address"),
        ("http://169.254.169.254/latest/meta-data", "is a link-local address"),
        ("http://[::1]/", "is a loopback address"),
        ("http://[::ffff:10.0.0.1]/", "a private address"),
        ("http://0.0.0.0/", "is a private address"),
        ("http://224.0.0.1/", "is a multicast address"),
        ("http://100.64.0.1/", "is a special-purpose address"),
        ("ftp://example.com/", "must start with http:// or https://, not ftp"),
        ("http://user:pw@8.8.8.8/", "must not hold a user name or password"),
        ("http://[::1/", "Webhook URL is not a valid URL: Invalid IPv6 URL."),
        ("http://8.8.8.8:99999/", "Webhook URL is not a valid URL: Port out of range 0-65535."),
        ("http://8.8.8.8:0/", "Webhook URL port 0 is not allowed"),
        ("http:///path", "Webhook URL has no host."),
        ("http://no-such-host.invalid/", "Webhook URL host no-such-host.invalid cannot be resolved"),
    ],
)
def test_non_public_or_malformed_urls_are_refused_naming_the_problem(owner, settings, url, words):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    with pytest.raises(ValidationError) as refused:
        subscriptions.webhook_create(user=owner, team=owner.personal_team, url=url)
    assert words in " ".join(refused.value.message_dict["url"])


def test_the_address_is_checked_again_when_sending(owner, hook, receiver, settings):
    """A name that later resolves to a refused address (DNS rebinding) gets nothing: checked at send time."""
    [delivery] = events.event_record(team=owner.personal_team, kind="render.done", data={})
    settings.WEBHOOK_ALLOWED_NETWORKS = []

    sweep_and_send()

    delivery.refresh_from_db()
    assert receiver.requests == []
    assert delivery.status == DeliveryStatus.FAILED
    assert "127.0.0.1 is a loopback address" in delivery.attempt_log.get().error


def test_a_delivery_another_sender_holds_is_not_sent_twice(owner, hook, receiver):
    [delivery] = events.event_record(team=owner.personal_team, kind="render.done", data={})
    assert sending._claim(delivery.pk) is not None  # another sender took it and is sending

    assert sweep_and_send() == 0
    assert sending.delivery_send(delivery_id=delivery.pk) is None
    assert receiver.requests == []


@pytest.mark.parametrize("how", ["reset_stuck", "claim"])
def test_a_render_failed_for_good_by_a_dead_worker_posts_render_failed(owner, hook, receiver, how):
    """The last attempt's worker went silent: whoever notices (the reset schedule or another worker's
    claim) fails the execution, and loop.failed is stored in that same transaction."""
    silent = timezone.now() - timedelta(hours=3)
    execution = make_execution(
        make_job(owner=owner),
        status=ExecutionStatus.RUNNING,
        heartbeat_at=silent,
        attempt=queue.attempts_allowed(),
        worker_host="gpu-1",
    )

    if how == "reset_stuck":
        queue.executions_reset_stuck(older_than=timedelta(hours=1))
    else:
        assert not queue.execution_claim(execution=execution)
    sweep_and_send()

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    [request] = receiver.requests
    assert request.verified and request.event["type"] == "render.failed"
    assert "went silent" in request.event["data"]["execution"]["error"]


def test_a_paused_webhook_gets_its_pending_events_once_active_again(owner, hook, receiver):
    [delivery] = events.event_record(team=owner.personal_team, kind="render.done", data={})
    subscriptions.webhook_update(webhook=hook, is_active=False)

    assert sweep_and_send() == 0
    assert sending.delivery_send(delivery_id=delivery.pk) is None  # the after-commit send, too
    assert receiver.requests == []

    subscriptions.webhook_update(webhook=hook, is_active=True)
    assert sweep_and_send() == 1
    assert len(receiver.requests) == 1 and receiver.requests[0].verified
