"""A segment's preview: a short MP4 of one segment with its narration, subtitles and motion.

It is made by compose's own chunk code from the storyboard as it is now (its pictures and clips)
over the narration and subtitles of the newest render that laid the storyboard out, so the chunks a
render made are reused, and the chunks a preview makes are reused by the next render.
"""

import hashlib
import tempfile
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from accounts.brand import Brand
from jobs.files import chunk_store, fetch, store
from jobs.models import Job, JobSplit
from jobs.records import step_record, storyboard_layout_steps
from jobs.render.steps import burns_subtitles, compose_music, compose_plan, compose_visuals, job_music
from media_engine import compose
from media_engine.errors import MediaError


def preview_folder(job_id: int) -> str:
    return f"jobs/{job_id}/previews/"


def split_preview(*, split_row: JobSplit) -> str:
    """The storage key of the segment's preview, made now unless the same one is stored already.

    Raises ValidationError (with the words the admin and the API show) when the job has no
    rendered narration yet or its storyboard no longer fits it."""
    job = split_row.job
    if not (split_row.clip_id or split_row.selected):
        raise ValidationError(f"Segment {split_row.index} has no picture yet: render the job once first.")
    narration_key, subtitles_key, sentence_starts = _rendered_sound(job)
    order = list(job.splits.order_by("index").values_list("pk", flat=True))
    position = order.index(split_row.pk)
    brand = Brand.of(job.account)
    try:
        # Its transitions show the neighbours too.
        visuals, joins, split_of = compose_visuals(
            job, brand, sentence_starts, shown=(max(0, position - 1), min(len(order) - 1, position + 1))
        )
        plan = compose_plan(
            job,
            brand,
            visuals=visuals,
            joins=joins,
            narration_path=fetch(narration_key),
            subtitles_path=fetch(subtitles_key) if subtitles_key else None,
            size=job.frame_size,
            music_path=compose_music(job, job_music(job)),
        )
        with tempfile.TemporaryDirectory(prefix="preview-") as folder:
            out_path = Path(folder) / "preview.mp4"
            made = compose.preview(
                plan,
                split_of.index(position),
                out_path,
                store=chunk_store(),
                last=len(split_of) - 1 - split_of[::-1].index(position),
            )
            digest = hashlib.sha256("\n".join(made.chunks).encode()).hexdigest()[:16]
            key = f"{preview_folder(job.pk)}{split_row.pk}-{digest}.mp4"
            if not default_storage.exists(key):
                store(out_path, key)
    except MediaError as error:
        raise ValidationError(
            f"No preview of segment {split_row.index}: {error}. Render the job again first."
        ) from error
    _drop_older_previews(job, split_row, keep=key)
    return key


def _rendered_sound(job: Job) -> tuple[str, str | None, list[int]]:
    """Keys of the narration and the subtitles (ASS) of the newest render that laid out the storyboard,
    and where its sentences start (ms)."""
    for steps in storyboard_layout_steps(job):
        narration = step_record(steps, "narration")
        if default_storage.exists(narration.outputs["narration"]):
            sentences = narration.data.get("sentences") or []
            starts = [sentence["start_ms"] for sentence in sentences if isinstance(sentence, dict)]
            subtitles = step_record(steps, "subtitles").outputs.get("ass") if burns_subtitles(job) else None
            return narration.outputs["narration"], subtitles, starts
    raise ValidationError("This job has no rendered narration yet: render it once to preview its segments.")


def _drop_older_previews(job: Job, split_row: JobSplit, *, keep: str) -> None:
    """A segment keeps its newest preview only."""
    try:
        _folders, names = default_storage.listdir(preview_folder(job.pk).rstrip("/"))
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        key = f"{preview_folder(job.pk)}{name}"
        if name.startswith(f"{split_row.pk}-") and key != keep:
            default_storage.delete(key)
