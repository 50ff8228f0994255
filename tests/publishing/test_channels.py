"""Connecting a channel (the admin's consent redirect, the headless command) and keeping its grant secret."""

import io
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts import channels
from accounts.models import ChannelCredentials
from jobs.models import Publication, PublicationStatus
from jobs.tasks import run_publication
from tests.admin.conftest import client_for as admin_client_for
from tests.api.conftest import client_for
from tests.factories import make_account, make_user

pytestmark = pytest.mark.django_db(transaction=True)

CALLBACK = "/admin/accounts/account/youtube/callback/"


def start_consent(client, account) -> dict[str, str]:
    response = client.get(reverse("admin:accounts_account_youtube_connect", args=[account.pk]))
    assert response.status_code == 302, response.content
    return {name: values[0] for name, values in parse_qs(urlsplit(response["Location"]).query).items()}


def test_operator_connects_a_channel_through_the_consent_redirect(fake, operator, settings):
    account = make_account(owner=operator, platform="youtube")
    client = admin_client_for(operator)

    response = client.get(reverse("admin:accounts_account_youtube_connect", args=[account.pk]))

    assert response["Location"].startswith(settings.YOUTUBE_AUTH_URI + "?")
    asked = {name: values[0] for name, values in parse_qs(urlsplit(response["Location"]).query).items()}
    assert asked["client_id"] == "client-id.apps.example" and asked["response_type"] == "code"
    assert asked["redirect_uri"] == "http://testserver" + CALLBACK
    assert asked["access_type"] == "offline" and asked["prompt"] == "consent"
    assert asked["code_challenge_method"] == "S256" and asked["code_challenge"]
    assert set(asked["scope"].split()) == set(channels.SCOPES)
    fake.codes["code-from-google"] = "refresh-from-consent"

    answer = client.get(CALLBACK, {"state": asked["state"], "code": "code-from-google"})

    assert answer.status_code == 302 and answer["Location"] == reverse(
        "admin:accounts_account_change", args=[account.pk]
    )
    stored = ChannelCredentials.objects.get(account=account)
    assert b"refresh-from-consent" not in bytes(stored.refresh_token_encrypted)
    assert channels.channel_credentials(account).refresh_token == "refresh-from-consent"
    assert stored.connected_by == operator
    exchange = fake.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code" and exchange["code_verifier"]  # PKCE
    page = client.get(reverse("admin:accounts_account_change", args=[account.pk])).content.decode()
    assert "Connected " in page and "refresh-from-consent" not in page


def test_a_consent_answer_with_another_state_is_refused(fake, operator):
    account = make_account(owner=operator, platform="youtube")
    client = admin_client_for(operator)
    start_consent(client, account)
    fake.codes["code-from-google"] = "refresh-from-consent"

    answer = client.get(CALLBACK, {"state": "forged", "code": "code-from-google"})

    assert answer.status_code == 400
    assert not ChannelCredentials.objects.exists() and not fake.token_requests


def test_without_an_encryption_key_nothing_is_stored_and_the_operator_is_told(
    fake, operator, settings, monkeypatch
):
    settings.CHANNEL_SECRET_KEYS = []
    account = make_account(owner=operator, platform="youtube")
    client = admin_client_for(operator)

    response = client.get(reverse("admin:accounts_account_youtube_connect", args=[account.pk]), follow=True)
    monkeypatch.setattr("sys.stdin", io.StringIO("a-refresh-token\n"))
    with pytest.raises(CommandError) as refused:
        call_command("connect_channel", str(account.pk))

    assert "CHANNEL_SECRET_KEYS is not set" in response.content.decode()
    assert "CHANNEL_SECRET_KEYS is not set" in str(refused.value) and "nothing was stored" in str(
        refused.value
    )
    assert not ChannelCredentials.objects.exists() and not fake.requests


