"""The job form writes through the same rules as the API: what one refuses, the other refuses, in the
same words."""

import json
import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from jobs.models import Job
from tests.admin.conftest import client_for, job_form
from tests.api.conftest import wav_bytes
from tests.factories import make_job

pytestmark = pytest.mark.django_db

ADD = reverse("admin:jobs_job_add")
API_JOBS = "/api/v1/jobs/"
API_MUSIC = "/api/v1/music/"


def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def api_messages(body, field: str) -> list[str]:
    """The API's messages for a field; extra's are nested by key, the admin writes them "key: message"."""
    value = body[field]
    if isinstance(value, dict):
        return [f"{key}: {message}" for key, messages in value.items() for message in messages]
    return [str(message) for message in value]


def form_errors(response, field: str) -> list[str]:
    assert response.status_code == 200, "the form should come back with errors, not save"
    return list(response.context["adminform"].form.errors.get(field, []))


@pytest.mark.parametrize(
    "field, value, posted",
    [
        (
            "extra",
            {"real_clip_ratio": 2, "segment_target": 5000},
            json.dumps({"real_clip_ratio": 2, "segment_target": 5000}),
        ),
        ("extra", [1, 2], "[1, 2]"),
        (
            "extra",
            {"music": "music/someone-else/song.mp3"},
            json.dumps({"music": "music/someone-else/song.mp3"}),
        ),
        ("speech_speed", 3.0, "3.0"),
        ("title", "", ""),
        ("title", "t" * 300, "t" * 300),
        ("content", "#@#only a note#@#", "#@#only a note#@#"),
    ],
)
def test_job_form_refuses_what_the_api_refuses_in_the_same_words(operator, field, value, posted):
    api_response = api_for(operator).post(
        API_JOBS, {"title": "A title", "content": "今天天气很好。", field: value}, format="json"
    )
    assert api_response.status_code == 400, api_response.data
    expected = api_messages(api_response.data, field)

    response = client_for(operator).post(ADD, job_form(**{field: posted}))

    assert form_errors(response, field) == expected
    assert not Job.objects.exists()


def test_job_change_form_refuses_bad_extra_and_keeps_the_job(operator):
    job = make_job(owner=operator, extra={"h2v": True})
    url = reverse("admin:jobs_job_change", args=[job.pk])

    response = client_for(operator).post(
        url, job_form(title=job.title, content=job.content, extra='{"h2v": "yes"}')
    )

    assert form_errors(response, "extra") == ["h2v: Must be true or false."]
    job.refresh_from_db()
    assert job.extra == {"h2v": True}


def test_job_form_saves_through_the_service_which_cleans_title_and_content(operator):
    response = client_for(operator).post(
        ADD, job_form(title="Tab\tin title", content="第一句。#@#note to self#@#", extra='{"h2v": true}')
    )

    assert response.status_code == 302
    job = Job.objects.get()
    assert (job.title, job.content, job.extra, job.owner) == (
        "Tab in title",
        "第一句。",
        {"h2v": True},
        operator,
    )
    change = client_for(operator).post(
        reverse("admin:jobs_job_change", args=[job.pk]),
        job_form(title=job.title, content="第二句。#@#again#@#"),
    )
    assert change.status_code == 302
    job.refresh_from_db()
    assert job.content == "第二句。"


@pytest.mark.parametrize(
    "name, content, content_type",
    [
        ("x.html", b"<html><body>not audio</body></html>", "text/html"),
        ("x.wav", b"<html><body>not audio</body></html>", "audio/wav"),
    ],
)
def test_job_form_refuses_a_narration_that_is_not_audio_in_the_api_words(
    operator, name, content, content_type
):
    api_response = api_for(operator).post(
        API_MUSIC, {"file": SimpleUploadedFile(name, content, content_type)}, format="multipart"
    )
    assert api_response.status_code == 400, api_response.data

    response = client_for(operator).post(
        ADD, job_form(narration_audio=SimpleUploadedFile(name, content, content_type))
    )

    assert form_errors(response, "narration_audio") == api_messages(api_response.data, "file")
    assert not Job.objects.exists()


def test_job_form_stores_an_audio_narration_under_a_generated_name(operator):
    response = client_for(operator).post(
        ADD, job_form(narration_audio=SimpleUploadedFile("../../my voice.wav", wav_bytes(), "audio/wav"))
    )

    assert response.status_code == 302
    key = Job.objects.get().narration_audio.name
    assert key.startswith("jobs/narration/") and key.endswith(".wav") and "voice" not in key
    assert default_storage.open(key).read() == wav_bytes()


def test_job_change_form_keeps_or_clears_the_stored_narration(operator):
    job = make_job(owner=operator)
    job.narration_audio.save("voice.wav", ContentFile(wav_bytes()))
    url = reverse("admin:jobs_job_change", args=[job.pk])
    client = client_for(operator)

    assert client.post(url, job_form(title="Renamed", content=job.content)).status_code == 302
    job.refresh_from_db()
    assert (job.title, job.narration_audio.name) == ("Renamed", "jobs/narration/voice.wav")
    assert (
        client.post(
            url, job_form(title="Renamed", content=job.content, **{"narration_audio-clear": "on"})
        ).status_code
        == 302
    )
    job.refresh_from_db()
    assert not job.narration_audio


def test_superuser_can_make_a_shared_job_in_the_form(superuser):
    response = client_for(superuser).post(ADD, job_form(owner=""))

    assert response.status_code == 302
    assert Job.objects.get().owner is None


def test_publish_title_is_one_line_of_at_most_100_characters(operator):
    html = client_for(operator).get(reverse("admin:jobs_job_add")).content.decode()

    assert 'name="publish_title"' in html
    assert '<textarea name="publish_title"' not in html
    assert re.search(r'<input type="text" name="publish_title"[^>]*maxlength="100"', html)
