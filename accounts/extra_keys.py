"""Checkers for the JSON `extra` of a row, one `Key` per allowed key.

Plain functions raising Django's ValidationError with one message list per key, e.g.
{"real_clip_ratio": ["Must be a number from 0 to 1."]}, so the API and the admin give the same
answers. Unknown keys are rejected: a typo ("segment_target") would otherwise be ignored
silently by the renderer. The same specs produce the JSON schemas in the OpenAPI document.
Jobs (`jobs.options`), accounts (`accounts.brand`) and topics use them, so they live in the
lowest app.
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from .plain_text import CONTROL_CHARACTERS, SINGLE_LINE_MESSAGE, check_json_text

HEX_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
COLOUR_MESSAGE = "Must be a colour of the form #RRGGBB."
TEXT_MAX = 500


@dataclass(frozen=True)
class Key:
    check: Callable[[Any], Any]  # returns the cleaned value or raises ValidationError
    schema: dict[str, Any]


def boolean(description: str) -> Key:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValidationError("Must be true or false.", code="invalid")
        return value

    return Key(check, {"type": "boolean", "description": description})


def text(description: str, *, max_length: int = TEXT_MAX) -> Key:
    """One line of text: no NUL or other control characters (PostgreSQL cannot store NUL in JSON)."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError("Must be a string.", code="invalid")
        if len(value) > max_length:
            raise ValidationError(f"At most {max_length} characters are allowed.", code="max_length")
        if CONTROL_CHARACTERS.search(value):
            raise ValidationError(SINGLE_LINE_MESSAGE, code="control_characters")
        return value

    return Key(check, {"type": "string", "maxLength": max_length, "description": description})


def matching(description: str, pattern: re.Pattern, message: str, *, max_length: int = TEXT_MAX) -> Key:
    """A string that matches `pattern` in full (anchor it with \\A and \\Z)."""

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError("Must be a string.", code="invalid")
        if len(value) > max_length:
            raise ValidationError(f"At most {max_length} characters are allowed.", code="max_length")
        if not pattern.match(value):
            raise ValidationError(message, code="invalid")
        return value

    schema_pattern = pattern.pattern.replace(r"\A", "^").replace(r"\Z", "$")  # ECMA anchors
    return Key(
        check,
        {"type": "string", "maxLength": max_length, "pattern": schema_pattern, "description": description},
    )


def storage_key(description: str, *, folder: str) -> Key:
    """A file in storage under `folder`/: never a host path or a URL, so a job can only use what was
    put in storage for it, and every render host can fetch it."""
    example = f"{folder}/calm.mp3"

    def check(value: Any) -> str:
        parts = value.split("/") if isinstance(value, str) else []
        inside = len(parts) > 1 and parts[0] == folder and not any(part in ("", ".", "..") for part in parts)
        if not inside or len(value) > TEXT_MAX or "\\" in value or CONTROL_CHARACTERS.search(value):
            raise ValidationError(
                f"Must be the storage key of a file under {folder}/, e.g. {example}.", code="invalid"
            )
        return value

    schema = {"type": "string", "maxLength": TEXT_MAX, "pattern": f"^{folder}/", "description": description}
    return Key(check, schema)


def number(description: str, *, minimum: float, maximum: float, exclusive_minimum: bool = False) -> Key:
    low = "above" if exclusive_minimum else "from"

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValidationError(f"Must be a number {low} {minimum:g} to {maximum:g}.", code="invalid")
        too_low = value <= minimum if exclusive_minimum else value < minimum
        if too_low or value > maximum:
            raise ValidationError(f"Must be a number {low} {minimum:g} to {maximum:g}.", code="out_of_range")
        return value

    schema: dict[str, Any] = {
        "type": "number",
        "minimum": minimum,
        "maximum": maximum,
        "description": description,
    }
    if exclusive_minimum:
        schema["exclusiveMinimum"] = True  # OpenAPI 3.0's boolean form
    return Key(check, schema)


