"""What text users send may hold, in every app: no NUL and no other control characters.

PostgreSQL stores no NUL at all (text and jsonb both refuse it: a server error), and the other control
characters rewrite the lines they end up in (subtitle files, ffmpeg filters, CSV, logs). Text a user
types freely (a job's title, script and publishing texts, a segment's text and prompt) is cleaned by
`clean_text` (jobs.validation); names, prompts and JSON values of presets are refused by the checks,
which models and JSON keys use as validators, so the API and the admin refuse the same.
"""

import json
import re
from typing import Any

from django.core.exceptions import ValidationError

# C0 controls, DEL, C1 controls, zero-width space, line and paragraph separators and the byte order mark.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff]")
# The same less tab, newline and carriage return, which text of several lines holds.
CONTROL_CHARACTERS_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff]")
SINGLE_LINE_MESSAGE = "Control characters (such as NUL, a tab or a line break) are not allowed."
MULTILINE_MESSAGE = "Control characters (such as NUL or escape) are not allowed; tabs and line breaks are."
JSON_MAX = 10000  # characters of a free-form JSON value, written out


def clean_text(text: str, *, multiline: bool) -> str:
    """`text` without control characters: line breaks become "\\n" (multiline) or spaces, as do tabs
    in a single line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not multiline:
        text = text.replace("\n", " ").replace("\t", " ")
    return CONTROL_CHARACTERS_BUT_LINES.sub("", text)


def check_single_line(value: str) -> None:
    """A validator for a name or any one-line text."""
    if CONTROL_CHARACTERS.search(value):
        raise ValidationError(SINGLE_LINE_MESSAGE, code="control_characters")


def check_multiline(value: str) -> None:
    """A validator for text of several lines (a prompt, a description)."""
    if CONTROL_CHARACTERS_BUT_LINES.search(value):
        raise ValidationError(MULTILINE_MESSAGE, code="control_characters")


def check_json_text(value: Any) -> None:
    """A validator for free-form JSON: every key and string in it passes `check_multiline`, and it is
    at most JSON_MAX characters long."""
    if len(json.dumps(value, ensure_ascii=False, default=str)) > JSON_MAX:
        raise ValidationError(f"At most {JSON_MAX} characters of JSON are allowed.", code="max_length")
    for text in _strings(value):
        check_multiline(text)


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
