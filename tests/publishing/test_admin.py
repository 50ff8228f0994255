"""Publishing from the admin: the job list's action, the job page's button and form, the publication's state."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.models import Publication, PublicationStatus
from jobs.tasks import run_publication
from tests.admin.conftest import client_for
from tests.publishing.conftest import connect, make_rendered, queued_publications

pytestmark = pytest.mark.django_db(transaction=True)


def test_operator_publishes_a_selection_from_the_job_list(fake, operator, video_bytes):
    selected = [make_rendered(operator, video_bytes) for _ in range(2)]
    connect(fake, selected[0].account)
    connect(fake, selected[1].account, "refresh-token-2")
    unconnected = make_rendered(operator, video_bytes)

    response = client_for(operator).post(
        reverse("admin:jobs_job_changelist"),
        {"action": "publish", "_selected_action": [r.job.pk for r in [*selected, unconnected]]},
        follow=True,
    )

    page = response.content.decode()
    assert "Queued 2 publication(s) to YouTube." in page
    assert (
        f"{unconnected.job.title}: Channel {unconnected.account.username!r} is not connected"
        in page.replace("&#x27;", "'")
    )
    publications = list(Publication.objects.order_by("job_id"))
    assert [p.job_id for p in publications] == [r.job.pk for r in selected]
    assert sorted(queued_publications()) == sorted(p.pk for p in publications)


def test_operator_publishes_from_the_job_page_and_sees_the_publication(fake, operator, rendered):
    client = client_for(operator)
    job_page = client.get(reverse("admin:jobs_job_change", args=[rendered.job.pk])).content.decode()
    publish_url = reverse("admin:jobs_job_publish", args=[rendered.job.pk])
    assert f'href="{publish_url}"' in job_page
    form = client.get(publish_url).content.decode()
    assert "公园散步 | A walk in the park" in form and 'name="publish_at"' in form
    publish_at = timezone.localtime(timezone.now() + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")

    response = client.post(
        publish_url, {"privacy": "", "publish_at": publish_at, "tags": "walk, park", "category_id": "22"}
    )

    assert response.status_code == 302
    publication = Publication.objects.get()
    assert (
        publication.tags == ["walk", "park"] and publication.privacy == "private" and publication.publish_at
    )
    run_publication(publication.pk)
    publication.refresh_from_db()
    assert publication.status == PublicationStatus.PUBLISHED
    job_page = client.get(reverse("admin:jobs_job_change", args=[rendered.job.pk])).content.decode()
    assert publication.url in job_page and "PUBLISHED" in job_page
    listed = client.get(reverse("admin:jobs_publication_changelist")).content.decode()
    assert publication.video_id in listed


def test_the_publish_form_shows_the_refusal_in_the_apis_words(fake, operator, rendered):
    client = client_for(operator)
    url = reverse("admin:jobs_job_publish", args=[rendered.job.pk])
    client.post(url, {})

    again = client.post(url, {})

    assert again.status_code == 200
    assert "already published or being published" in again.content.decode()
    assert Publication.objects.count() == 1
