"""The API's one exception handler (accounts.api.errors): a service's ValidationError is a 400 in the
shape a serializer's would have."""

from django.core.files.uploadedfile import SimpleUploadedFile

from jobs import services
from media_engine.errors import MediaError
from tests.api.conftest import tiny_video
from tests.factories import make_job


def test_service_validation_error_reaches_the_api_as_a_400(api, member, monkeypatch):
    job = make_job(owner=member)
    enqueue = services.job_enqueue

    def deleted_meanwhile(*, job):
        services.job_soft_delete(job=job)  # another request deletes the job the view has just loaded
        return enqueue(job=job)

    monkeypatch.setattr(services, "job_enqueue", deleted_meanwhile)
    response = api.post(f"/api/v1/jobs/{job.pk}/render/")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["This job is deleted; restore it before rendering."]}


def test_service_validation_error_keeps_its_fields(api, member):
    job = make_job(owner=member)
    response = api.patch(f"/api/v1/jobs/{job.pk}/", {"speech_speed": 3}, format="json")
    assert response.status_code == 400
    assert response.json() == {"speech_speed": ["Speech speed 3.0 is outside 0.5-2.0."]}


def test_clip_the_media_engine_cannot_import_is_a_400_under_file(api, tmp_path, monkeypatch):
    def unreadable(**fields):
        raise MediaError("clip.mp4 has no video stream")

    monkeypatch.setattr(services, "clip_import", unreadable)
    data = tiny_video(tmp_path / "clip.mp4").read_bytes()
    response = api.post(
        "/api/v1/clips/", {"file": SimpleUploadedFile("clip.mp4", data, "video/mp4")}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json() == {"file": ["clip.mp4 has no video stream"]}
