"""The input rules for jobs, in one place: the admin, the API and the importers all use them."""

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from accounts.api.uploads import check_audio

from .extra import check_job_extra
from .files import music_folder
from .models import SPEECH_SPEED_MAX, SPEECH_SPEED_MIN, Orientation

TITLE_MAX = 255
CONTENT_MAX = 10000

# Editors mark notes for themselves as #@#...#@#; they are never narrated.
EDITOR_NOTE = re.compile(r"#@#.*?#@#", re.DOTALL)
# Control characters except tab (\x09) and newline (\x0a); \r is normalised first.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff]")


def clean_content(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = EDITOR_NOTE.sub("", text)
    text = CONTROL_CHARACTERS.sub("", text)
    return text.strip()


def clean_title(title: str) -> str:
    title = CONTROL_CHARACTERS.sub("", title.replace("\n", " ").replace("\t", " ")).strip()
    if not title:
        raise ValidationError("Title is empty.", code="required")
    if len(title) > TITLE_MAX:
        raise ValidationError(
            f"Title is {len(title)} characters long; at most {TITLE_MAX} are allowed.", code="max_length"
        )
    return title


def check_content(content: str) -> str:
    cleaned = clean_content(content)
    if not cleaned:
        raise ValidationError("Content is empty after removing notes and control characters.", code="required")
    if len(cleaned) > CONTENT_MAX:
        raise ValidationError(
            f"Content is {len(cleaned)} characters long after cleaning; at most {CONTENT_MAX} are allowed.",
            code="max_length",
        )
    return cleaned


def check_speech_speed(value: Any) -> float:
    try:
        speed = float(value)
    except (TypeError, ValueError) as error:
        raise ValidationError(f"Speech speed must be a number, not {value!r}.", code="invalid") from error
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


def check_visible(user, obj, *, label: str) -> None:
    """A foreign key must point at the user's own row or a shared preset.

    `user=None` is the system itself (management commands), which may use any row.
    """
    if user is not None and obj is not None and not obj.is_visible_to(user):
        raise ValidationError(f"{label} {obj.pk} does not exist or is not yours.", code="not_visible")


def check_own_music(user, key: Any) -> None:
    """A job's music must be the user's own upload (music/<user>/...); superusers and the system
    itself (`user=None`) may use any."""
    if user is None or user.is_superuser or not isinstance(key, str):
        return
    if not key.startswith(f"{music_folder(user)}/"):
        raise ValidationError(f"music: {key} does not exist or is not yours.", code="not_visible")


def check_extra(user, extra: Any) -> dict[str, Any]:
    """Job.extra's keys and values (jobs.extra), then whose music it names.

    A bad key's error reads "<key>: <message>" and keeps both in its params, so the API can nest it
    under the key ({"extra": {"<key>": ["<message>"]}}) while forms and importers show one line.
    """
    try:
        cleaned = check_job_extra(extra)
    except ValidationError as error:
        if not hasattr(error, "error_dict"):
            raise
        raise ValidationError([
            ValidationError("%(key)s: %(message)s", code=item.code, params={"key": key, "message": message})
            for key, items in error.error_dict.items() for item in items for message in item
        ]) from error
    check_own_music(user, cleaned.get("music"))
    return cleaned


def check_narration(uploaded: Any) -> Any:
    """A narration sent by a client passes the API's audio upload checks and gets a generated name;
    a stored file (unchanged, or made by the code itself) and "" (none) pass as they are."""
    if isinstance(uploaded, UploadedFile):
        return check_audio(uploaded)
    return uploaded


def clean_job_input(user, data: dict[str, Any]) -> dict[str, Any]:
    """Check the fields of a job being created or changed; raise one ValidationError per field."""
    cleaners = {
        "title": clean_title,
        "content": check_content,
        "speech_speed": check_speech_speed,
        "orientation": check_orientation,
        "extra": lambda extra: check_extra(user, extra),
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
            check_visible(user, data.get(field), label=field.capitalize())
        except ValidationError as error:
            errors[field] = [error]
    if errors:
        raise ValidationError(errors)
    return cleaned
