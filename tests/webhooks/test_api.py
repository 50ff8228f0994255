"""Webhooks over the API: each user's own, the secret shown once, the same refusals as the admin;
deliveries listed and re-sent by their webhook's owner only."""

import pytest
from django.core.cache import cache

from jobs.models import DeliveryStatus, Webhook, WebhookDelivery
from jobs.webhooks import events, subscriptions
from tests.api.conftest import client_for
from tests.factories import make_user
from tests.webhooks.conftest import sweep_and_send

WEBHOOKS = "/api/v1/webhooks/"
DELIVERIES = "/api/v1/webhook-deliveries/"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_throttles():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def member(db):
    return make_user()


@pytest.fixture
def api(member):
    return client_for(member)


@pytest.fixture
def stranger_api(db):
    return client_for(make_user())


def test_create_shows_the_secret_once(api, member, receiver):
    response = api.post(WEBHOOKS, {"url": receiver.url, "events": ["render.done"]}, format="json")

    assert response.status_code == 201, response.data
    webhook = Webhook.objects.get(owner=member)
    assert response.data["secret"] == webhook.secret and webhook.secret.startswith("whsec_")
    assert response.data["events"] == ["render.done"]
    shown = api.get(f"{WEBHOOKS}{webhook.pk}/").data
    listed = api.get(WEBHOOKS).data["results"]
    assert "secret" not in shown and [row["id"] for row in listed] == [webhook.pk]
    assert webhook.secret not in str(shown) + str(listed)
    assert shown["secret_hint"] == webhook.secret[:10] + "…"


def test_rotate_secret_gives_a_new_one_once(api, member, receiver):
    webhook = subscriptions.webhook_create(user=member, team=member.personal_team, url=receiver.url)

    response = api.post(f"{WEBHOOKS}{webhook.pk}/rotate_secret/")

    webhook.refresh_from_db()
    assert response.status_code == 200 and response.data == {"secret": webhook.secret}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://10.0.0.5/hook",
            "Webhook URL host 10.0.0.5 is a private address: only public addresses are "
            "allowed (an operator may allow networks with WEBHOOK_ALLOWED_NETWORKS).",
        ),
        ("gopher://8.8.8.8/", "Webhook URL must start with http:// or https://, not gopher."),
    ],
)
def test_private_and_odd_urls_are_refused_with_a_clear_message(api, settings, url, message):
    settings.WEBHOOK_ALLOWED_NETWORKS = []

    response = api.post(WEBHOOKS, {"url": url}, format="json")

    assert response.status_code == 400 and response.data == {"url": [message]}
    assert not Webhook.objects.exists()


def test_unknown_event_kinds_are_refused(api, receiver):
    response = api.post(WEBHOOKS, {"url": receiver.url, "events": ["render.exploded"]}, format="json")

    assert response.status_code == 400 and "events" in response.data


def test_update_checks_the_url_again(api, member, receiver, settings):
    webhook = subscriptions.webhook_create(user=member, team=member.personal_team, url=receiver.url)

    paused = api.patch(f"{WEBHOOKS}{webhook.pk}/", {"is_active": False}, format="json")
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    moved = api.patch(f"{WEBHOOKS}{webhook.pk}/", {"url": "http://192.168.1.1/"}, format="json")

    webhook.refresh_from_db()
    assert paused.status_code == 200 and paused.data["is_active"] is False
    assert moved.status_code == 400 and "is a private address" in moved.data["url"][0]
    assert webhook.url == receiver.url and webhook.is_active is False


def test_another_user_cannot_see_change_delete_or_resend_someones_webhooks(stranger_api, member, receiver):
    webhook = subscriptions.webhook_create(user=member, team=member.personal_team, url=receiver.url)
    [delivery] = events.event_record(team=member.personal_team, kind="render.done", data={})
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)

    assert stranger_api.get(WEBHOOKS).data["results"] == []
    assert stranger_api.get(f"{WEBHOOKS}{webhook.pk}/").status_code == 404
    moved = stranger_api.patch(f"{WEBHOOKS}{webhook.pk}/", {"url": "http://8.8.8.8/"}, format="json")
    assert moved.status_code == 404
    assert stranger_api.post(f"{WEBHOOKS}{webhook.pk}/rotate_secret/").status_code == 404
    assert stranger_api.delete(f"{WEBHOOKS}{webhook.pk}/").status_code == 404
    assert stranger_api.get(DELIVERIES).data["results"] == []
    assert stranger_api.post(f"{DELIVERIES}{delivery.pk}/resend/").status_code == 404
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and Webhook.objects.filter(pk=webhook.pk).exists()


