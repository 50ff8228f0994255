"""Publishing against the fake YouTube (tests/publishing/fake_youtube.py): requested through the API,
queued, and run as a worker runs the task."""

import json
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from jobs.models import Publication, PublicationStatus, QuotaUsage
from jobs.publishing import publications, quota
from jobs.tasks import run_publication
from jobs.webhooks import subscriptions
from tests.api.conftest import client_for
from tests.publishing.conftest import SRT, connect, make_rendered, queued_publications
from tests.webhooks.conftest import sweep_and_send

pytestmark = pytest.mark.django_db(transaction=True)


def publish(user, job, **data):
    return client_for(user).post(f"/api/v1/jobs/{job.pk}/publish/", data, format="json")


def request_and_run(user, job, **data) -> Publication:
    """Ask through the API, then run the task the queue got, as a worker would."""
    response = publish(user, job, **data)
    assert response.status_code == 202, response.content
    publication_id = response.json()["id"]
    assert publication_id in queued_publications()
    run_publication(publication_id)
    return Publication.objects.get(pk=publication_id)


def make_due(publication: Publication) -> None:
    Publication.objects.filter(pk=publication.pk).update(scheduled_for=timezone.now() - timedelta(seconds=1))


def test_publish_survives_a_dropped_upload_resuming_from_the_byte_youtube_has(fake, operator, rendered):
    fake.drop_at_byte, fake.drops_left = (
        300_000,
        2,
    )  # inside the second 256 KiB chunk; httplib2 retries once itself
    publish_at = (timezone.now() + timedelta(days=3)).replace(microsecond=0)

    publication = request_and_run(
        operator,
        rendered.job,
        publish_at=publish_at.isoformat(),
        tags=["walk", "park life"],
        category_id="19",
    )

    assert publication.status == PublicationStatus.PUBLISHED, publication.error
    [video] = fake.videos.values()
    assert bytes(video.data) == rendered.video  # every byte, once, in order
    puts = fake.upload_puts()
    query = next(i for i, put in enumerate(puts) if put["content_range"] == f"bytes */{len(rendered.video)}")
    resumed = puts[query + 1]["content_range"]
    assert resumed.startswith("bytes 300000-"), [put["content_range"] for put in puts]
    assert puts[0]["content_range"].startswith("bytes 0-262143/")
    assert publication.video_id == video.video_id
    assert publication.url == f"https://www.youtube.com/watch?v={video.video_id}"
    assert publication.attempts == 1 and publication.upload_uri == ""
    assert "Published as private" in publication.detail