def integer(description: str, *, minimum: int, maximum: int) -> Key:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"Must be a whole number from {minimum} to {maximum}.", code="invalid")
        if not minimum <= value <= maximum:
            raise ValidationError(f"Must be a whole number from {minimum} to {maximum}.", code="out_of_range")
        return value

    return Key(check, {"type": "integer", "minimum": minimum, "maximum": maximum, "description": description})


def index_list(description: str, *, maximum: int, max_items: int) -> Key:
    """Distinct whole numbers from 0 to `maximum` (positions in a list, e.g. segments)."""
    message = f"Must be a list of distinct whole numbers from 0 to {maximum}, at most {max_items} of them."

    def check(value: Any) -> list[int]:
        if (
            not isinstance(value, list)
            or len(value) > max_items
            or not all(isinstance(item, int) and not isinstance(item, bool) for item in value)
        ):
            raise ValidationError(message, code="invalid")
        if len(set(value)) != len(value) or not all(0 <= item <= maximum for item in value):
            raise ValidationError(message, code="invalid")
        return sorted(value)

    return Key(
        check,
        {
            "type": "array",
            "items": {"type": "integer", "minimum": 0, "maximum": maximum},
            "uniqueItems": True,
            "maxItems": max_items,
            "description": description,
        },
    )


def colour(description: str, *, nullable: bool = False) -> Key:
    def check(value: Any) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not HEX_COLOUR.fullmatch(value):
            raise ValidationError(COLOUR_MESSAGE, code="invalid")
        return value.upper()

    schema = {"type": "string", "pattern": HEX_COLOUR.pattern, "description": description}
    if nullable:
        schema["nullable"] = True
    return Key(check, schema)


def choice(description: str, values: tuple[str, ...]) -> Key:
    def check(value: Any) -> str:
        if value not in values:
            raise ValidationError(f"Must be one of {', '.join(values)}.", code="invalid_choice")
        return value

    return Key(check, {"type": "string", "enum": list(values), "description": description})


def string_list(description: str, values: tuple[str, ...]) -> Key:
    def check(value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValidationError("Must be a list of strings.", code="invalid")
        unknown = [item for item in value if item not in values]
        if unknown:
            raise ValidationError(
                f"Unknown value(s) {', '.join(map(repr, unknown))}; use names like {', '.join(values[:5])}.",
                code="invalid_choice",
            )
        return value

    return Key(
        check,
        {"type": "array", "items": {"type": "string", "enum": list(values)}, "description": description},
    )


def json_object(description: str, keys: dict[str, Key]) -> Key:
    """An object of the listed keys, each checked; another key is refused by name (the seed's
    `duration` would otherwise be stored and silently do nothing)."""

    def check(value: Any) -> dict:
        if not isinstance(value, dict):
            raise ValidationError("Must be a JSON object.", code="invalid")
        check_json_text(value)
        unknown = [str(name) for name in value if name not in keys]
        messages = []
        if unknown:
            messages.append(
                f"Unknown key(s) {', '.join(map(repr, unknown))}; the keys are {', '.join(keys)}."
            )
        for name, key in keys.items():
            if name in value:
                try:
                    key.check(value[name])
                except ValidationError as error:
                    messages += [f"{name}: {message}" for message in error.messages]
        if messages:
            raise ValidationError(messages, code="invalid")
        return value

    properties = {name: key.schema for name, key in keys.items()}
    return Key(
        check,
        {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
            "description": description,
        },
    )


def check_extra(extra: Any, keys: dict[str, Key]) -> dict[str, Any]:
    if not isinstance(extra, dict):
        raise ValidationError("Must be a JSON object.", code="invalid")
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[ValidationError]] = {}
    for name, value in extra.items():
        key = keys.get(name)
        if key is None:
            errors[str(name)] = [
                ValidationError(f"Unknown key; the allowed keys are {', '.join(keys)}.", code="unknown_key")
            ]
            continue
        try:
            cleaned[name] = key.check(value)
        except ValidationError as error:
            errors[name] = [error]
    if errors:
        raise ValidationError(errors)
    return cleaned


def json_schema(keys: dict[str, Key], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: key.schema for name, key in keys.items()},
        "description": description,
    }
