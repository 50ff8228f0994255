"""An account's brand profile (`Account.extra`): its keys, their checks and the one reader.

The API (`accounts.api.serializers`) and the admin (`accounts.forms`) write the profile through
`check_account_extra`; the render reads it only through `Brand.of(account)` /
`Brand.from_extra(extra)`, whose dataclass fields hold every default. A key the profile does not
set takes its default here and nowhere else.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from media_engine import audio, fonts, subtitles
from media_engine.compose import LOGO_CORNERS, XFADE_TRANSITIONS, pick_transitions
from media_engine.layout import FRAME_NAMES

from .extra_keys import (
    Key,
    boolean,
    check_extra,
    choice,
    colour,
    integer,
    json_object,
    json_schema,
    matching,
    number,
    string_list,
    text,
)
from .models import Account

TRANSITIONS = ("none", *sorted(XFADE_TRANSITIONS))
# A font family name goes into the subtitle file's style line as one comma-separated field: a comma, a
# line break or a brace would rewrite the line (or add lines), so only name characters pass.
FONT_FAMILY = re.compile(r"\A\w[\w -]*\Z")
INSERTION_MODES = ("fullscreen", "pip")
# x264 presets a render host can afford: the slower ones take many times the render's time.
VIDEO_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow")

HUMAN_CONFIG: dict[str, Key] = {
    "url": text(
        "Kept for the seed's profiles and not used: the presenter server is always the hosts' "
        "PRESENTER_URL, so a brand profile cannot point render workers at another address.",
        max_length=2000,
    ),
    "start_s": number(
        "Seconds shown at the start (the seed's duration); start_s and end_s both 0: always.",
        minimum=0,
        maximum=3600,
    ),
    "end_s": number("Seconds shown at the end (the seed's end_duration).", minimum=0, maximum=3600),
    "corner": choice("Corner of the picture-in-picture.", LOGO_CORNERS),
    "scale": number(
        "Width of the picture-in-picture as a share of the frame.",
        minimum=0,
        maximum=1,
        exclusive_minimum=True,
    ),
    "chroma_key": colour("Background colour keyed out of the presenter clip (null: none).", nullable=True),
}

KARAOKE_CONFIG: dict[str, Key] = {
    "color": colour("Colour of the spoken word."),
    "scale": number("Size of the spoken word, as a multiple of the font size.", minimum=1, maximum=1.5),
    "box": colour("Colour of a box behind the spoken word (null: none).", nullable=True),
}

ACCOUNT_EXTRA: dict[str, Key] = {
    "subtitle_background": colour("Subtitle box colour."),
    "subtitle_background_opacity": number("Subtitle box opacity.", minimum=0, maximum=1),
    "subtitle_color": colour("Subtitle text colour."),
    "subtitle_font": matching(
        "Subtitle font family, e.g. Noto Sans CJK SC: letters (of any script), digits, spaces, - and _.",
        FONT_FAMILY,
        "Must be a font family name: letters, digits, spaces, - and _.",
        max_length=255,
    ),
    "subtitle_font_size": integer("Subtitle font size in pixels.", minimum=8, maximum=400),
    "subtitle_karaoke": json_object(
        "Karaoke captions: the spoken word highlighted, where the voice gives word times (absent or "
        "null: off). color: the word's colour (default #FFD400); scale: its size, 1 to 1.5 (default 1); "
        "box: a colour for a box of its own behind it (default none).",
        KARAOKE_CONFIG,
    ),
    "transition_types": string_list(
        "Transitions between segments (ffmpeg xfade names): each join takes one of them at random, "
        "reproducibly for the job, never the same twice in a row.",
        TRANSITIONS,
    ),
    "enable_transition": boolean("Whether segments change with a transition."),
    "enable_srt_concat_transition": boolean(
        "Whether a still also changes its framing, with a transition, where one subtitle sentence ends and the "
        "next begins inside its segment (the seed's transitions at subtitle joins)."
    ),
    "srt_concat_transition_types": string_list(
        "Transitions at those subtitle joins (ffmpeg xfade names), picked like transition_types.", TRANSITIONS
    ),
    "transition_s": number("Length of a transition in seconds.", minimum=0, maximum=5),
    "logo_corner": choice("Where the logo goes.", LOGO_CORNERS),
    "logo_scale": number("Logo width as a share of the frame width.", minimum=0.02, maximum=0.4),
    "logo_margin": number(
        "Space between the logo and the frame edges, as a share of the frame's shorter side.",
        minimum=0,
        maximum=0.2,
    ),
    "music_volume": number(
        "Background music level under the voice (1: as recorded; ducked further while the voice speaks).",
        minimum=0,
        maximum=1,
    ),
    "video_crf": integer("x264 quality (CRF): lower is better and larger.", minimum=16, maximum=32),
    "video_preset": choice("x264 preset: slower is smaller at the same quality.", VIDEO_PRESETS),
    "renditions": string_list(
        "Frames rendered from the one storyboard besides the job's own: 16:9 (long-form) and/or 9:16 "
        "(Shorts; a horizontal picture over a blurred fill), each stored and linked.",
        FRAME_NAMES,
    ),
    "keep_plain_video": boolean("Also store each video without the logo (the seed's plain video)."),
    "human_insertion_mode": choice("How the presenter (digital human) is shown.", INSERTION_MODES),
    "human_config": json_object("Presenter settings.", HUMAN_CONFIG),
    "burn_subtitles": boolean(
        "Whether subtitles are burned into the video (SRT and WebVTT files are made "
        "either way); a job's own burn_subtitles overrides it."
    ),
    "loudness_lufs": number(
        "Integrated loudness of the final mix in LUFS (platforms play at about -14); "
        "its true peak stays at or below -1 dBTP.",
        minimum=audio.MIN_LOUDNESS_LUFS,
        maximum=audio.MAX_LOUDNESS_LUFS,
    ),
}


def check_account_extra(extra: Any) -> dict[str, Any]:
    return check_extra(extra, ACCOUNT_EXTRA)


ACCOUNT_EXTRA_JSON_SCHEMA = json_schema(
    ACCOUNT_EXTRA, "An account's brand profile; unknown keys are rejected."
)

# Without a brand colour the subtitle box is a see-through black; a brand colour is meant to be
# seen as it is, so its opacity defaults to 1.
NEUTRAL_BOX_COLOUR = "#000000"
NEUTRAL_BOX_OPACITY = 0.6
BRAND_BOX_OPACITY = 1.0


def _karaoke(config: Any) -> subtitles.KaraokeStyle | None:
    """`subtitle_karaoke` as stored (or as `dataclasses.asdict` writes it): an object switches it on."""
    if not isinstance(config, Mapping):
        return None
    return subtitles.KaraokeStyle(
        **{
            name: read(config[name])
            for name, read in (("color", str), ("scale", float), ("box", str))
            if config.get(name) not in UNSET
        }
    )


def _font_family(font: Any) -> str:
    """A profile stored before FONT_FAMILY was checked must not rewrite the style line either."""
    return font if isinstance(font, str) and FONT_FAMILY.match(font) else fonts.FAMILY


# How each stored key becomes a Brand / Presenter field (of the same name).
UNSET = (None, "", [], ())
BRAND_READERS: dict[str, Callable[[Any], Any]] = {
    "subtitle_background": str,
    "subtitle_background_opacity": float,
    "subtitle_color": str,
    "subtitle_font": _font_family,
    "subtitle_font_size": int,
    "subtitle_karaoke": _karaoke,
    "enable_transition": bool,
    "transition_types": tuple,
    "enable_srt_concat_transition": bool,
    "srt_concat_transition_types": tuple,
    "transition_s": float,
    "logo_corner": str,
    "logo_scale": float,
    "logo_margin": float,
    "music_volume": float,
    "video_crf": int,
    "video_preset": str,
    "renditions": tuple,
    "keep_plain_video": bool,
    "human_insertion_mode": str,
    "burn_subtitles": bool,
    "loudness_lufs": float,
}
PRESENTER_READERS: dict[str, Callable[[Any], Any]] = {
    "start_s": float,
    "end_s": float,
    "corner": str,
    "scale": float,
}


def _read(extra: Mapping[str, Any], readers: dict[str, Callable[[Any], Any]]) -> dict[str, Any]:
    return {name: read(extra[name]) for name, read in readers.items() if extra.get(name) not in UNSET}


@dataclass(frozen=True)
class Presenter:
    """`human_config`: where and when the presenter (digital human) clip is shown."""

    url: str = ""  # always the hosts' PRESENTER_URL (see HUMAN_CONFIG["url"])
    # Shown during the first start_s and the last end_s seconds (both 0: always); the seed's 120 s each.
    start_s: float = 120.0
    end_s: float = 120.0
    corner: str = "bottom-right"  # of the picture-in-picture
    scale: float = 0.3  # picture-in-picture width as a share of the frame width
    chroma_key: str | None = "#00FF00"  # background colour keyed out; None: no keying


@dataclass(frozen=True)
class Brand:
    """An account's brand profile with every key read and every default filled in."""

    subtitle_background: str | None = None  # None: a see-through black box
    subtitle_background_opacity: float = NEUTRAL_BOX_OPACITY
    subtitle_color: str = "#FFFFFF"
    subtitle_font: str = fonts.FAMILY
    subtitle_font_size: int | None = None  # None: sized to the frame (media_engine.subtitles)
    subtitle_karaoke: subtitles.KaraokeStyle | None = None  # None: captions without word highlighting
    enable_transition: bool = False  # the seed's default
    transition_types: tuple[str, ...] = ("fade",)
    enable_srt_concat_transition: bool = False
    srt_concat_transition_types: tuple[str, ...] = ("fade",)
    transition_s: float = 0.5
    logo_corner: str = "top-right"
    logo_scale: float = 0.12
    logo_margin: float = 0.03
    music_volume: float = 0.15
    video_crf: int = 23
    video_preset: str = ""  # "": the hosts' VIDEO_PRESET (filled in by from_extra)
    renditions: tuple[str, ...] = ()
    keep_plain_video: bool = False
    human_insertion_mode: str = "fullscreen"  # the seed's default
    human_config: Presenter = field(default_factory=Presenter)
    burn_subtitles: bool = True
    loudness_lufs: float = audio.DEFAULT_LOUDNESS_LUFS

    @classmethod
    def of(cls, account: Account | None) -> "Brand":
        """The brand of a job's account; a job without an account gets the defaults."""
        return cls.from_extra((account.extra or {}) if account else {})

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> "Brand":
        """Read a brand profile as `check_account_extra` lets it be stored, or as `dataclasses.asdict`
        writes a Brand. Unset and empty values take the defaults; unknown keys are ignored."""
        values = _read(extra, BRAND_READERS)
        values.setdefault("video_preset", settings.VIDEO_PRESET)
        if values.get("subtitle_background") and "subtitle_background_opacity" not in values:
            values["subtitle_background_opacity"] = BRAND_BOX_OPACITY
        config = extra.get("human_config") or {}
        presenter = _read(config, PRESENTER_READERS)
        presenter["url"] = settings.PRESENTER_URL
        if "chroma_key" in config:
            presenter["chroma_key"] = config["chroma_key"] or None  # null switches keying off
        return cls(**values, human_config=Presenter(**presenter))

    def transitions(self, joins: list[str], *, seed: int) -> tuple[str, ...]:
        """The transition at each join ("segment" or "cue"): segment joins draw from transition_types,
        subtitle joins from srt_concat_transition_types, each reproducibly from `seed`; "none" where
        that kind is switched off."""
        segment = iter(
            pick_transitions(
                self.transition_types if self.enable_transition else (), joins.count("segment"), seed
            )
        )
        cue = iter(
            pick_transitions(
                self.srt_concat_transition_types if self.enable_srt_concat_transition else (),
                joins.count("cue"),
                seed + 1,
            )
        )
        return tuple(next(segment) if kind == "segment" else next(cue) for kind in joins)

    def subtitle_style(self, *, width: int, height: int) -> subtitles.SubtitleStyle:
        return subtitles.subtitle_style(
            width=width,
            height=height,
            font_size=self.subtitle_font_size,
            font_family=self.subtitle_font,
            primary_colour=self.subtitle_color,
            background_colour=self.subtitle_background or NEUTRAL_BOX_COLOUR,
            background_opacity=self.subtitle_background_opacity,
        )
