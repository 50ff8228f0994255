"""Languages, voices, topics and accounts: the rows jobs point at."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Account
from tests.api.conftest import png_bytes, wav_bytes
from tests.factories import make_account, make_language, make_topic, make_voice
from topics.models import Topic
from voices.models import Language, Voice

FACTORIES = {
    "languages": (
        make_language,
        {"name": "English"},
        {"code": "en-US", "name": "English", "platform": "edge"},
    ),
    "voices": (make_voice, {"name": "other"}, {"name": "zh-CN-XiaoxiaoNeural"}),
    "topics": (make_topic, {"clip_tags": "sea"}, {"name": "Nostalgia", "palette": ["#8d6e63"]}),
    "accounts": (
        make_account,
        {"area": "TW"},
        {"username": "health-tips", "extra": {"logo_corner": "top-left"}},
    ),
}
MODELS = {"languages": Language, "voices": Voice, "topics": Topic, "accounts": Account}


@pytest.mark.parametrize("resource", FACTORIES)
def test_create_list_change_delete(resource, api, member):
    make, change, create = FACTORIES[resource]
    response = api.post(f"/api/v1/{resource}/", create, format="json")
    assert response.status_code == 201, response.data
    row = MODELS[resource].objects.get(pk=response.data["id"])
    assert row.owner == member
    assert response.data["shared"] is False and response.data["owner"] == str(member.pk)
    shared = make(owner=None)
    listed = {item["id"] for item in api.get(f"/api/v1/{resource}/").data["results"]}
    assert listed == {row.pk, shared.pk}
    response = api.patch(f"/api/v1/{resource}/{row.pk}/", change, format="json")
    assert response.status_code == 200, response.data
    assert api.delete(f"/api/v1/{resource}/{row.pk}/").status_code == 204
    assert not MODELS[resource].objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("resource", FACTORIES)
def test_someone_elses_row_is_not_found(resource, api, stranger):
    make, change, _ = FACTORIES[resource]
    theirs = make(owner=stranger)
    assert api.get(f"/api/v1/{resource}/{theirs.pk}/").status_code == 404
    assert api.patch(f"/api/v1/{resource}/{theirs.pk}/", change, format="json").status_code == 404
    assert api.delete(f"/api/v1/{resource}/{theirs.pk}/").status_code == 404
    assert theirs.pk not in {item["id"] for item in api.get(f"/api/v1/{resource}/").data["results"]}


@pytest.mark.parametrize("resource", FACTORIES)
def test_shared_presets_are_read_only_except_for_superusers(resource, api, admin_api):
    make, change, _ = FACTORIES[resource]
    shared = make(owner=None)
    assert api.get(f"/api/v1/{resource}/{shared.pk}/").data["shared"] is True
    response = api.patch(f"/api/v1/{resource}/{shared.pk}/", change, format="json")
    assert response.status_code == 403
    assert "superuser" in response.data["detail"]
    assert api.delete(f"/api/v1/{resource}/{shared.pk}/").status_code == 403
    assert admin_api.patch(f"/api/v1/{resource}/{shared.pk}/", change, format="json").status_code == 200
    assert admin_api.delete(f"/api/v1/{resource}/{shared.pk}/").status_code == 204


@pytest.mark.parametrize("resource", FACTORIES)
def test_anonymous_gets_401(resource, anon_api):
    assert anon_api.get(f"/api/v1/{resource}/").status_code == 401
    assert anon_api.post(f"/api/v1/{resource}/", {}, format="json").status_code == 401


def test_language_validation(api, member):
    make_language(owner=member, code="zh-CN")
    response = api.post(
        "/api/v1/languages/", {"code": "zh-CN", "name": "again", "platform": "tiktok"}, format="json"
    )
    assert response.status_code == 400
    assert set(response.data) == {"platform"}  # field errors first; uniqueness is checked after
    response = api.post("/api/v1/languages/", {"code": "zh-CN", "name": "again"}, format="json")
    assert response.status_code == 400
    assert "already" in str(response.data["code"][0])
    response = api.post("/api/v1/languages/", {"code": "not a code!", "name": "x"}, format="json")
    assert "code" in response.data
    # The same code as a shared preset is fine: the user's own copy.
    make_language(owner=None, code="en-GB")
    assert api.post("/api/v1/languages/", {"code": "en-GB", "name": "mine"}, format="json").status_code == 201


def test_voice_language_must_be_visible(api, stranger):
    theirs = make_language(owner=stranger)
    response = api.post("/api/v1/voices/", {"name": "x", "language": theirs.pk}, format="json")
    assert response.status_code == 400
    assert response.data["language"] == [f"Language {theirs.pk} does not exist or is not yours."]
    response = api.post("/api/v1/voices/", {"name": "x", "language": "abc"}, format="json")
    assert response.status_code == 400 and "language" in response.data


def test_topic_validation(api):
    response = api.post(
        "/api/v1/topics/",
        {"name": "t", "real_clip_ratio": 1.5, "lora_weight": 500, "palette": ["#12345G"]},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.data) == {"real_clip_ratio", "lora_weight", "palette"}


def test_account_extra_is_checked_key_by_key(api):
    response = api.post(
        "/api/v1/accounts/",
        {
            "username": "c",
            "extra": {
                "subtitle_background": "green",
                "transition_types": ["fade", "spin"],
                "logo_corner": "middle",
                "human_insertion_mode": "pip",
                "human_config": {"scale": 2},
                "enable_transition": 1,
                "colour": "x",
            },
        },
        format="json",
    )
    assert response.status_code == 400
    extra = response.data["extra"]
    assert set(extra) == {
        "subtitle_background",
        "transition_types",
        "logo_corner",
        "human_config",
        "enable_transition",
        "colour",
    }
    assert "#RRGGBB" in str(extra["subtitle_background"][0])
    assert "spin" in str(extra["transition_types"][0])
    assert "Unknown key" in str(extra["colour"][0])
    response = api.post(
        "/api/v1/accounts/",
        {
            "username": "c",
            "extra": {
                "subtitle_background": "#578b2e",
                "subtitle_color": "#FFFFFF",
                "transition_types": ["fade"],
                "enable_transition": True,
                "logo_corner": "bottom-left",
                "human_insertion_mode": "fullscreen",
                "human_config": {"url": "http://presenter:9000", "scale": 0.3, "chroma_key": None},
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.data
    assert response.data["extra"]["subtitle_background"] == "#578B2E"


def test_account_username_unique_per_owner(api, member):
    make_account(owner=member, username="channel")
    response = api.post("/api/v1/accounts/", {"username": "channel"}, format="json")
    assert response.status_code == 400 and "username" in response.data


def test_logo_upload(api, member):
    account = make_account(owner=member)
    response = api.post(
        f"/api/v1/accounts/{account.pk}/logo/",
        {"file": SimpleUploadedFile("logo.exe", png_bytes(image_format="WEBP"), "image/webp")},
        format="multipart",
    )
    assert response.status_code == 200, response.data
    account.refresh_from_db()
    assert account.logo.name.endswith(".webp") and "logo" not in account.logo.name.split("/")[-1]
    assert response.data["logo_url"].startswith("/files/")
    response = api.post(
        f"/api/v1/accounts/{account.pk}/logo/",
        {"file": SimpleUploadedFile("logo.gif", b"GIF89a....", "image/gif")},
        format="multipart",
    )
    assert response.status_code == 400 and "image/gif" in str(response.data["file"][0])


def test_logo_of_shared_or_foreign_account(api, stranger):
    shared, theirs = make_account(owner=None), make_account(owner=stranger)
    file = {"file": ContentFile(png_bytes(), name="l.png")}
    assert api.post(f"/api/v1/accounts/{shared.pk}/logo/", file, format="multipart").status_code == 403
    file = {"file": ContentFile(png_bytes(), name="l.png")}
    assert api.post(f"/api/v1/accounts/{theirs.pk}/logo/", file, format="multipart").status_code == 404


def test_voice_reference_upload_is_probed(api, member):
    voice = make_voice(owner=member)
    response = api.post(
        f"/api/v1/voices/{voice.pk}/reference/",
        {"file": SimpleUploadedFile("me.wav", wav_bytes(), "audio/wav")},
        format="multipart",
    )
    assert response.status_code == 200, response.data
    voice.refresh_from_db()
    assert voice.reference.name.endswith(".wav") and "me" not in voice.reference.name.split("/")[-1]
    response = api.post(
        f"/api/v1/voices/{voice.pk}/reference/",
        {"file": SimpleUploadedFile("me.wav", b"RIFF not really", "audio/wav")},
        format="multipart",
    )
    assert response.status_code == 400 and "file" in response.data
    response = api.post(
        f"/api/v1/voices/{voice.pk}/reference/",
        {"file": SimpleUploadedFile("pic.png", png_bytes(), "image/png")},
        format="multipart",
    )
    assert response.status_code == 400


def test_voice_reference_size_limit(api, member):
    voice = make_voice(owner=member)
    big = SimpleUploadedFile("big.wav", b"0" * (20 * 1024 * 1024 + 1), "audio/wav")
    response = api.post(f"/api/v1/voices/{voice.pk}/reference/", {"file": big}, format="multipart")
    assert response.status_code == 400 and "20 MB" in str(response.data["file"][0])
