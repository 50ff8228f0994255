"""Deeply nested JSON (issue 30): 10 KB of `[[[[...` parses by recursion and used to end in a
RecursionError (a 500). The attacker sends it everywhere JSON is read -- the API, anonymously to the
login, an admin import file, a CSV's `extra` column, a webhook body, the admin's own JSON requests and
its JSON form fields -- and is refused as bad input that says it is nested too deeply."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.json_text import JSON_MAX_DEPTH
from jobs.models import Job, JobSplit, Webhook
from tests.admin.conftest import client_for, job_form
from tests.factories import make_job
from topics.models import Topic

pytestmark = pytest.mark.django_db

DEPTH = 5000
NESTED = "[" * DEPTH + "]" * DEPTH  # 10 KB
TOO_DEEP = "nested too deeply"


@pytest.fixture(autouse=True)
def no_throttles(settings):
    settings.API_THROTTLE_USER = None
    settings.API_THROTTLE_ANON = None


def api_for(user) -> APIClient:
    api = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return api


def post_raw(client, url: str, body: str):
    return client.post(url, body, content_type="application/json")


def test_deeply_nested_job_body_is_a_400_that_says_so(attacker):
    response = post_raw(
        api_for(attacker), "/api/v1/jobs/", f'{{"title": "t", "content": "c", "extra": {NESTED}}}'
    )

    assert response.status_code == 400 and TOO_DEEP in response.json()["detail"]
    assert not Job.objects.exists()


def test_deeply_nested_login_body_from_an_anonymous_client_is_a_400(db):
    response = post_raw(APIClient(), "/api/v1/auth/token/", f'{{"username": {NESTED}, "password": "x"}}')

    assert response.status_code == 400 and TOO_DEEP in response.json()["detail"]


def test_deeply_nested_webhook_body_is_a_400(attacker):
    response = post_raw(
        api_for(attacker), "/api/v1/webhooks/", f'{{"url": "https://example.com/", "events": {NESTED}}}'
    )

    assert response.status_code == 400 and TOO_DEEP in response.json()["detail"]
    assert not Webhook.objects.exists()


def test_nesting_up_to_the_limit_is_still_read(attacker):
    """Only the depth is refused: a body exactly JSON_MAX_DEPTH deep parses (and fails on its merits)."""
    deep_enough = "[" * (JSON_MAX_DEPTH - 1) + "]" * (JSON_MAX_DEPTH - 1)
    response = post_raw(
        api_for(attacker), "/api/v1/jobs/", f'{{"title": "t", "content": "c", "extra": {deep_enough}}}'
    )

    assert response.status_code == 400 and "extra" in response.json()


def test_admin_import_of_a_deeply_nested_json_file_says_so(attacker):
    upload = SimpleUploadedFile("jobs.json", NESTED.encode())
    response = client_for(attacker).post(reverse("admin:jobs_job_import"), {"file": upload})

    assert response.status_code == 200
    assert TOO_DEEP in " ".join(response.context["upload"].errors["file"])
    assert not Job.objects.exists()


def test_admin_import_of_a_csv_with_a_deeply_nested_extra_says_so_on_that_row(attacker):
    csv = f"title,content,extra\nT,今天天气很好。,{NESTED}\n"
    response = client_for(attacker).post(
        reverse("admin:jobs_job_import"), {"file": SimpleUploadedFile("jobs.csv", csv.encode())}
    )

    assert response.status_code == 200
    [bad] = response.context["bad"]
    assert TOO_DEEP in " ".join(bad.errors["extra"])


def test_admin_json_requests_with_deep_nesting_are_a_400(attacker):
    job = make_job(owner=attacker)
    JobSplit.objects.create(job=job, index=0, start_ms=0, end_ms=1000, text="a")
    client = client_for(attacker)
    for view in ("admin:jobs_job_choose_image", "admin:jobs_job_preview"):
        response = post_raw(client, reverse(view, args=[job.pk]), NESTED)
        assert response.status_code == 400, view


def test_admin_json_form_fields_refuse_deep_nesting(attacker):
    client = client_for(attacker)
    job_page = client.post(reverse("admin:jobs_job_add"), job_form(extra=NESTED))
    topic_page = client.post(
        reverse("admin:topics_topic_add"),
        {"name": "topic", "palette": "", "real_clip_ratio": "0.4", "lora_weight": "100", "extra": NESTED},
    )

    for page in (job_page, topic_page):
        assert page.status_code == 200 and page.context["adminform"].form.errors["extra"]
    assert not Job.objects.exists() and not Topic.objects.exists()
