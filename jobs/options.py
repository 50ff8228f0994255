"""What may go into `Job.extra`, checked key by key with the checkers of `accounts.extra_keys`.

The account's brand profile (`Account.extra`) has its own keys in `accounts.brand`.
"""

from typing import Any

from accounts.extra_keys import (
    Key,
    boolean,
    check_extra,
    index_list,
    integer,
    json_schema,
    number,
    storage_key,
    text,
)

JOB_EXTRA: dict[str, Key] = {
    "h2v": boolean(
        "Horizontal-to-vertical: horizontal pictures shown in a vertical 9:16 frame over a blurred "
        "fill, whatever the orientation."
    ),
    "enable_digital_human": boolean(
        "Add the talking presenter from PRESENTER_URL, placed as the account's brand profile says."
    ),
    "index_text": text("First line at the top for the whole video, e.g. an episode number."),
    "title_text": text("Title under the index line at the top, for the whole video."),
    "desc_text": text("Description line at the bottom, above the subtitles, for the whole video."),
    "real_clip_ratio": number(
        "Share of segments shown with a real clip (0-1); overrides the topic's.", minimum=0, maximum=1
    ),
    "segment_target_ms": integer("Target length of a segment in ms.", minimum=1000, maximum=60000),
    "burn_subtitles": boolean(
        "Burn the subtitles into this job's video (overrides the account's "
        "burn_subtitles); SRT and WebVTT files are made either way."
    ),
    "animate": index_list(
        'Segments (their index: 0 is the first, the admin\'s "Segment 1") whose picture is turned into a '
        "moving clip by the image-to-video model (I2V_MODEL_DIR, GPU hosts); without the model they keep "
        "the picture. A segment showing a real clip keeps its clip.",
        maximum=9999,
        max_items=500,
    ),
    "music": storage_key(
        "Background music for this job: the key of a file uploaded with POST /api/v1/music/ "
        "(replaces the BACKGROUND_MUSIC setting).",
        folder="music",
    ),
}


def check_job_extra(extra: Any) -> dict[str, Any]:
    return check_extra(extra, JOB_EXTRA)


JOB_EXTRA_JSON_SCHEMA = json_schema(JOB_EXTRA, "Render options of a job; unknown keys are rejected.")
