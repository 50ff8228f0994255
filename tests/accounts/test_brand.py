"""The brand profile: one reader with the render's defaults, and one set of checks for admin and API."""

import dataclasses

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.brand import ACCOUNT_EXTRA, HUMAN_CONFIG, Brand, Presenter, check_account_extra
from media_engine import fonts
from media_engine.subtitles import KaraokeStyle
from tests.admin.conftest import client_for as admin_client_for
from tests.admin.conftest import make_operator
from tests.api.conftest import client_for as api_client_for
from tests.factories import make_account

# A value other than the default for every documented key.
EVERY_KEY = {
    "subtitle_background": "#112233",
    "subtitle_background_opacity": 0.25,
    "subtitle_color": "#FFEE00",
    "subtitle_font": "Noto Serif CJK SC",
    "subtitle_font_size": 48,
    "subtitle_karaoke": {"color": "#00FFAA", "scale": 1.2, "box": "#330000"},
    "transition_types": ["wipeleft", "fade"],
    "enable_transition": True,
    "enable_srt_concat_transition": True,
    "srt_concat_transition_types": ["dissolve"],
    "transition_s": 1.5,
    "logo_corner": "bottom-left",
    "logo_scale": 0.2,
    "logo_margin": 0.05,
    "music_volume": 0.3,
    "video_crf": 20,
    "video_preset": "fast",
    "renditions": ["16:9", "9:16"],
    "keep_plain_video": True,
    "human_insertion_mode": "pip",
    "human_config": {
        "url": "http://presenter:9000/clip",
        "start_s": 3,
        "end_s": 4.5,
        "corner": "top-left",
        "scale": 0.5,
        "chroma_key": "#0000FF",
    },
    "burn_subtitles": False,
    "loudness_lufs": -16.5,
}


def test_a_brand_without_a_profile_takes_the_seeds_defaults(settings):
    settings.PRESENTER_URL = "http://presenter.example/clip"
    settings.VIDEO_PRESET = "faster"
    brand = Brand.of(None)
    assert brand == Brand.from_extra({})
    assert brand.subtitle_background is None  # a see-through black box
    assert brand.subtitle_background_opacity == 0.6
    assert brand.subtitle_color == "#FFFFFF"
    assert brand.subtitle_font == fonts.FAMILY
    assert brand.subtitle_font_size is None  # sized to the frame
    assert brand.subtitle_karaoke is None  # no word highlighting
    # The seed: no transitions unless switched on, a fullscreen presenter for the first and last 120 s.
    assert brand.enable_transition is False and brand.enable_srt_concat_transition is False
    assert brand.transition_types == ("fade",) and brand.srt_concat_transition_types == ("fade",)
    assert brand.transitions(["segment", "cue", "segment"], seed=1) == ("none", "none", "none")
    assert brand.transition_s == 0.5
    assert (brand.logo_corner, brand.logo_scale, brand.logo_margin) == ("top-right", 0.12, 0.03)
    assert brand.music_volume == 0.15
    assert (brand.video_crf, brand.video_preset) == (23, "faster")  # the hosts' VIDEO_PRESET
    assert brand.renditions == () and brand.keep_plain_video is False
    assert brand.human_insertion_mode == "fullscreen"
    assert brand.burn_subtitles is True and brand.loudness_lufs == -14.0
    assert brand.human_config == Presenter(
        url="http://presenter.example/clip",
        start_s=120,
        end_s=120,
        corner="bottom-right",
        scale=0.3,
        chroma_key="#00FF00",
    )


def test_every_documented_key_is_read(settings):
    settings.PRESENTER_URL = "http://presenter:9000/clip"
    assert set(EVERY_KEY) == set(ACCOUNT_EXTRA)
    assert set(EVERY_KEY["human_config"]) == set(HUMAN_CONFIG)
    assert check_account_extra(EVERY_KEY) == EVERY_KEY
    brand = Brand.from_extra(EVERY_KEY)
    assert brand == Brand(
        subtitle_background="#112233",
        subtitle_background_opacity=0.25,
        subtitle_color="#FFEE00",
        subtitle_font="Noto Serif CJK SC",
        subtitle_font_size=48,
        subtitle_karaoke=KaraokeStyle(color="#00FFAA", scale=1.2, box="#330000"),
        enable_transition=True,
        transition_types=("wipeleft", "fade"),
        enable_srt_concat_transition=True,
        srt_concat_transition_types=("dissolve",),
        transition_s=1.5,
        logo_corner="bottom-left",
        logo_scale=0.2,
        logo_margin=0.05,
        music_volume=0.3,
        video_crf=20,
        video_preset="fast",
        renditions=("16:9", "9:16"),
        keep_plain_video=True,
        human_insertion_mode="pip",
        human_config=Presenter(
            url="http://presenter:9000/clip",
            start_s=3.0,
            end_s=4.5,
            corner="top-left",
            scale=0.5,
            chroma_key="#0000FF",
        ),
        burn_subtitles=False,
        loudness_lufs=-16.5,
    )
    joins = ["segment", "cue", "cue", "segment", "segment", "segment"]
    picked = brand.transitions(joins, seed=3)
    assert picked[1:3] == ("dissolve", "dissolve")  # subtitle joins draw from their own list
    segment_joins = [picked[0], *picked[3:]]
    assert set(segment_joins) == {"wipeleft", "fade"}  # the list rotates: not only its first name
    assert all(a != b for a, b in zip(segment_joins, segment_joins[1:]))
    assert picked == brand.transitions(joins, seed=3)  # reproducible for the job
    off = Brand.from_extra({**EVERY_KEY, "enable_transition": False, "enable_srt_concat_transition": False})
    assert off.transitions(joins, seed=3) == ("none",) * 6


