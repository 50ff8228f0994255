"""Background music: uploaded through the API into the team's folder, then named in a job's extra."""

from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.api.conftest import wav_bytes
from tests.factories import make_job

URL = "/api/v1/music/"


def upload(client, content: bytes, name: str = "../../etc/song.wav", content_type: str = "audio/wav"):
    return client.post(URL, {"file": SimpleUploadedFile(name, content, content_type)}, format="multipart")


def test_uploaded_music_is_stored_in_the_teams_folder_and_usable_in_a_job(api, member):
    response = upload(api, wav_bytes())

    assert response.status_code == 201, response.data
    key = response.data["key"]
    assert (
        key.startswith(f"music/team-{member.personal_team.pk}/")
        and key.endswith(".wav")
        and "song" not in key
    )
    assert default_storage.open(key).read() == wav_bytes()
    assert response.data["size"] == len(wav_bytes())
    assert api.get(response.data["url"]).getvalue() == wav_bytes()
    listed = api.get(URL)
    assert listed.status_code == 200 and [item["key"] for item in listed.data] == [key]
    job = make_job(owner=member)
    patched = api.patch(f"/api/v1/jobs/{job.pk}/", {"extra": {"music": key}}, format="json")
    assert patched.status_code == 200 and patched.data["extra"] == {"music": key}


def test_music_that_is_not_audio_is_refused_and_nothing_is_stored(api, member):
    for content, content_type in [(b"RIFF not really", "audio/wav"), (b"\x89PNG....", "image/png")]:
        response = upload(api, content, content_type=content_type)
        assert response.status_code == 400 and "file" in response.data
    assert api.get(URL).data == []


def test_each_user_lists_only_their_own_music(api, stranger_api):
    assert upload(api, wav_bytes()).status_code == 201
    assert stranger_api.get(URL).data == []


def test_music_needs_a_login(anon_api):
    assert anon_api.get(URL).status_code == 401
    assert upload(anon_api, wav_bytes()).status_code == 401


def test_someone_elses_music_is_refused(api, stranger_api, member):
    key = upload(stranger_api, wav_bytes()).data["key"]
    job = make_job(owner=member)

    response = api.patch(f"/api/v1/jobs/{job.pk}/", {"extra": {"music": key}}, format="json")

    assert response.status_code == 400
    assert response.data["extra"] == [f"music: {key} does not exist or is not yours."]
    job.refresh_from_db()
    assert job.extra == {}
