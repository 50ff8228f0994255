import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Account
from jobs.models import StockClip
from tests.admin.conftest import client_for
from tests.api.conftest import wav_bytes
from tests.factories import make_account, make_topic, make_voice
from topics.models import Topic

pytestmark = pytest.mark.django_db


def account_form(**brand):
    data = {
        "username": "mine",
        "platform": "youtube",
        "area": "",
        "subtitle_background": "#112233",
        "subtitle_background_custom": "on",
        "subtitle_color": "#ffffff",
        "subtitle_background_opacity": "0.5",
        "subtitle_font": "",
        "subtitle_font_size": "48",
        "enable_transition": "true",
        "transition_types": ["fade"],
        "transition_s": "0.5",
        "logo_corner": "top-right",
        "human_insertion_mode": "pip",
        "human_config": '{"start_s": 3, "chroma_key": null}',
    }
    data.update(brand)
    return data


def test_account_brand_profile_form_saves_extra(operator):
    account = make_account(owner=operator, username="mine", extra={"human_insertion_mode": "pip"})
    client = client_for(operator)
    page = client.get(reverse("admin:accounts_account_change", args=[account.pk])).content.decode()
    assert 'type="color"' in page and "Brand profile" in page
    response = client.post(reverse("admin:accounts_account_change", args=[account.pk]), account_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    account.refresh_from_db()
    assert account.extra == {
        "human_insertion_mode": "pip",
        "subtitle_background": "#112233",
        "subtitle_color": "#FFFFFF",
        "subtitle_background_opacity": 0.5,
        "subtitle_font_size": 48,
        "enable_transition": True,
        "transition_types": ["fade"],
        "transition_s": 0.5,
        "logo_corner": "top-right",
        "human_config": {"start_s": 3, "chroma_key": None},
    }


def test_account_without_own_box_colour_keeps_the_default(operator):
    account = make_account(owner=operator, username="mine")
    data = account_form()
    del data["subtitle_background_custom"]
    client_for(operator).post(reverse("admin:accounts_account_change", args=[account.pk]), data)
    account.refresh_from_db()
    assert "subtitle_background" not in account.extra and account.extra["subtitle_color"] == "#FFFFFF"


def test_account_brand_profile_rejects_bad_colour(operator):
    account = make_account(owner=operator, username="mine")
    response = client_for(operator).post(
        reverse("admin:accounts_account_change", args=[account.pk]), account_form(subtitle_color="red")
    )
    assert response.status_code == 200
    assert "#RRGGBB" in response.content.decode()


def test_account_logo_preview(operator):
    account = make_account(owner=operator)
    account.logo.save("logo.png", ContentFile(b"png"))
    html = client_for(operator).get(reverse("admin:accounts_account_changelist")).content.decode()
    assert 'alt="logo"' in html


def test_shared_preset_is_read_only_for_operators(operator, superuser):
    shared = make_account(username="shared")
    url = reverse("admin:accounts_account_change", args=[shared.pk])
    response = client_for(operator).post(url, account_form(username="hijacked"))
    assert response.status_code == 403
    shared.refresh_from_db()
    assert shared.username == "shared"
    response = client_for(superuser).post(url, {**account_form(username="renamed"), "owner": ""})
    assert response.status_code == 302
    shared.refresh_from_db()
    assert shared.username == "renamed"


def test_shared_topic_cannot_be_deleted_by_operator(operator):
    topic = make_topic()
    assert (
        client_for(operator)
        .post(reverse("admin:topics_topic_delete", args=[topic.pk]), {"post": "yes"})
        .status_code
        == 403
    )
    assert Topic.objects.filter(pk=topic.pk).exists()


def test_voice_page_plays_reference_audio(operator):
    voice = make_voice(owner=operator)
    voice.reference.save("ref.wav", ContentFile(b"RIFF"))
    html = client_for(operator).get(reverse("admin:voices_voice_change", args=[voice.pk])).content.decode()
    assert "<audio controls" in html and "/files/" in html


def test_voice_form_refuses_a_reference_that_is_not_audio_in_the_api_words(operator):
    voice = make_voice(owner=operator)
    page = ("x.html", b"<html>not audio</html>", "text/html")
    api = APIClient()
    api.force_authenticate(operator)
    api_response = api.post(
        f"/api/v1/voices/{voice.pk}/reference/", {"file": SimpleUploadedFile(*page)}, format="multipart"
    )
    assert api_response.status_code == 400

    response = client_for(operator).post(
        reverse("admin:voices_voice_change", args=[voice.pk]),
        {"name": voice.name, "language": "", "reference": SimpleUploadedFile(*page)},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["reference"] == [
        str(m) for m in api_response.data["file"]
    ]
    voice.refresh_from_db()
    assert not voice.reference


def test_voice_form_stores_audio_reference_under_a_generated_name(operator):
    voice = make_voice(owner=operator)
    response = client_for(operator).post(
        reverse("admin:voices_voice_change", args=[voice.pk]),
        {
            "name": voice.name,
            "language": "",
            "reference": SimpleUploadedFile("my voice.wav", wav_bytes(), "audio/wav"),
        },
    )

    assert response.status_code == 302
    voice.refresh_from_db()
    assert voice.reference.name.startswith("voices/references/") and "voice.wav" not in voice.reference.name


def test_topic_palette_as_comma_list(operator):
    topic = make_topic(owner=operator)
    url = reverse("admin:topics_topic_change", args=[topic.pk])
    client = client_for(operator)
    assert "#1F3A5F, #4D7EA8, #F2E8CF" in client.get(url).content.decode()
    data = {
        "name": topic.name,
        "palette": "#000000, #abcdef",
        "real_clip_ratio": "0.4",
        "lora_weight": "100",
        "extra": "{}",
    }
    assert client.post(url, data).status_code == 302
    topic.refresh_from_db()
    assert (topic.palette, topic.real_clip_ratio) == (["#000000", "#ABCDEF"], 0.4)
    response = client.post(url, {**data, "palette": "#000000, blue"})
    assert "Not colours" in response.content.decode()


def test_stock_clip_list_has_video_preview(operator):
    StockClip.objects.create(
        owner=operator, team=operator.personal_team, file="clips/sea.mp4", title="Sea", tags="sea,landscape"
    )
    html = client_for(operator).get(reverse("admin:jobs_stockclip_changelist")).content.decode()
    assert "<video" in html and "sea,landscape" in html


def test_operator_sees_own_and_shared_accounts_only(operator, other_operator):
    make_account(username="shared-one")
    make_account(username="mine", owner=operator)
    make_account(username="theirs", owner=other_operator)
    response = client_for(operator).get(reverse("admin:accounts_account_changelist"))
    assert sorted(a.username for a in response.context["cl"].result_list) == ["mine", "shared-one"]
    assert Account.objects.count() == 3
