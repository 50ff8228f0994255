"""An account's brand profile (`Account.extra`): its keys and their checks."""

from typing import Any

from media_engine.compose import LOGO_CORNERS, XFADE_TRANSITIONS

from .extra_keys import (
    Key,
    boolean,
    check_extra,
    choice,
    colour,
    integer,
    json_object,
    json_schema,
    number,
    string_list,
    text,
)

TRANSITIONS = ("none", *sorted(XFADE_TRANSITIONS))
INSERTION_MODES = ("fullscreen", "pip")

HUMAN_CONFIG: dict[str, Key] = {
    "url": text("The presenter service's URL.", max_length=2000),
    "start_s": number("Seconds shown at the start.", minimum=0, maximum=3600),
    "end_s": number("Seconds shown at the end.", minimum=0, maximum=3600),
    "corner": choice("Corner of the picture-in-picture.", LOGO_CORNERS),
    "scale": number("Width of the picture-in-picture as a share of the frame.", minimum=0, maximum=1,
                    exclusive_minimum=True),
    "chroma_key": colour("Background colour keyed out of the presenter clip (null: none).", nullable=True),
}

ACCOUNT_EXTRA: dict[str, Key] = {
    "subtitle_background": colour("Subtitle box colour."),
    "subtitle_background_opacity": number("Subtitle box opacity.", minimum=0, maximum=1),
    "subtitle_color": colour("Subtitle text colour."),
    "subtitle_font": text("Subtitle font family.", max_length=255),
    "subtitle_font_size": integer("Subtitle font size in pixels.", minimum=8, maximum=400),
    "transition_types": string_list("Transitions between segments (ffmpeg xfade names); the first is used.",
                                    TRANSITIONS),
    "enable_transition": boolean("Whether segments change with a transition."),
    "transition_s": number("Length of a transition in seconds.", minimum=0, maximum=5),
    "logo_corner": choice("Where the logo goes.", LOGO_CORNERS),
    "human_insertion_mode": choice("How the presenter (digital human) is shown.", INSERTION_MODES),
    "human_config": json_object("Presenter settings.", HUMAN_CONFIG),
}


def check_account_extra(extra: Any) -> dict[str, Any]:
    return check_extra(extra, ACCOUNT_EXTRA)


ACCOUNT_EXTRA_JSON_SCHEMA = json_schema(
    ACCOUNT_EXTRA, "An account's brand profile; unknown keys are rejected."
)
