"""Finding: "Reading other teams' files". `/media/` (any staff user, any key) is gone; a file is reached
only through a signed link, handed out for keys of rows the user may see, and a link nobody issued
(forged, expired, or naming another key) is refused."""

import re
import time
from types import SimpleNamespace

import pytest
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from accounts.storage import MEDIA_SIGNING_SALT
from jobs.models import JobSplit, StockClip
from tests.admin.conftest import client_for
from tests.api.conftest import client_for as api_client_for
from tests.api.conftest import png_bytes
from tests.factories import make_job

pytestmark = pytest.mark.django_db


def test_reading_other_teams_files_through_media_is_gone_for_everyone(attacker, superuser):
    subtitles = b"1\n00:00:00,000 --> 00:00:01,000\nhi\n"
    key = default_storage.save("jobs/7/9/subtitles.srt", ContentFile(subtitles))
    for client in (Client(), client_for(attacker), client_for(superuser)):
        assert client.get(f"/media/{key}").status_code == 404


def test_reading_other_teams_files_with_a_forged_or_expired_link_is_refused(settings):
    key = default_storage.save("jobs/7/9/video.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42"))

    class SignedTwoHoursAgo(signing.TimestampSigner):
        def timestamp(self) -> str:
            return signing.b62_encode(int(time.time()) - 2 * 3600)

    settings.SIGNED_URL_EXPIRE_SECONDS = 3600
    expired = SignedTwoHoursAgo(salt=MEDIA_SIGNING_SALT).sign_object(key)
    forged = signing.TimestampSigner(key="a key anyone could guess", salt=MEDIA_SIGNING_SALT).sign_object(key)
    good = default_storage.url(key).rsplit("/", 1)[1]
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    for token in (expired, forged, tampered, "jobs%2F7%2F9%2Fvideo.mp4"):
        assert Client().get(reverse("signed-media", args=[token])).status_code == 404
    assert Client().get(reverse("signed-media", args=[good])).status_code == 200


def test_reading_other_teams_files_by_naming_their_key_gets_no_link(attacker, victim):
    """A segment shows only its own pictures: naming another team's key, in the API or the admin
    storyboard, is refused and no link to it is handed out."""
    theirs = default_storage.save("jobs/900/pictures/000-flux-1.png", ContentFile(png_bytes()))
    job = make_job(owner=attacker)
    JobSplit.objects.create(job=job, index=0, start_ms=0, end_ms=1000, text="今天天气很好。", prompt="a park")
    api = api_client_for(attacker)
    response = api.patch(f"/api/v1/jobs/{job.pk}/splits/0/", {"selected": theirs}, format="json")
    assert response.status_code == 400
    choose = client_for(attacker).post(
        reverse("admin:jobs_job_choose_image", args=[job.pk]),
        {"split": job.splits.get().pk, "key": theirs},
        content_type="application/json",
    )
    assert choose.status_code == 400
    everything = api.get(f"/api/v1/jobs/{job.pk}/").content.decode()
    assert theirs not in everything and default_storage.url(theirs) not in everything


def test_links_on_admin_pages_expire_sooner_than_the_api_links_of_the_same_file(
    attacker, settings, monkeypatch
):
    """/files/ links are bearer links. One copied out of an admin page (a screenshot, a shared screen,
    browser history) stops working after ADMIN_SIGNED_URL_EXPIRE_SECONDS; the API's links, for
    players and exports, last SIGNED_URL_EXPIRE_SECONDS."""
    settings.SIGNED_URL_EXPIRE_SECONDS = 3600
    settings.ADMIN_SIGNED_URL_EXPIRE_SECONDS = 300
    key = default_storage.save("jobs/1/pictures/000-card-1.png", ContentFile(png_bytes()))
    job = make_job(owner=attacker)
    JobSplit.objects.create(
        job=job,
        index=0,
        start_ms=0,
        end_ms=1000,
        text="今天天气很好。",
        images=[{"key": key, "seed": 1, "source": "card"}],
    )
    page = client_for(attacker).get(reverse("admin:jobs_job_storyboard", args=[job.pk]))
    [admin_link] = set(re.findall(r'/files/[^"]+', page.content.decode()))
    api_link = api_client_for(attacker).get(f"/api/v1/jobs/{job.pk}/splits/0/").json()["images"][0]["url"]
    issued = time.time()

    def status_after(seconds: float, link: str) -> int:
        monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: issued + seconds))
        return Client().get(link).status_code

    assert [status_after(60, admin_link), status_after(60, api_link)] == [200, 200]
    assert [status_after(600, admin_link), status_after(600, api_link)] == [404, 200]
    assert status_after(3700, api_link) == 404


def test_the_current_file_link_on_an_admin_change_page_expires_as_the_admin_links_do(
    attacker, settings, monkeypatch
):
    settings.ADMIN_SIGNED_URL_EXPIRE_SECONDS = 300
    clip = StockClip.objects.create(
        owner=attacker,
        team=attacker.personal_team,
        title="rain",
        file=ContentFile(b"clip bytes", name="rain.mp4"),
    )
    page = client_for(attacker).get(reverse("admin:jobs_stockclip_change", args=[clip.pk])).content.decode()
    links = set(re.findall(r'href="(/files/[^"]+)"', page))
    assert links, "the change page shows the current file"
    issued = time.time()

    def status_after(seconds: float, link: str) -> int:
        monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: issued + seconds))
        return Client().get(link).status_code

    assert {status_after(60, link) for link in links} == {200}
    assert {status_after(600, link) for link in links} == {404}
