"""Finding: "a deleted Voice's reference audio stays in storage forever" (so does an Account's logo,
a StockClip's file, and a file replaced by a new upload)."""

import io
import wave

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from jobs.models import StockClip
from tests.admin.conftest import client_for
from tests.api.conftest import client_for as api_client_for
from tests.api.conftest import png_bytes, wav_bytes
from tests.factories import make_account, make_voice

pytestmark = pytest.mark.django_db


def voice_with_reference(owner):
    voice = make_voice(owner=owner)
    voice.reference.save("reference.wav", ContentFile(wav_bytes()), save=True)
    return voice


def account_with_logo(owner):
    account = make_account(owner=owner)
    account.logo.save("logo.png", ContentFile(png_bytes()), save=True)
    return account


def clip_with_file(owner):
    clip = StockClip(owner=owner, team=owner.personal_team, title="sea")
    clip.file.save("sea.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42"), save=True)
    return clip


@pytest.mark.parametrize(
    "make, field, page",
    [
        (voice_with_reference, "reference", "admin:voices_voice_delete"),
        (account_with_logo, "logo", "admin:accounts_account_delete"),
        (clip_with_file, "file", "admin:jobs_stockclip_delete"),
    ],
    ids=["voice-reference", "account-logo", "clip"],
)
def test_deleted_rows_file_leaves_storage(attacker, make, field, page, django_capture_on_commit_callbacks):
    row = make(attacker)
    key = getattr(row, field).name
    assert default_storage.exists(key)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(attacker).post(reverse(page, args=[row.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not type(row).objects.filter(pk=row.pk).exists()
    assert not default_storage.exists(key)


def test_deleted_rows_file_stays_while_another_row_names_it(attacker, django_capture_on_commit_callbacks):
    voice = voice_with_reference(attacker)
    twin = make_voice(owner=attacker, reference=voice.reference.name)
    with django_capture_on_commit_callbacks(execute=True):
        voice.delete()
    assert default_storage.exists(twin.reference.name)


def test_deleted_rows_file_replaced_by_a_new_upload_leaves_storage(
    attacker, django_capture_on_commit_callbacks
):
    voice = voice_with_reference(attacker)
    old = voice.reference.name
    audio = io.BytesIO()
    with wave.open(audio, "wb") as writer:
        writer.setnchannels(1), writer.setsampwidth(2), writer.setframerate(8000)
        writer.writeframes(b"\x00\x02" * 1600)
    audio.seek(0)
    audio.name = "new.wav"
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(attacker).post(
            f"/api/v1/voices/{voice.pk}/reference/", {"file": audio}, format="multipart"
        )
    assert response.status_code == 200
    voice.refresh_from_db()
    assert voice.reference.name != old and default_storage.exists(voice.reference.name)
    assert not default_storage.exists(old)