def test_owner_lists_deliveries_with_their_tries_and_resends_one(
    api, member, receiver, django_capture_on_commit_callbacks
):
    webhook = subscriptions.webhook_create(user=member, team=member.personal_team, url=receiver.url)
    receiver.secret = webhook.secret
    receiver.statuses = [500]
    [delivery] = events.event_record(
        team=member.personal_team, kind="render.done", data={"job": {"id": 1, "title": "t"}}
    )
    sweep_and_send()

    listed = api.get(DELIVERIES, {"webhook": webhook.pk}).data["results"]
    with django_capture_on_commit_callbacks(execute=False):
        resent = api.post(f"{DELIVERIES}{delivery.pk}/resend/")
    sweep_and_send()

    assert [row["id"] for row in listed] == [delivery.pk]
    assert listed[0]["attempt_log"][0]["status_code"] == 500 and listed[0]["payload"]["type"] == "render.done"
    assert resent.status_code == 202 and resent.data["status"] == "pending"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and receiver.requests[-1].verified


def test_the_schema_documents_the_new_endpoints_and_the_event_body(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    for path in (
        "/api/v1/webhooks/",
        "/api/v1/webhooks/{id}/rotate_secret/",
        "/api/v1/webhook-deliveries/",
        "/api/v1/webhook-deliveries/{id}/resend/",
        "/api/v1/jobs/batch/",
    ):
        assert path in schema["paths"], path
    event = schema["components"]["schemas"]["WebhookEvent"]
    assert set(event["properties"]) == {"id", "type", "created_at", "data"}
    assert "render" in schema["components"]["schemas"]["JobCreate"]["properties"]
    assert "X-BatchVideo-Signature" in schema["paths"]["/api/v1/webhooks/"]["post"]["description"]
    for kind in ("render.done", "render.failed", "publish.done", "publish.failed"):
        body = schema["x-webhooks"][kind]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/WebhookEvent"}


@pytest.mark.parametrize(
    "url",
    [
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "http://[2002:a00:1::]/",  # 6to4 of 10.0.0.1
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo to 127.0.0.1
        "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
        "http://[64:ff9b:1::a00:1]/",  # local-use NAT64
        "http://192.0.0.8/",  # IPv4 dummy address
        "http://192.0.0.170/",  # NAT64/DNS64 discovery
        "http://192.31.196.1/",  # AS112
        "http://192.52.193.1/",  # AMT
        "http://192.88.99.1/",  # 6to4 relay anycast
        "http://192.175.48.1/",  # AS112 direct delegation
        "http://[2001:1::1]/",  # PCP anycast
        "http://[2620:4f:8000::1]/",  # AS112-v6
        "http://[3fff::1]/",  # documentation
        "http://[5f00::1]/",  # SRv6 SIDs
        "http://[fec0::1]/",  # deprecated site-local
    ],
)
def test_special_purpose_and_embedded_addresses_are_refused(api, settings, url):
    settings.WEBHOOK_ALLOWED_NETWORKS = []

    response = api.post(WEBHOOKS, {"url": url}, format="json")

    assert response.status_code == 400 and "only public addresses are allowed" in response.data["url"][0]
    assert not Webhook.objects.exists()


def test_an_allowed_translation_prefix_still_refuses_the_address_it_embeds(api, settings):
    """An operator on an IPv6-only network allows NAT64; 127.0.0.1 behind it stays refused."""
    settings.WEBHOOK_ALLOWED_NETWORKS = ["64:ff9b::/96"]

    refused = api.post(WEBHOOKS, {"url": "http://[64:ff9b::7f00:1]/"}, format="json")
    allowed = api.post(WEBHOOKS, {"url": "http://[64:ff9b::101:101]/"}, format="json")  # 1.1.1.1

    assert refused.status_code == 400 and "127.0.0.1" in refused.data["url"][0]
    assert allowed.status_code == 201


def test_ports_other_than_80_and_443_are_refused_unless_allowed(api, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    settings.WEBHOOK_ALLOWED_PORTS = []

    redis = api.post(WEBHOOKS, {"url": "https://1.1.1.1:6379/"}, format="json")
    settings.WEBHOOK_ALLOWED_PORTS = [8443]
    allowed = api.post(WEBHOOKS, {"url": "https://1.1.1.1:8443/"}, format="json")
    default_ports = [
        api.post(WEBHOOKS, {"url": url}, format="json").status_code
        for url in ("http://1.1.1.1:80/", "https://1.1.1.1/")
    ]

    assert redis.status_code == 400 and redis.data == {
        "url": [
            (
                "Webhook URL port 6379 is not allowed: only 80 and 443 (an operator may allow others with "
                "WEBHOOK_ALLOWED_PORTS)."
            )
        ]
    }
    assert allowed.status_code == 201 and default_ports == [201, 201]
