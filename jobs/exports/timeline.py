"""A job's latest successful render as an editable timeline (OpenTimelineIO, Final Cut Pro X and 7 XML, a
Jianying draft), zipped with every file it uses. The admin's job page and the API's
GET /api/v1/jobs/{id}/timeline/ call job_timeline_zip.

What a render was made of is recorded by its compose step (`timeline_record`, in the step's data): the
segments' times and their pictures or clips as the composition used them, the music and its volume.
The job's segments may have changed since; the timeline is the render's, not the current storyboard.
"""

import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.utils.text import slugify

from accounts.storage import storage_local_copy
from jobs.models import Job, JobExecution, JobSplit
from jobs.records import step_record
from media_engine import timeline
from media_engine.compose import Plan
from media_engine.errors import MediaError

FORMATS = timeline.FORMATS
DEFAULT_FORMAT = "otio"
TEXT_SUFFIXES = (".json", ".otio", ".xml", ".fcpxml", ".srt", ".txt")
UNKNOWN_FORMAT = "Unknown timeline format {value!r}; choose one of: {choices}."
NO_RENDER = "This job has no successful render yet; render it first, then export its timeline."
NOT_RECORDED = (
    "Render #{execution} was made before renders recorded their timeline; render the job again to export it."
)
FILE_GONE = (
    "Render #{execution} used {key}, which is no longer stored; render the job again to export its timeline."
)


class TimelineUnavailable(Exception):
    """The job has nothing to export as a timeline (yet): the message says why and what to do."""


def timeline_record(*, plan: Plan, splits: list[JobSplit], music: str, music_stored: bool) -> dict[str, Any]:
    """What the compose step records for the timeline: its segments (storage keys), frame and music."""
    return {
        "width": plan.width,
        "height": plan.height,
        "fps": plan.fps,
        "shots": [
            {
                "key": split_row.shown[0],
                "kind": split_row.shown[1],
                "start_ms": split_row.start_ms,
                "end_ms": split_row.end_ms,
                "text": split_row.text,
            }
            for split_row in splits
        ],
        # A storage key (the job's own upload), or a path on the render hosts (BACKGROUND_MUSIC), or "".
        "music": music if plan.music_path is not None else "",
        "music_stored": music_stored,
        "music_volume": plan.music_volume,
    }


def timeline_format(value: str | None) -> str:
    """The format asked for (otio when none): one of FORMATS, else a ValidationError naming them."""
    fmt = (value or DEFAULT_FORMAT).strip().lower()
    if fmt not in FORMATS:
        raise ValidationError({"format": [UNKNOWN_FORMAT.format(value=value, choices=", ".join(FORMATS))]})
    return fmt


def job_timeline_zip(*, job: Job, fmt: str | None) -> tuple[IO[bytes], str]:
    """The latest successful render's timeline in `fmt` and its media, as a zip rewound to its start, and a
    file name for it. Raises ValidationError for an unknown format, TimelineUnavailable when there is no
    render to export or a file it used is gone."""
    fmt = timeline_format(fmt)
    execution = job.latest_success
    if execution is None:
        raise TimelineUnavailable(NO_RENDER)
    record = step_record(execution.steps, "compose").data.get("timeline")
    if not record or not execution.results.get("narration"):
        raise TimelineUnavailable(NOT_RECORDED.format(execution=execution.pk))
    name = f"{job.pk}-{job.title}"
    with tempfile.TemporaryDirectory(prefix="timeline-") as tmp:
        work = Path(tmp)
        storyboard = _storyboard(execution, record, name=name, downloads=work / "downloads")
        try:
            folder = timeline.bundle(storyboard, fmt, work / "bundle")
        except MediaError as error:
            raise TimelineUnavailable(f"Render #{execution.pk} cannot be exported: {error}") from error
        archive = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
        with zipfile.ZipFile(archive, "w") as bundle:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    # Pictures, clips and sounds are compressed already; the timeline's text is not.
                    packed = path.suffix.lower() in TEXT_SUFFIXES
                    bundle.write(
                        path,
                        path.relative_to(folder.parent).as_posix(),
                        compress_type=zipfile.ZIP_DEFLATED if packed else zipfile.ZIP_STORED,
                    )
    archive.seek(0)
    return archive, f"{job.pk}-{slugify(job.title, allow_unicode=True) or 'job'}-{fmt}.zip"


def _storyboard(execution: JobExecution, record: dict, *, name: str, downloads: Path) -> timeline.Storyboard:
    """The render's storyboard over local copies of its stored files."""
    copies: dict[str, Path] = {}
    notes: list[str] = []

    def local(key: str) -> Path:
        if key not in copies:
            if not key or not default_storage.exists(key):
                raise TimelineUnavailable(FILE_GONE.format(execution=execution.pk, key=key or "a file"))
            copies[key] = storage_local_copy(default_storage, key, downloads / str(len(copies)))
        return copies[key]

    shots = [
        timeline.Shot(
            path=local(shot["key"]),
            kind=shot["kind"],
            start_ms=shot["start_ms"],
            end_ms=shot["end_ms"],
            name=_clip_name(shot["text"]),
        )
        for shot in record["shots"]
    ]
    srt = execution.results.get("srt")
    music_path = None
    if record.get("music"):
        if record.get("music_stored"):
            music_path = local(record["music"])
        elif Path(record["music"]).is_file():  # the hosts' own BACKGROUND_MUSIC
            music_path = Path(record["music"])
        else:
            notes.append(
                f"The background music {Path(record['music']).name} is not on the server that made "
                "this export, so it is left out; put your own music under the narration."
            )
    return timeline.Storyboard(
        name=name,
        width=record["width"],
        height=record["height"],
        fps=record["fps"],
        shots=shots,
        narration_path=local(execution.results["narration"]),
        subtitles_path=local(srt) if srt else None,
        music_path=music_path,
        music_volume=record.get("music_volume", 0.15),
        notes=tuple(notes),
    )


def _clip_name(text: str) -> str:
    """A segment's text, short enough for a clip's name on a track."""
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:39] + "…"
