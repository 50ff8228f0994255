"""Batch import of jobs from CSV or JSON: parse and check every row first, then create the good ones.

A row has title, content, language (code), voice (name), topic (name), account (username) and the
options speech_speed, orientation, runorder, description, publish_title, extra (a JSON object).
Names are looked up among the rows the importing user may use (`user=None`: the system, any row).
"""

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.json_text import json_parse
from accounts.models import Account
from accounts.plain_text import check_single_line
from jobs import services
from jobs.models import Job
from jobs.validation import clean_job_input, voice_language_problem
from topics.models import Topic
from voices.models import Language, Voice

COLUMNS = [
    "title",
    "content",
    "language",
    "voice",
    "topic",
    "account",
    "speech_speed",
    "orientation",
    "runorder",
    "description",
    "publish_title",
    "extra",
]
LOOKUPS = {
    "language": (Language, "code"),
    "voice": (Voice, "name"),
    "topic": (Topic, "name"),
    "account": (Account, "username"),
}


@dataclass
class ImportRow:
    number: int  # 1-based, as people count rows
    raw: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    detected_language: str = ""  # the code detected from the content when the row named none

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def language_label(self) -> str:
        return (
            f"{self.detected_language} (detected)"
            if self.detected_language
            else str(self.raw.get("language") or "")
        )

    @property
    def title(self) -> str:
        return str(self.raw.get("title") or "")

    def error_text(self) -> str:
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in self.errors.items())


def _records(file_bytes: bytes, filename: str) -> list[dict[str, Any]]:
    try:
        text = file_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationError("The file is not UTF-8 text.") from error
    if filename.lower().endswith(".json"):
        try:
            records = json_parse(text)
        except json.JSONDecodeError as error:
            raise ValidationError(f"Not valid JSON: {error}") from error
        if isinstance(records, dict) and isinstance(records.get("jobs"), list):
            records = records["jobs"]
        if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
            raise ValidationError('JSON must be a list of objects (or {"jobs": [...]}).')
        return records
    if filename.lower().endswith(".csv"):
        return [dict(record) for record in csv.DictReader(io.StringIO(text))]
    raise ValidationError("Upload a .csv or .json file.")


def _usable(model, user, team):
    """The rows a job of `team` may use; the system itself (`user=None`) may use any."""
    return model.objects.all() if user is None else model.objects.usable_in(team)


def _lookup(user, team, name: str, value: Any):
    model, attribute = LOOKUPS[name]
    check_single_line(str(value))  # NUL in a query is a server error on PostgreSQL
    rows = _usable(model, user, team)
    matches = list(rows.filter(**{attribute: str(value).strip()}).order_by("team_id")[:2])
    if not matches:
        raise ValidationError(f"No {name} {value!r} that you may use.")
    # The team's own row wins over a shared preset of the same name.
    own = [row for row in matches if team is not None and row.team_id == team.pk]
    return own[0] if own else matches[0]


def _parse_row(number: int, raw: dict[str, Any], user, team) -> ImportRow:
    row = ImportRow(number=number, raw=raw)
    unknown = sorted(set(raw) - set(COLUMNS) - {None})
    if unknown:
        row.errors["columns"] = [f"Unknown column(s) {', '.join(unknown)}."]
    values = {name: value for name, value in raw.items() if name in COLUMNS and value not in (None, "")}
    for name in ("title", "content"):
        values.setdefault(name, "")
    data: dict[str, Any] = {}
    for name, value in values.items():
        try:
            if name in LOOKUPS:
                data[name] = _lookup(user, team, name, value)
            elif name == "runorder":
                data[name] = int(value) if isinstance(value, str) else value  # checked below
            elif name == "extra":
                data[name] = json_parse(value) if isinstance(value, str) else value  # checked below
            else:
                data[name] = value
        except json.JSONDecodeError as error:
            row.errors[name] = [f"Not valid JSON: {error}"]
        except (ValueError, TypeError):
            row.errors[name] = [f"{value!r} is not valid here."]
        except ValidationError as error:
            row.errors[name] = error.messages
    if "language" not in data and "language" not in row.errors and str(data.get("content", "")).strip():
        _detect_language(row, data, user, team)
    if problem := voice_language_problem(data.get("language"), data.get("voice")):
        row.errors["voice"] = [problem]
    try:
        data = clean_job_input(user, data, team=team)
    except ValidationError as error:
        for name, messages in error.message_dict.items():
            row.errors.setdefault(name, messages)
    row.data = data
    return row


def _detect_language(row: ImportRow, data: dict[str, Any], user, team) -> None:
    """A row without a language gets the one its content is written in (and, without a voice, a voice
    of it), among those the team may use; the preview and the command say it was detected."""
    language = services.language_detect(content=str(data["content"]), languages=_usable(Language, user, team))
    if language is None:
        return
    data["language"] = language
    row.detected_language = language.code
    if "voice" not in data and "voice" not in row.errors:
        voice = services.voice_for_language(language=language, voices=_usable(Voice, user, team))
        if voice is not None:
            data["voice"] = voice


def import_parse(file_bytes: bytes, *, filename: str, user, team) -> list[ImportRow]:
    """Every row of the file, checked for jobs of `team`; raises ValidationError only when the file
    itself is unreadable."""
    records = _records(file_bytes, filename)
    return [_parse_row(number, raw, user, team) for number, raw in enumerate(records, start=1)]


def import_create(rows: list[ImportRow], *, user, team, enqueue: bool) -> list[Job]:
    """Create a job per good row (bad rows are skipped), queueing each when asked."""
    jobs = []
    with transaction.atomic():
        for row in rows:
            if row.errors:
                continue
            job = services.job_create(user=user, team=team, **row.data)
            if enqueue:
                services.job_enqueue(job=job)
            jobs.append(job)
    return jobs