def test_headless_host_connects_with_a_pasted_refresh_token_and_publishes_from_the_command(
    fake, operator, video_bytes, monkeypatch
):
    from tests.publishing.conftest import make_rendered

    rendered = make_rendered(operator, video_bytes)
    fake.refresh_tokens.add("pasted-token")
    monkeypatch.setattr("sys.stdin", io.StringIO("pasted-token\n"))
    out = io.StringIO()

    call_command("connect_channel", str(rendered.account.pk), stdout=out)
    call_command("publish_job", str(rendered.job.pk), "--now", "--privacy", "unlisted", stdout=out)

    publication = Publication.objects.get(job=rendered.job)
    assert publication.status == PublicationStatus.PUBLISHED, publication.error
    assert "pasted-token" not in out.getvalue() and f"{publication.url}" in out.getvalue()
    assert next(iter(fake.videos.values())).metadata["status"]["privacyStatus"] == "unlisted"


def test_the_grant_is_never_shown_again(fake, operator, rendered, caplog):
    caplog.set_level(logging.DEBUG)
    token = "refresh-token-1"
    publication_id = (
        client_for(operator).post(f"/api/v1/jobs/{rendered.job.pk}/publish/", {}, format="json").json()["id"]
    )
    run_publication(publication_id)
    connection = ChannelCredentials.objects.get(account=rendered.account)
    api, admin = client_for(operator), admin_client_for(operator)

    shown = [
        bytes(connection.refresh_token_encrypted),
        api.get(f"/api/v1/accounts/{rendered.account.pk}/").content,
        api.get("/api/v1/accounts/").content,
        api.get(f"/api/v1/publications/{publication_id}/").content,
        api.get("/api/v1/jobs/export/?format=csv").content,
        api.get(f"/api/v1/jobs/{rendered.job.pk}/desc/").content,
        admin.get(reverse("admin:accounts_account_change", args=[rendered.account.pk])).content,
        admin.get(reverse("admin:accounts_channelcredentials_changelist")).content,
        admin.get(reverse("admin:accounts_channelcredentials_change", args=[connection.pk])).content,
        admin.get(reverse("admin:jobs_publication_change", args=[publication_id])).content,
        admin.get(reverse("admin:jobs_job_change", args=[rendered.job.pk])).content,
        caplog.text.encode(),
    ]

    assert Publication.objects.get(pk=publication_id).status == PublicationStatus.PUBLISHED
    assert all(token.encode() not in content for content in shown)
    assert b"Connected " in shown[6]  # the account page says it is connected, without the grant


def test_a_superuser_connects_a_shared_channel_for_a_team_whose_publishers_then_publish(fake, superuser):
    from accounts.models import Role
    from tests.factories import make_team

    team = make_team(slug="health")
    account = make_account(owner=None, team=None, platform="youtube", username="health-tips")
    client = admin_client_for(superuser)
    response = client.get(
        reverse("admin:accounts_account_youtube_connect", args=[account.pk]), {"for_team": "health"}
    )
    asked = {name: values[0] for name, values in parse_qs(urlsplit(response["Location"]).query).items()}
    fake.codes["code-from-google"] = "refresh-for-health"

    client.get(CALLBACK, {"state": asked["state"], "code": "code-from-google"})

    account.refresh_from_db()
    assert account.team == team
    assert channels.channel_credentials(account).refresh_token == "refresh-for-health"
    assert channels.channel_can_manage(account, superuser)
    operator = team.memberships.create(user=make_user(), role=Role.OPERATOR).user
    publisher = team.memberships.create(user=make_user(), role=Role.PUBLISHER).user
    assert not channels.channel_can_publish(account, operator, team=team)
    assert channels.channel_can_publish(account, publisher, team=team)
    assert not channels.channel_can_manage(account, publisher)  # connecting is the team admins'


def test_only_a_team_admin_connects_the_teams_channel(fake, operator):
    from accounts.models import Role
    from tests.factories import make_team

    team = make_team(members={operator: Role.PUBLISHER})
    account = make_account(owner=operator, team=team, platform="youtube")
    client = admin_client_for(operator)
    client.post(reverse("team-switch"), {"team": team.slug, "next": "/admin/"})

    response = client.get(reverse("admin:accounts_account_youtube_connect", args=[account.pk]))

    assert response.status_code == 403 and not fake.token_requests