@pytest.mark.django_db
def test_the_brand_of_an_account_is_its_profile():
    account = make_account(extra={"logo_corner": "bottom-right", "human_config": {"start_s": 2, "end_s": 5}})
    brand = Brand.of(account)
    assert brand.logo_corner == "bottom-right"
    assert (brand.human_config.start_s, brand.human_config.end_s) == (2.0, 5.0)


def test_a_brand_box_colour_is_opaque_unless_its_opacity_is_set():
    assert Brand.from_extra({"subtitle_background": "#112233"}).subtitle_background_opacity == 1.0
    assert (
        Brand.from_extra(
            {"subtitle_background": "#112233", "subtitle_background_opacity": 0}
        ).subtitle_background_opacity
        == 0.0
    )
    assert Brand.from_extra({"subtitle_background_opacity": 0.3}).subtitle_background_opacity == 0.3


def test_empty_values_take_the_defaults():
    brand = Brand.from_extra(
        {"transition_types": [], "subtitle_font": "", "subtitle_color": None, "human_config": {}}
    )
    assert brand.transition_types == ("fade",)
    assert brand.subtitle_font == fonts.FAMILY
    assert brand.subtitle_color == "#FFFFFF"
    assert brand.human_config.chroma_key == "#00FF00"


def test_a_null_chroma_key_switches_keying_off():
    assert Brand.from_extra({"human_config": {"chroma_key": None}}).human_config.chroma_key is None


def test_the_presenter_url_is_always_the_hosts_setting_never_the_brands(settings):
    settings.PRESENTER_URL = "http://presenter.example/clip"
    brand = Brand.from_extra({"human_config": {"start_s": 1}})
    assert brand.human_config.url == "http://presenter.example/clip"
    # A brand profile must not point render workers at an address of its choosing.
    own = Brand.from_extra({"human_config": {"url": "http://169.254.169.254/latest/meta-data/"}})
    assert own.human_config.url == "http://presenter.example/clip"


def test_undocumented_presenter_keys_are_refused_by_name_and_never_read():
    """The seed's `duration`/`end_duration` are start_s/end_s here: one contract, refused by name."""
    brand = Brand.from_extra({"human_config": {"duration": 5, "end_duration": 6}})
    assert (brand.human_config.start_s, brand.human_config.end_s) == (120.0, 120.0)
    with pytest.raises(ValidationError) as refused:
        check_account_extra({"human_config": {"duration": 5, "end_duration": 6, "start_s": 5}})
    assert refused.value.message_dict["human_config"] == [
        "Unknown key(s) 'duration', 'end_duration'; the keys are url, start_s, end_s, corner, scale, chroma_key."
    ]


def test_karaoke_is_on_with_the_key_and_takes_its_defaults():
    assert Brand.from_extra({"subtitle_karaoke": {}}).subtitle_karaoke == KaraokeStyle(
        color="#FFD400", scale=1.0, box=None
    )
    assert Brand.from_extra({"subtitle_karaoke": None}).subtitle_karaoke is None
    assert Brand.from_extra({"subtitle_karaoke": {"color": "#123456"}}).subtitle_karaoke.color == "#123456"


def test_a_brand_reads_back_from_its_own_dict():
    """Step inputs hold `dataclasses.asdict(brand)` (JSON), and the step reads it back."""
    for brand in [
        Brand.from_extra({}),
        Brand.from_extra(EVERY_KEY),
        Brand.from_extra({"subtitle_karaoke": {}}),
        Brand.from_extra({"human_config": {"chroma_key": None}}),
    ]:
        assert Brand.from_extra(dataclasses.asdict(brand)) == brand


# --- the admin and the API refuse the same values with the same words ---------------------------


@pytest.fixture
def operator(db):
    cache.clear()  # API throttle counts
    yield make_operator()
    cache.clear()


def admin_form(**brand) -> dict:
    data = {
        "username": "mine",
        "platform": "youtube",
        "area": "",
        "subtitle_color": "#ffffff",
        "subtitle_background": "#000000",
    }
    data.update(brand)
    return data


