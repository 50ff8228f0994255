"""The input rules for jobs, in one place: the admin, the API and the importers all use them."""

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from accounts import teams
from accounts.plain_text import clean_text
from accounts.uploads import check_audio
from jobs.files import music_folders
from jobs.models import SPEECH_SPEED_MAX, SPEECH_SPEED_MIN, Orientation
from jobs.options import check_job_extra
from media_engine.sentences import is_speakable
from media_engine.spoken import language_of
from topics.models import PROMPT_MAX

TITLE_MAX = 255
CONTENT_MAX = 10000
PUBLISH_TITLE_MAX = 100  # YouTube's limit for a video's title
DESCRIPTION_MAX = 5000  # YouTube's limit for a video's description
# Lower renders first. The range leaves "increase priority" room below any runorder a client sets, far
# from the 32-bit column's ends (jobs.services.job_increase_priority stays inside it too).
RUNORDER_MIN, RUNORDER_MAX = -1_000_000, 1_000_000
RUNORDER_MESSAGE = f"Runorder must be a whole number from {RUNORDER_MIN} to {RUNORDER_MAX}."

# Editors mark notes for themselves as #@#...#@#; they are never narrated.
EDITOR_NOTE = re.compile(r"#@#.*?#@#", re.DOTALL)


def _text(value: Any, *, label: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{label} must be text, not {type(value).__name__}.", code="invalid")
    return value


def _at_most(text: str, limit: int, *, label: str, cleaned: bool = False) -> str:
    if len(text) > limit:
        after = " after cleaning" if cleaned else ""
        raise ValidationError(
            f"{label} is {len(text)} characters long{after}; at most {limit} are allowed.", code="max_length"
        )
    return text


def clean_content(text: str) -> str:
    """The script without editor notes and control characters (tabs and line breaks stay)."""
    return clean_text(EDITOR_NOTE.sub("", text), multiline=True).strip()


def clean_title(title: Any) -> str:
    title = clean_text(_text(title, label="Title"), multiline=False).strip()
    if not title:
        raise ValidationError("Title is empty.", code="required")
    return _at_most(title, TITLE_MAX, label="Title")


NOTHING_TO_NARRATE = "Content has nothing speakable to narrate: it holds no words, letters or digits."


def check_content(content: Any) -> str:
    cleaned = clean_content(_text(content, label="Content"))
    if not cleaned:
        raise ValidationError(
            "Content is empty after removing notes and control characters.", code="required"
        )
    cleaned = _at_most(cleaned, CONTENT_MAX, label="Content", cleaned=True)
    # Only punctuation and symbols: the render would find no sentence in it later. A letter or a digit
    # anywhere always makes a sentence (media_engine.sentences), so one pass over the text tells,
    # without segmenting it (which is slow on hostile text).
    if not is_speakable(cleaned):
        raise ValidationError(NOTHING_TO_NARRATE, code="invalid")
    return cleaned


def clean_publish_title(publish_title: Any) -> str:
    """One line (line breaks become spaces) without control characters; empty uses the title."""
    cleaned = clean_text(_text(publish_title, label="Publish title"), multiline=False).strip()
    return _at_most(cleaned, PUBLISH_TITLE_MAX, label="Publish title")


def clean_description(description: Any) -> str:
    cleaned = clean_text(_text(description, label="Description"), multiline=True).strip()
    return _at_most(cleaned, DESCRIPTION_MAX, label="Description", cleaned=True)


def clean_prompt(prompt: Any) -> str:
    """A segment's picture prompt: control characters removed, cut at PROMPT_MAX."""
    return clean_text(_text(prompt, label="Prompt"), multiline=True).strip()[:PROMPT_MAX]


def check_runorder(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not RUNORDER_MIN <= value <= RUNORDER_MAX:
        raise ValidationError(RUNORDER_MESSAGE, code="out_of_range")
    return value


def check_speech_speed(value: Any) -> float:
    try:
        speed = float(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValidationError("Speech speed must be a number.", code="invalid") from error
    if not SPEECH_SPEED_MIN <= speed <= SPEECH_SPEED_MAX:
        raise ValidationError(
            f"Speech speed {speed} is outside {SPEECH_SPEED_MIN}-{SPEECH_SPEED_MAX}.", code="out_of_range"
        )
    return speed


def check_orientation(value: str) -> str:
    if value not in Orientation.values:
        raise ValidationError(
            f"Orientation must be one of {', '.join(Orientation.values)}, not {value!r}.", code="invalid"
        )
    return value


def check_visible(user, obj, *, label: str, team) -> None:
    """A foreign key of a row of `team` must point at a row of the same team or a shared preset.

    `user=None` is the system itself (management commands), which may use any row; so may superusers.
    """
    if user is None or obj is None or user.is_superuser:
        return
    if not teams.usable_in(obj, team):
        raise ValidationError(f"{label} {obj.pk} does not exist or is not yours.", code="not_visible")


def check_own_music(user, key: Any, *, team) -> None:
    """A job's music must be its team's upload (jobs.files.music_folders); superusers and the system
    itself (`user=None`) may use any."""
    if user is None or user.is_superuser or not isinstance(key, str):
        return
    if not any(key.startswith(f"{folder}/") for folder in music_folders(team)):
        raise ValidationError(f"music: {key} does not exist or is not yours.", code="not_visible")


def check_extra(user, extra: Any, *, team) -> dict[str, Any]:
    """Job.extra's keys and values (jobs.options), then whose music it names.

    A bad key's error reads "<key>: <message>" and keeps both in its params, so the API can nest it
    under the key ({"extra": {"<key>": ["<message>"]}}) while forms and importers show one line.
    """
    try:
        cleaned = check_job_extra(extra)
    except ValidationError as error:
        if not hasattr(error, "error_dict"):
            raise
        raise ValidationError(
            [
                ValidationError(
                    "%(key)s: %(message)s", code=item.code, params={"key": key, "message": message}
                )
                for key, items in error.error_dict.items()
                for item in items
                for message in item
            ]
        ) from error
    check_own_music(user, cleaned.get("music"), team=team)
    return cleaned


def check_narration(uploaded: Any) -> Any:
    """A narration sent by a client passes the API's audio upload checks and gets a generated name;
    a stored file (unchanged, or made by the code itself) and "" (none) pass as they are."""
    if isinstance(uploaded, UploadedFile):
        return check_audio(uploaded)
    return uploaded


def clean_job_input(user, data: dict[str, Any], *, team) -> dict[str, Any]:
    """Check the fields of a job of `team` being created or changed; raise one ValidationError per field."""
    cleaners = {
        "title": clean_title,
        "content": check_content,
        "publish_title": clean_publish_title,
        "description": clean_description,
        "runorder": check_runorder,
        "speech_speed": check_speech_speed,
        "orientation": check_orientation,
        "extra": lambda extra: check_extra(user, extra, team=team),
        "narration_audio": check_narration,
    }
    cleaned: dict[str, Any] = dict(data)
    errors: dict[str, list[ValidationError]] = {}
    for field, cleaner in cleaners.items():
        if field in data:
            try:
                cleaned[field] = cleaner(data[field])
            except ValidationError as error:
                errors[field] = [error]
    for field in ("language", "voice", "topic", "account"):
        try:
            check_visible(user, data.get(field), label=field.capitalize(), team=team)
        except ValidationError as error:
            errors[field] = [error]
    if errors:
        raise ValidationError(errors)
    return cleaned


def voice_language_problem(language: Any, voice: Any) -> str:
    """Why `voice` cannot narrate a job in `language` ("" when it can): it was made for another
    language (a voice with no language may speak any)."""
    if language is None or voice is None or voice.language is None:
        return ""
    if language_of(voice.language.code) == language_of(language.code):
        return ""
    return (
        f"The voice {voice.name} speaks {voice.language}, not the job's language {language}; "
        f"choose a voice of {language.name}."
    )


def check_voice_speaks(language: Any, voice: Any) -> None:
    problem = voice_language_problem(language, voice)
    if problem:
        raise ValidationError({"voice": [ValidationError(problem, code="invalid")]})
