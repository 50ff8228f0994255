"""Finding: "Stored script on our own origin". Every way a file gets into storage, in the admin and the
API, checks what the bytes are; a web page named `x.html` is refused by all of them and nothing of it
is stored; the admin checks an upload exactly as the API does."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Account
from jobs.models import Job, JobSplit, StockClip
from tests.admin.conftest import client_for, job_form
from tests.api.conftest import client_for as api_client_for
from tests.api.conftest import png_bytes, tiny_video
from tests.factories import make_account, make_job, make_voice
from tests.security.conftest import page_upload, stored_pages
from voices.models import Voice

pytestmark = pytest.mark.django_db

CLIP_FORM = {"title": "", "tags": "", "source": "", "licence": ""}


def admin_form_errors(response, field: str) -> list[str]:
    assert response.status_code == 200, "the page should come back with the error, not save"
    return list(response.context["adminform"].form.errors.get(field, []))


# ---------------------------------------------------------------- the admin's upload fields


@pytest.mark.parametrize(
    "page, model, field, form",
    [
        ("admin:jobs_stockclip_add", StockClip, "file", CLIP_FORM),
        (
            "admin:accounts_account_add",
            Account,
            "logo",
            {"username": "mine", "platform": "youtube", "area": ""},
        ),
        ("admin:voices_voice_add", Voice, "reference", {"name": "cmn", "language": ""}),
        ("admin:jobs_job_add", Job, "narration_audio", job_form()),
    ],
    ids=["clip", "logo", "voice-reference", "job-narration"],
)
def test_stored_script_upload_is_refused_by_the_admin(attacker, page, model, field, form):
    response = client_for(attacker).post(reverse(page), {**form, field: page_upload()})
    assert admin_form_errors(response, field)
    assert not model.objects.exists()
    assert stored_pages() == []


# ---------------------------------------------------------------- the API's upload endpoints


def split_images_url(owner) -> str:
    job = make_job(owner=owner)
    JobSplit.objects.create(job=job, index=0, start_ms=0, end_ms=1000, text="今天天气很好。", prompt="a park")
    return f"/api/v1/jobs/{job.pk}/splits/0/images/"


@pytest.mark.parametrize(
    "url",
    [
        lambda owner: "/api/v1/clips/",
        lambda owner: f"/api/v1/accounts/{make_account(owner=owner).pk}/logo/",
        lambda owner: f"/api/v1/voices/{make_voice(owner=owner).pk}/reference/",
        lambda owner: "/api/v1/music/",
        split_images_url,
    ],
    ids=["clip", "logo", "voice-reference", "music", "split-image"],
)
def test_stored_script_upload_is_refused_by_the_api(attacker, url):
    response = api_client_for(attacker).post(url(attacker), {"file": page_upload()}, format="multipart")
    assert response.status_code == 400, response.content[:500]
    assert "file" in response.json()
    assert stored_pages() == []


# ---------------------------------------------------------------- the admin checks as the API does


def test_stored_script_admin_logo_gets_the_api_picture_checks(attacker):
    """The API takes PNG, JPEG and WebP only, under a generated name; the admin took any picture
    Pillow opens, under the name the client chose."""
    client = client_for(attacker)
    form = {"username": "mine", "platform": "youtube", "area": ""}
    gif = SimpleUploadedFile("logo.gif", png_bytes(image_format="GIF"), content_type="image/gif")
    api_words = (
        api_client_for(attacker)
        .post(f"/api/v1/accounts/{make_account(owner=attacker).pk}/logo/", {"file": gif}, format="multipart")
        .json()["file"]
    )
    gif.seek(0)
    response = client.post(reverse("admin:accounts_account_add"), {**form, "logo": gif})
    assert admin_form_errors(response, "logo") == api_words

    png = SimpleUploadedFile("my logo.png", png_bytes(), content_type="image/png")
    assert client.post(reverse("admin:accounts_account_add"), {**form, "logo": png}).status_code == 302
    key = Account.objects.get(username="mine").logo.name
    assert key.startswith("accounts/logos/") and key.endswith(".png") and "logo" not in key.split("/")[-1]


def test_stored_script_admin_clip_is_checked_and_stored_as_the_api_does(attacker, tmp_path):
    """The admin saved any file raw under the client's name, with no duration or size."""
    video = tiny_video(tmp_path / "holiday.mp4").read_bytes()
    response = client_for(attacker).post(
        reverse("admin:jobs_stockclip_add"),
        {**CLIP_FORM, "title": "Holiday", "file": SimpleUploadedFile("holiday.mp4", video, "video/mp4")},
    )
    assert response.status_code == 302
    clip = StockClip.objects.get()
    assert clip.owner == attacker and clip.title == "Holiday"
    assert clip.file.name.startswith("clips/") and clip.file.name.endswith(".mp4")
    assert "holiday" not in clip.file.name
    assert (clip.duration_ms, clip.width, clip.height) == (1000, 64, 36)
