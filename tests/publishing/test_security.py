"""Another operator (the attacker) cannot publish to, connect or see someone else's channel or publications,
in the admin or the API."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from accounts import channels
from accounts.models import ChannelCredentials
from jobs.models import Publication
from jobs.tasks import run_publication
from tests.admin.conftest import client_for as admin_client_for
from tests.api.conftest import client_for
from tests.factories import make_job
from tests.publishing.conftest import make_rendered, queued_publications

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def published(fake, operator, rendered) -> Publication:
    """The victim's render, published to the victim's channel."""
    publication_id = (
        client_for(operator).post(f"/api/v1/jobs/{rendered.job.pk}/publish/", {}, format="json").json()["id"]
    )
    run_publication(publication_id)
    return Publication.objects.get(pk=publication_id)


def test_attacker_cannot_publish_someone_elses_job_through_the_api(fake, attacker, rendered):
    response = client_for(attacker).post(
        f"/api/v1/jobs/{rendered.job.pk}/publish/", {"force": True}, format="json"
    )

    assert response.status_code == 404
    assert not Publication.objects.exists() and not queued_publications()


def test_attacker_cannot_publish_their_job_to_someone_elses_channel(fake, attacker, rendered, video_bytes):
    own = make_rendered(attacker, video_bytes)
    own.job.account = rendered.account  # as if the API had let them pick it
    own.job.save()

    response = client_for(attacker).post(f"/api/v1/jobs/{own.job.pk}/publish/", {}, format="json")

    assert response.status_code == 400
    assert response.json()["non_field_errors"] == [
        f"Account {rendered.account.pk} does not exist or is not a channel of this job's team."
    ]
    assert not Publication.objects.exists() and not fake.requests


def test_attacker_does_not_see_someone_elses_publications_in_the_api(attacker, published):
    api = client_for(attacker)

    assert api.get(f"/api/v1/publications/{published.pk}/").status_code == 404
    assert api.get("/api/v1/publications/").json()["results"] == []
    assert api.get(f"/api/v1/publications/?job={published.job_id}").json()["results"] == []


def test_attacker_cannot_publish_someone_elses_job_in_the_admin(fake, attacker, rendered):
    admin = admin_client_for(attacker)

    action = admin.post(
        reverse("admin:jobs_job_changelist"), {"action": "publish", "_selected_action": [rendered.job.pk]}
    )
    form = admin.get(reverse("admin:jobs_job_publish", args=[rendered.job.pk]))
    posted = admin.post(reverse("admin:jobs_job_publish", args=[rendered.job.pk]), {"force": "on"})

    assert action.status_code in (200, 302) and form.status_code == 404 and posted.status_code == 404
    assert not Publication.objects.exists() and not queued_publications()


def test_attacker_does_not_see_someone_elses_publications_or_channel_in_the_admin(attacker, published):
    admin = admin_client_for(attacker)
    connection = ChannelCredentials.objects.get()

    publications = admin.get(reverse("admin:jobs_publication_changelist"))
    one = admin.get(reverse("admin:jobs_publication_change", args=[published.pk]))
    connections = admin.get(reverse("admin:accounts_channelcredentials_changelist"))
    one_connection = admin.get(reverse("admin:accounts_channelcredentials_change", args=[connection.pk]))

    assert publications.status_code == 200 and list(publications.context["cl"].result_list) == []
    assert published.video_id not in publications.content.decode()
    assert one.status_code == 302 and one["Location"] == reverse("admin:index")  # "does not exist"
    assert connections.status_code == 200 and list(connections.context["cl"].result_list) == []
    assert one_connection.status_code == 302


def test_attacker_cannot_connect_someone_elses_channel(fake, operator, attacker, rendered):
    admin = admin_client_for(attacker)

    response = admin.get(reverse("admin:accounts_account_youtube_connect", args=[rendered.account.pk]))

    assert response.status_code == 404 and not fake.requests


def test_attacker_cannot_finish_a_consent_someone_else_started(fake, operator, attacker, video_bytes):
    """The victim starts connecting; an attacker who learns the answer's state and sends their own code
    (to tie the victim's channel row to the attacker's Google account) is refused."""
    victim = make_rendered(operator, video_bytes)
    started = admin_client_for(operator).get(
        reverse("admin:accounts_account_youtube_connect", args=[victim.account.pk])
    )
    state = parse_qs(urlsplit(started["Location"]).query)["state"][0]
    fake.codes["attackers-code"] = "attackers-refresh-token"

    answer = admin_client_for(attacker).get(
        "/admin/accounts/account/youtube/callback/", {"state": state, "code": "attackers-code"}
    )

    assert answer.status_code == 400
    assert channels.channel_connection(victim.account) is None and "attackers-code" in fake.codes


def test_attacker_jobs_stay_their_own(fake, attacker, published):
    """A job of the attacker without a channel publishes nowhere, whatever channels others connected."""
    job = make_job(owner=attacker)

    response = client_for(attacker).post(f"/api/v1/jobs/{job.pk}/publish/", {}, format="json")

    assert response.status_code == 400 and Publication.objects.count() == 1
