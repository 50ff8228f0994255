from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import StockClip
from tests.api.conftest import tiny_video

CLIPS = "/api/v1/clips/"


def upload(api, tmp_path, **fields):
    data = tiny_video(tmp_path / "my holiday.mp4").read_bytes()
    return api.post(
        CLIPS,
        {"file": SimpleUploadedFile("../../my holiday.mp4", data, "video/mp4"), **fields},
        format="multipart",
    )


def test_upload_a_clip_reads_its_facts_and_renames_it(api, member, tmp_path):
    response = upload(api, tmp_path, title="Holiday", tags="sea,landscape", licence="CC0")
    assert response.status_code == 201, response.data
    clip = StockClip.objects.get(pk=response.data["id"])
    assert clip.owner == member
    assert (clip.width, clip.height) == (64, 36)
    assert 900 <= clip.duration_ms <= 1100
    assert clip.title == "Holiday" and clip.tags == "sea,landscape"
    assert clip.file.name.endswith(".mp4") and "holiday" not in clip.file.name
    assert response.data["url"].startswith("/files/")


def test_upload_rejects_what_is_not_a_video(api):
    response = api.post(CLIPS, {"file": ContentFile(b"hello", name="a.mp4")}, format="multipart")
    assert response.status_code == 400 and "file" in response.data
    response = api.post(CLIPS, {"file": SimpleUploadedFile("a.mp4", b"x", "text/html")}, format="multipart")
    assert response.status_code == 400 and "text/html" in str(response.data["file"][0])
    assert api.post(CLIPS, {}, format="multipart").status_code == 400


def test_clip_limit_is_configurable(api, settings, tmp_path):
    settings.API_CLIP_MAX_BYTES = 100
    response = upload(api, tmp_path)
    assert response.status_code == 400 and "MB" in str(response.data["file"][0])


def test_clips_follow_the_ownership_rule(api, stranger_api, admin_api, tmp_path):
    mine = upload(api, tmp_path).data["id"]
    shared = StockClip.objects.create(owner=None, team=None, title="shared", file="clips/shared.mp4")
    assert stranger_api.get(f"{CLIPS}{mine}/").status_code == 404
    assert stranger_api.patch(f"{CLIPS}{mine}/", {"tags": "x"}, format="json").status_code == 404
    assert api.patch(f"{CLIPS}{mine}/", {"tags": "city"}, format="json").data["tags"] == "city"
    assert api.get(f"{CLIPS}{shared.pk}/").status_code == 200
    assert api.patch(f"{CLIPS}{shared.pk}/", {"tags": "x"}, format="json").status_code == 403
    assert admin_api.patch(f"{CLIPS}{shared.pk}/", {"tags": "x"}, format="json").status_code == 200
    assert {row["id"] for row in api.get(CLIPS + "?tag=city").data["results"]} == {mine}
    assert api.delete(f"{CLIPS}{mine}/").status_code == 204
    assert not StockClip.objects.filter(pk=mine).exists()