@pytest.mark.parametrize(
    ("name", "typed", "value", "message"),
    [
        ("subtitle_background_opacity", "2", 2, "Must be a number from 0 to 1."),
        ("subtitle_font_size", "4", 4, "Must be a whole number from 8 to 400."),
        ("subtitle_font_size", "48.5", 48.5, "Must be a whole number from 8 to 400."),
        ("subtitle_font_size", "big", "big", "Must be a whole number from 8 to 400."),
        ("subtitle_color", "red", "red", "Must be a colour of the form #RRGGBB."),
        ("subtitle_font", "x" * 256, "x" * 256, "At most 255 characters are allowed."),
        ("transition_s", "9", 9, "Must be a number from 0 to 5."),
        ("transition_types", ["spin"], ["spin"], "Unknown value(s) 'spin'; use names like"),
        ("logo_corner", "center", "center", "Must be one of top-left, top-right, bottom-left, bottom-right."),
        ("human_insertion_mode", "corner", "corner", "Must be one of fullscreen, pip."),
        ("logo_scale", "0.9", 0.9, "Must be a number from 0.02 to 0.4."),
        ("logo_margin", "-0.1", -0.1, "Must be a number from 0 to 0.2."),
        ("music_volume", "1.5", 1.5, "Must be a number from 0 to 1."),
        ("video_crf", "51", 51, "Must be a whole number from 16 to 32."),
        (
            "video_preset",
            "placebo",
            "placebo",
            "Must be one of ultrafast, superfast, veryfast, faster, fast, medium",
        ),
        ("renditions", ["4:3"], ["4:3"], "Unknown value(s) '4:3'; use names like 16:9, 9:16."),
        ("srt_concat_transition_types", ["spin"], ["spin"], "Unknown value(s) 'spin'; use names like"),
        (
            "human_config",
            '{"duration": 120}',
            {"duration": 120},
            "Unknown key(s) 'duration'; the keys are url,",
        ),
        ("human_config", '{"corner": "middle"}', {"corner": "middle"}, "corner: Must be one of top-left"),
        ("human_config", '{"scale": 0}', {"scale": 0}, "scale: Must be a number above 0 to 1."),
        ("human_config", '{"start_s": -1}', {"start_s": -1}, "start_s: Must be a number from 0 to 3600."),
        (
            "human_config",
            '{"chroma_key": "green"}',
            {"chroma_key": "green"},
            "chroma_key: Must be a colour of the form #RRGGBB.",
        ),
        (
            "subtitle_karaoke",
            '{"color": "yellow"}',
            {"color": "yellow"},
            "color: Must be a colour of the form #RRGGBB.",
        ),
        ("subtitle_karaoke", '{"scale": 3}', {"scale": 3}, "scale: Must be a number from 1 to 1.5."),
        ("subtitle_karaoke", '"on"', "on", "Must be a JSON object."),
        ("loudness_lufs", "-5", -5, "Must be a number from -30 to -9."),
        ("loudness_lufs", "loud", "loud", "Must be a number from -30 to -9."),
    ],
)
def test_the_admin_and_the_api_refuse_a_bad_brand_value_with_the_same_words(
    operator, name, typed, value, message
):
    account = make_account(owner=operator, username="mine", extra={"logo_corner": "top-left"})

    page = admin_client_for(operator).post(
        reverse("admin:accounts_account_change", args=[account.pk]), admin_form(**{name: typed})
    )
    assert page.status_code == 200
    admin_messages = page.context["adminform"].form.errors[name]

    response = api_client_for(operator).patch(
        f"/api/v1/accounts/{account.pk}/", {"extra": {name: value}}, format="json"
    )
    assert response.status_code == 400
    api_messages = [str(text) for text in response.data["extra"][name]]

    assert admin_messages == api_messages
    assert len(api_messages) == 1 and api_messages[0].startswith(message)
    account.refresh_from_db()
    assert account.extra == {"logo_corner": "top-left"}


def test_the_admin_form_offers_every_brand_key(operator):
    account = make_account(owner=operator, username="mine", extra=EVERY_KEY)
    page = admin_client_for(operator).get(reverse("admin:accounts_account_change", args=[account.pk]))
    form = page.context["adminform"].form
    assert set(ACCOUNT_EXTRA) <= set(form.fields)
    assert {name: form.initial[name] for name in ACCOUNT_EXTRA} == EVERY_KEY


def test_the_admin_saves_every_brand_key(operator):
    account = make_account(owner=operator, username="mine")
    typed = {
        **{name: str(value) for name, value in EVERY_KEY.items()},
        "subtitle_background_custom": "on",
        "transition_types": EVERY_KEY["transition_types"],
        "enable_transition": "true",
        "srt_concat_transition_types": EVERY_KEY["srt_concat_transition_types"],
        "enable_srt_concat_transition": "true",
        "keep_plain_video": "true",
        "renditions": EVERY_KEY["renditions"],
        "burn_subtitles": "false",
        "human_config": '{"url": "http://presenter:9000/clip", "start_s": 3, "end_s": 4.5, '
        '"corner": "top-left", "scale": 0.5, "chroma_key": "#0000FF"}',
        "subtitle_karaoke": '{"color": "#00FFAA", "scale": 1.2, "box": "#330000"}',
    }
    response = admin_client_for(operator).post(
        reverse("admin:accounts_account_change", args=[account.pk]), admin_form(**typed)
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    account.refresh_from_db()
    assert account.extra == EVERY_KEY
    assert Brand.of(account) == Brand.from_extra(EVERY_KEY)