def test_the_metadata_youtube_receives_field_by_field(fake, operator, rendered):
    publish_at = (timezone.now() + timedelta(days=3)).replace(microsecond=0)

    publication = request_and_run(
        operator,
        rendered.job,
        publish_at=publish_at.isoformat(),
        tags=["walk", "park life"],
        category_id="19",
    )

    assert publication.status == PublicationStatus.PUBLISHED, publication.error
    [video] = fake.videos.values()
    assert video.query["part"] == "snippet,status" and video.query["uploadType"] == "resumable"
    assert video.metadata == {
        "snippet": {
            "title": "公园散步 | A walk in the park",
            "description": "A walk in the park.\nMusic: none.",
            "tags": ["walk", "park life"],
            "categoryId": "19",
            "defaultLanguage": "zh-CN",
            "defaultAudioLanguage": "zh-CN",
        },
        "status": {
            "privacyStatus": "private",
            "selfDeclaredMadeForKids": False,
            "publishAt": publish_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }
    [thumbnail] = fake.thumbnails
    assert thumbnail["video_id"] == video.video_id and thumbnail["data"] == rendered.cover
    assert thumbnail["content_type"] == "image/jpeg" and thumbnail["query"]["uploadType"] == "media"
    [caption] = fake.captions
    assert caption["snippet"] == {
        "videoId": video.video_id,
        "language": "zh-CN",
        "name": "zh-CN",
        "isDraft": False,
    }
    assert caption["data"] == SRT.encode()
    assert caption["query"]["part"] == "snippet" and caption["query"]["uploadType"] == "multipart"
    # Every call was authorised with a token the fake's token endpoint handed out for the stored grant.
    assert {request["authorization"] for request in fake.requests if request["path"] != "/token"} <= {
        f"Bearer {token}" for token in fake.access_tokens
    }
    assert fake.token_requests[0]["refresh_token"] == "refresh-token-1"
    assert fake.token_requests[0]["client_id"] == "client-id.apps.example"
    assert QuotaUsage.objects.get(project="test-project", team=None).units == 1600 + 50 + 400
    shown = client_for(operator).get(f"/api/v1/publications/{publication.pk}/").json()
    assert shown["video_id"] == video.video_id and shown["status"] == "PUBLISHED"
    assert shown["publish_at"] and shown["thumbnail_done"] and shown["captions_done"]


def test_what_does_not_fit_the_daily_budget_waits_for_the_next_pacific_midnight(
    fake, operator, video_bytes, settings, monkeypatch
):
    from django_q.models import Schedule

    settings.YOUTUBE_DAILY_QUOTA = 3000  # one publication (2050 units) fits, the second does not
    first, second = (make_rendered(operator, video_bytes) for _ in range(2))
    connect(fake, first.account)
    connect(fake, second.account, "refresh-token-2")

    done = request_and_run(operator, first.job)
    waiting = request_and_run(operator, second.job)

    assert done.status == PublicationStatus.PUBLISHED
    assert waiting.status == PublicationStatus.WAITING and not waiting.error
    midnight = publications.next_quota_day_start()
    assert waiting.scheduled_for == midnight
    assert timezone.localtime(midnight, publications.QUOTA_TIMEZONE).hour == 0
    assert 7 <= midnight.hour <= 8  # midnight Pacific is 07:00 or 08:00 UTC
    assert (
        "Scheduled for the next YouTube quota day" in waiting.detail and "needs 2050 units" in waiting.detail
    )
    assert len(fake.videos) == 1  # nothing was sent for the second
    assert Schedule.objects.filter(
        func="jobs.tasks.run_publication", next_run=midnight, args=repr((waiting.pk,))
    ).exists()
    assert waiting.attempts == 0  # waiting for quota is no failed attempt
    # The next quota day: the scheduled task publishes it.
    tomorrow = quota.quota_day() + timedelta(days=1)
    monkeypatch.setattr(quota, "quota_day", lambda when=None: tomorrow)
    make_due(waiting)
    run_publication(waiting.pk)
    waiting.refresh_from_db()
    assert waiting.status == PublicationStatus.PUBLISHED and len(fake.videos) == 2


def test_a_quota_exceeded_answer_reschedules_for_the_next_quota_day_instead_of_failing(
    fake, operator, rendered
):
    fake.failures["videos.insert"] = [(403, "quotaExceeded")]

    publication = request_and_run(operator, rendered.job)

    assert publication.status == PublicationStatus.WAITING
    assert publication.scheduled_for == publications.next_quota_day_start()
    assert "quotaExceeded" in publication.detail and "next YouTube quota day" in publication.detail
    assert (
        QuotaUsage.objects.get(project="test-project", team=None).units == 10000
    )  # YouTube's word on today's budget


@pytest.mark.parametrize(
    "status, reason", [(503, "backendError"), (403, "rateLimitExceeded"), (429, "userRateLimitExceeded")]
)
def test_a_server_error_or_rate_limit_backs_off_and_the_retry_does_only_what_is_missing(
    fake, operator, rendered, status, reason
):
    fake.failures["thumbnails.set"] = [(status, reason)]

    publication = request_and_run(operator, rendered.job)

    assert publication.status == PublicationStatus.WAITING
    assert publication.video_id and not publication.thumbnail_done
    assert (
        timezone.now() + timedelta(seconds=30)
        < publication.scheduled_for
        < timezone.now() + timedelta(seconds=90)
    )
    assert f"{status} {reason}" in publication.error and "Attempt 1 of 10" in publication.detail
    make_due(publication)
    run_publication(publication.pk)
    publication.refresh_from_db()
    assert publication.status == PublicationStatus.PUBLISHED
    assert len(fake.videos) == 1 and len(fake.thumbnails) == 1 and len(fake.captions) == 1


def test_a_revoked_grant_fails_with_words_that_say_to_reconnect(fake, operator, rendered):
    fake.revoked.add("refresh-token-1")

    publication = request_and_run(operator, rendered.job)

    assert publication.status == PublicationStatus.FAILED
    assert "invalid_grant" in publication.error and "Connect the channel again" in publication.error
    assert not fake.uploads
    rendered.account.channel_credentials.refresh_from_db()
    assert "Connect the channel again" in rendered.account.channel_credentials.problem
    again = publish(operator, rendered.job)  # refused at once until the channel is reconnected
    assert again.status_code == 400 and "Connect the channel again" in json.dumps(again.json())


def test_publishing_a_render_twice_is_refused_unless_forced(fake, operator, rendered):
    first = request_and_run(operator, rendered.job)
    assert first.status == PublicationStatus.PUBLISHED

    refused = publish(operator, rendered.job)
    forced = request_and_run(operator, rendered.job, force=True)

    assert refused.status_code == 400
    assert "already published or being published" in refused.json()["non_field_errors"][0]
    assert (
        forced.status == PublicationStatus.PUBLISHED and forced.forced and forced.video_id != first.video_id
    )


def test_a_failed_publication_is_retried_not_duplicated(fake, operator, rendered):
    fake.failures["captions.insert"] = [(400, "invalidMetadata")]
    failed = request_and_run(operator, rendered.job)
    assert failed.status == PublicationStatus.FAILED and "The video is uploaded" in failed.error

    retried = request_and_run(operator, rendered.job)

    assert retried.pk == failed.pk and retried.status == PublicationStatus.PUBLISHED
    assert len(fake.videos) == 1 and len(fake.captions) == 1


def test_bad_options_are_refused_with_the_field_named(fake, operator, rendered):
    response = publish(
        operator, rendered.job, privacy="public", publish_at=(timezone.now() + timedelta(days=1)).isoformat()
    )
    assert response.status_code == 400 and "publish_at" in response.json()

    rendered.job.publish_title = "x" * 101
    rendered.job.save()
    response = publish(operator, rendered.job)
    assert response.status_code == 400
    assert response.json()["publish_title"] == [
        "YouTube titles have at most 100 characters; this one has 101."
    ]
    assert not Publication.objects.exists()


def test_a_job_without_a_successful_render_or_channel_is_refused(fake, operator, video_bytes):
    unconnected = make_rendered(operator, video_bytes)

    response = publish(operator, unconnected.job)

    assert response.status_code == 400
    assert "is not connected to YouTube" in response.json()["non_field_errors"][0]


def test_a_later_attempt_resumes_the_stored_upload_session_from_the_byte_youtube_has(
    fake, operator, rendered, settings
):
    settings.YOUTUBE_UPLOAD_RETRIES = 1
    fake.drop_at_byte, fake.drops_left = 300_000, 4  # more drops than one attempt resumes: the attempt ends

    first_attempt = request_and_run(operator, rendered.job)

    assert (
        first_attempt.status == PublicationStatus.WAITING
        and "connection to YouTube failed" in first_attempt.error
    )
    assert first_attempt.upload_uri.startswith(fake.base_url) and not first_attempt.video_id
    fake.drops_left = 0
    seen = len(fake.requests)
    make_due(first_attempt)
    run_publication(first_attempt.pk)

    published = Publication.objects.get(pk=first_attempt.pk)
    assert published.status == PublicationStatus.PUBLISHED and published.attempts == 2
    assert len(fake.uploads) == 1  # the same session, not a new upload
    second = [r for r in fake.requests[seen:] if r["path"].startswith("/upload/session/")]
    assert second[0]["content_range"] == f"bytes */{len(rendered.video)}"
    assert second[1]["content_range"].startswith("bytes 300000-")
    assert bytes(next(iter(fake.videos.values())).data) == rendered.video


def test_publish_done_and_failed_are_posted_to_the_owners_webhooks(fake, operator, rendered, receiver):
    receiver.secret = subscriptions.webhook_create(
        user=operator, team=operator.personal_team, url=receiver.url
    ).secret

    done = request_and_run(operator, rendered.job)
    sweep_and_send()
    fake.revoked.add("refresh-token-1")
    failed = request_and_run(operator, rendered.job, force=True)
    sweep_and_send()

    assert [done.status, failed.status] == [PublicationStatus.PUBLISHED, PublicationStatus.FAILED]
    events = [request.event for request in receiver.requests]
    assert all(request.verified for request in receiver.requests)
    assert [event["type"] for event in events] == ["publish.done", "publish.failed"]
    assert events[0]["data"]["publication"]["id"] == done.pk
    assert events[0]["data"]["publication"]["url"] == done.url and done.url
    assert events[0]["data"]["job"]["id"] == rendered.job.pk
    assert "Connect the channel again" in events[1]["data"]["publication"]["error"]


def test_a_publication_whose_worker_died_is_queued_again_by_the_maintenance_schedule(
    fake, operator, rendered
):
    from django_q.models import OrmQ

    response = publish(operator, rendered.job)
    publication_id = response.json()["id"]
    OrmQ.objects.all().delete()  # the worker took the task...
    long_ago = timezone.now() - timedelta(hours=1)
    Publication.objects.filter(pk=publication_id).update(  # ...claimed it, and died mid-upload
        status=PublicationStatus.RUNNING, attempts=1, updated_at=long_ago
    )

    assert publications.publications_wake_due() == 1
    assert queued_publications() == [publication_id]
    run_publication(publication_id)

    published = Publication.objects.get(pk=publication_id)
    assert published.status == PublicationStatus.PUBLISHED and published.attempts == 2
    assert publications.publications_wake_due() == 0
