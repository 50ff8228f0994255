"""The brand profile's one reader, with the render's defaults."""

import dataclasses

import pytest

from accounts.brand import ACCOUNT_EXTRA, HUMAN_CONFIG, Brand, Presenter, check_account_extra
from media_engine import fonts
from media_engine.subtitles import style_from_brand
from tests.factories import make_account

# A value other than the default for every documented key.
EVERY_KEY = {
    "subtitle_background": "#112233",
    "subtitle_background_opacity": 0.25,
    "subtitle_color": "#FFEE00",
    "subtitle_font": "Noto Serif CJK SC",
    "subtitle_font_size": 48,
    "transition_types": ["wipeleft", "fade"],
    "enable_transition": False,
    "transition_s": 1.5,
    "logo_corner": "bottom-left",
    "human_insertion_mode": "fullscreen",
    "human_config": {"url": "http://presenter:9000/clip", "start_s": 3, "end_s": 4.5, "corner": "top-left",
                     "scale": 0.5, "chroma_key": "#0000FF"},
}


def test_a_brand_without_a_profile_renders_as_before(settings):
    settings.PRESENTER_URL = "http://presenter.example/clip"
    brand = Brand.of(None)
    assert brand == Brand.from_extra({})
    assert brand.subtitle_background is None  # a see-through black box
    assert brand.subtitle_background_opacity == 0.6
    assert brand.subtitle_color == "#FFFFFF"
    assert brand.subtitle_font == fonts.FAMILY
    assert brand.subtitle_font_size is None  # sized to the frame
    assert brand.enable_transition is True
    assert brand.transition_types == ("fade",) and brand.transition == "fade"
    assert brand.transition_s == 0.5
    assert brand.logo_corner == "top-right"
    assert brand.human_insertion_mode == "pip"
    assert brand.human_config == Presenter(url="http://presenter.example/clip", start_s=0, end_s=0,
                                           corner="bottom-right", scale=0.3, chroma_key="#00FF00")


def test_every_documented_key_is_read():
    assert set(EVERY_KEY) == set(ACCOUNT_EXTRA)
    assert set(EVERY_KEY["human_config"]) == set(HUMAN_CONFIG)
    assert check_account_extra(EVERY_KEY) == EVERY_KEY
    brand = Brand.from_extra(EVERY_KEY)
    assert brand == Brand(
        subtitle_background="#112233", subtitle_background_opacity=0.25, subtitle_color="#FFEE00",
        subtitle_font="Noto Serif CJK SC", subtitle_font_size=48, enable_transition=False,
        transition_types=("wipeleft", "fade"), transition_s=1.5, logo_corner="bottom-left",
        human_insertion_mode="fullscreen",
        human_config=Presenter(url="http://presenter:9000/clip", start_s=3.0, end_s=4.5, corner="top-left",
                               scale=0.5, chroma_key="#0000FF"),
    )
    assert brand.transition == "none"
    assert Brand.from_extra({**EVERY_KEY, "enable_transition": True}).transition == "wipeleft"


@pytest.mark.django_db
def test_the_brand_of_an_account_is_its_profile():
    account = make_account(extra={"logo_corner": "bottom-right", "human_config": {"start_s": 2, "end_s": 5}})
    brand = Brand.of(account)
    assert brand.logo_corner == "bottom-right"
    assert (brand.human_config.start_s, brand.human_config.end_s) == (2.0, 5.0)


def test_a_brand_box_colour_is_opaque_unless_its_opacity_is_set():
    assert Brand.from_extra({"subtitle_background": "#112233"}).subtitle_background_opacity == 1.0
    assert Brand.from_extra({"subtitle_background": "#112233",
                             "subtitle_background_opacity": 0}).subtitle_background_opacity == 0.0
    assert Brand.from_extra({"subtitle_background_opacity": 0.3}).subtitle_background_opacity == 0.3


def test_empty_values_take_the_defaults():
    brand = Brand.from_extra({"transition_types": [], "subtitle_font": "", "subtitle_color": None,
                              "human_config": {}})
    assert brand.transition == "fade"
    assert brand.subtitle_font == fonts.FAMILY
    assert brand.subtitle_color == "#FFFFFF"
    assert brand.human_config.chroma_key == "#00FF00"


def test_a_null_chroma_key_switches_keying_off():
    assert Brand.from_extra({"human_config": {"chroma_key": None}}).human_config.chroma_key is None


def test_the_presenter_url_defaults_to_the_setting(settings):
    settings.PRESENTER_URL = "http://presenter.example/clip"
    brand = Brand.from_extra({"human_config": {"start_s": 1}})
    assert brand.human_config.url == "http://presenter.example/clip"
    own = Brand.from_extra({"human_config": {"url": "http://own.example/clip"}})
    assert own.human_config.url == "http://own.example/clip"


def test_undocumented_presenter_keys_do_nothing():
    """The seed's `duration`/`end_duration` were never documented; start_s/end_s are."""
    brand = Brand.from_extra({"human_config": {"duration": 120, "end_duration": 120}})
    assert (brand.human_config.start_s, brand.human_config.end_s) == (0.0, 0.0)


def test_a_brand_reads_back_from_its_own_dict():
    """Step inputs hold `dataclasses.asdict(brand)` (JSON), and the step reads it back."""
    for brand in [Brand.from_extra({}), Brand.from_extra(EVERY_KEY),
                  Brand.from_extra({"human_config": {"chroma_key": None}})]:
        assert Brand.from_extra(dataclasses.asdict(brand)) == brand


@pytest.mark.parametrize("extra", [
    {}, {"subtitle_background": "#578B2E"},
    {"subtitle_background": "#578B2E", "subtitle_background_opacity": 0.4},
    {"subtitle_color": "#FFEE00", "subtitle_font": "Noto Serif CJK SC", "subtitle_font_size": 48},
    {"subtitle_background_opacity": 0.2},
])
@pytest.mark.parametrize(("width", "height"), [(1360, 768), (768, 1360)])
def test_the_brand_subtitle_style_is_the_one_the_render_draws_today(extra, width, height):
    assert Brand.from_extra(extra).subtitle_style(width=width, height=height) == style_from_brand(
        extra, width=width, height=height)
