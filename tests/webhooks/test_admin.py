"""Webhooks in the admin: the secret shown once on creation, the API's refusals in the same words,
deliveries with their tries re-sendable, and nothing of someone else's visible or re-sendable."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse

from jobs.models import DeliveryStatus, Webhook, WebhookDelivery
from jobs.webhooks import events, subscriptions
from tests.admin.conftest import client_for
from tests.factories import make_user
from tests.webhooks.conftest import sweep_and_send

pytestmark = pytest.mark.django_db

MODELS = ["webhook", "webhookdelivery"]


def make_operator():
    user = make_user(is_staff=True)
    codenames = [f"{action}_{model}" for model in MODELS for action in ("view", "add", "change", "delete")]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def operator(db):
    return make_operator()


@pytest.fixture
def other_operator(db):
    return make_operator()


def add_form(url: str) -> dict:
    return {"url": url, "description": "CI", "events": ["render.done", "render.failed"], "is_active": "on"}


def test_adding_a_webhook_shows_its_secret_once(operator, receiver):
    client = client_for(operator)

    response = client.post(reverse("admin:jobs_webhook_add"), add_form(receiver.url))

    webhook = Webhook.objects.get()
    assert webhook.owner == operator and webhook.events == ["render.done", "render.failed"]
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert f'<code class="webhook-secret">{webhook.secret}</code>' in response.content.decode()
    assert webhook.secret not in str(list(get_messages(response.wsgi_request)))  # kept nowhere else
    page = client.get(reverse("admin:jobs_webhook_change", args=[webhook.pk])).content.decode()
    listing = client.get(reverse("admin:jobs_webhook_changelist")).content.decode()
    assert webhook.secret not in page + listing
    assert subscriptions.secret_hint(webhook.secret) in listing


def test_rotating_a_secret_shows_the_new_one_once(operator, receiver):
    webhook = subscriptions.webhook_create(user=operator, team=operator.personal_team, url=receiver.url)
    old_secret = webhook.secret

    response = client_for(operator).post(
        reverse("admin:jobs_webhook_changelist"),
        {"action": "rotate_secret", "_selected_action": [webhook.pk]},
    )

    webhook.refresh_from_db()
    assert webhook.secret != old_secret
    assert f'<code class="webhook-secret">{webhook.secret}</code>' in response.content.decode()


def test_the_admin_refuses_a_private_url_in_the_apis_words(operator, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []

    response = client_for(operator).post(reverse("admin:jobs_webhook_add"), add_form("http://172.16.0.9/x"))

    assert response.status_code == 200 and not Webhook.objects.exists()
    assert (
        "Webhook URL host 172.16.0.9 is a private address: only public addresses are allowed"
        in response.content.decode()
    )


def test_resend_from_the_admin_delivers_again(operator, receiver, django_capture_on_commit_callbacks):
    webhook = subscriptions.webhook_create(user=operator, team=operator.personal_team, url=receiver.url)
    receiver.secret = webhook.secret
    [delivery] = events.event_record(team=operator.personal_team, kind="render.failed", data={})
    sweep_and_send()
    client = client_for(operator)

    page = client.get(reverse("admin:jobs_webhookdelivery_change", args=[delivery.pk])).content.decode()
    response = client.post(
        reverse("admin:jobs_webhookdelivery_changelist"),
        {"action": "resend", "_selected_action": [delivery.pk]},
        follow=True,
    )
    sweep_and_send()

    assert response.status_code == 200 and "200" in page  # the first try's status, on the delivery's page
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempt_log.count() == 2
    assert len(receiver.requests) == 2 and all(request.verified for request in receiver.requests)


def test_another_operator_cannot_see_change_or_resend_someones_webhooks(operator, other_operator, receiver):
    webhook = subscriptions.webhook_create(user=operator, team=operator.personal_team, url=receiver.url)
    [delivery] = events.event_record(team=operator.personal_team, kind="render.done", data={})
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)
    client = client_for(other_operator)

    listing = client.get(reverse("admin:jobs_webhook_changelist")).content.decode()
    deliveries = client.get(reverse("admin:jobs_webhookdelivery_changelist")).content.decode()
    change = client.get(reverse("admin:jobs_webhook_change", args=[webhook.pk]))
    delivery_page = client.get(reverse("admin:jobs_webhookdelivery_change", args=[delivery.pk]))
    client.post(
        reverse("admin:jobs_webhookdelivery_changelist"),
        {"action": "resend", "_selected_action": [delivery.pk]},
    )
    client.post(
        reverse("admin:jobs_webhook_changelist"),
        {"action": "rotate_secret", "_selected_action": [webhook.pk]},
    )

    assert receiver.url not in listing and str(delivery.event_id) not in deliveries
    # "doesn't exist": back to the admin's index
    assert change.status_code == 302 and delivery_page.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert Webhook.objects.get().secret == webhook.secret


def test_superusers_see_every_webhook(superuser, operator, receiver):
    subscriptions.webhook_create(user=operator, team=operator.personal_team, url=receiver.url)

    listing = client_for(superuser).get(reverse("admin:jobs_webhook_changelist")).content.decode()

    assert "127.0.0.1" in listing
