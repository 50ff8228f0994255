"""Every write to a job's storyboard (its JobSplit rows): the admin storyboard, the API and the
render's own steps all call these functions."""

import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction

from media_engine import clips, split
from media_engine.prompts import build_prompts

from .files import picture_key
from .models import Job, JobSplit, StockClip
from .validation import check_content


@transaction.atomic
def split_update(*, split_row: JobSplit, text: str | None = None, prompt: str | None = None) -> JobSplit:
    """Change a segment's text or prompt. A new text goes into the job's script too, so the
    next render re-narrates just the changed sentences and the subtitles stay exact."""
    if prompt is not None:
        split_row.prompt = prompt.strip()[:2000]
    if text is not None:
        new_text = check_content(text)
        old_text = split_row.text
        if new_text != old_text:
            job = split_row.job
            split_row.text = new_text
            if old_text and old_text in job.content:
                job.content = job.content.replace(old_text, new_text, 1)
            else:
                texts = [new_text if row.pk == split_row.pk else row.text for row in job.splits.order_by("index")]
                job.content = "\n".join(texts)
            job.content = check_content(job.content)
            job.save(update_fields=["content", "updated_at"])
    split_row.save()
    return split_row


@transaction.atomic
def split_regenerate(*, split_row: JobSplit) -> JobSplit:
    """New pictures for a segment on the next render: generated ones are dropped, uploads kept."""
    split_row.images = [image for image in split_row.images if image.get("source") not in ("card", "flux")]
    split_row.selected = ""
    split_row.variant += 1
    split_row.save(update_fields=["images", "selected", "variant", "updated_at"])
    return split_row


@transaction.atomic
def split_choose_image(*, split_row: JobSplit, key: str) -> JobSplit:
    """Show one of the segment's candidate pictures (instead of a clip)."""
    if key not in {image.get("key") for image in split_row.images}:
        raise ValidationError(f"{key} is not one of this segment's pictures.")
    split_row.selected = key
    split_row.clip = None
    split_row.save(update_fields=["selected", "clip", "updated_at"])
    return split_row


@transaction.atomic
def split_use_clip(*, split_row: JobSplit, clip: StockClip | None, user=None) -> JobSplit:
    """Show a real clip from the library for this segment (None goes back to the picture)."""
    if clip is not None and user is not None and not clip.is_visible_to(user):
        raise ValidationError(f"Clip {clip.pk} does not exist or is not yours.")
    split_row.clip = clip
    split_row.save(update_fields=["clip", "updated_at"])
    return split_row


def split_add_image(*, split_row: JobSplit, uploaded, select: bool = True) -> JobSplit:
    """Add an uploaded picture to the segment's candidates (and select it)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(uploaded) as picture:
            picture.verify()
    except (UnidentifiedImageError, OSError) as error:
        raise ValidationError("The upload is not a readable picture.") from error
    uploaded.seek(0)
    suffix = Path(getattr(uploaded, "name", "") or "picture.png").suffix.lower()
    if suffix not in {".png", ".jpg", ".jpeg", ".webp"}:
        suffix = ".png"
    key = default_storage.save(
        picture_key(split_row.job_id, split_row.index, f"upload-{uuid.uuid4().hex[:8]}", suffix), uploaded
    )
    return _add_images(split_row, [{"key": key, "seed": None, "source": "upload"}], select=select)


def split_add_generated(*, split_row: JobSplit, images: list[dict]) -> JobSplit:
    """The render's generated candidates; the first is shown."""
    return _add_images(split_row, images, select=bool(images))


def split_set_card(*, split_row: JobSplit, key: str) -> JobSplit:
    """The render's fallback picture card for a segment without a picture, shown."""
    split_row.images = [image for image in split_row.images if image.get("key") != key]
    return _add_images(split_row, [{"key": key, "seed": None, "source": "card"}], select=True)


@transaction.atomic
def _add_images(split_row: JobSplit, images: list[dict], *, select: bool) -> JobSplit:
    split_row.images = [*split_row.images, *images]
    if select:
        split_row.selected = images[0]["key"]
        split_row.clip = None
    split_row.save(update_fields=["images", "selected", "clip", "updated_at"])
    return split_row


def clip_ratio(job: Job) -> float:
    """Share of segments shown with a real clip: the job's own setting, else its topic's."""
    if "real_clip_ratio" in job.extra:
        return float(job.extra["real_clip_ratio"])
    return job.topic.real_clip_ratio if job.topic else 0.0


def segments_save(*, job: Job, segments: list[split.Segment], fence: Callable[[], None] | None = None) -> None:
    """Replace the job's splits, keeping pictures and clips of splits whose text is unchanged.

    Prompts for new texts are built first, outside the transaction: they may call an LLM. A render
    passes its `fence`, checked inside the transaction: a worker that lost its execution writes nothing.
    """
    previous = {split_row.text: split_row for split_row in job.splits.all()}
    topic = job.topic
    new_texts = [segment.text for segment in segments if segment.text not in previous]
    built = build_prompts(
        new_texts, prefix=topic.prompt_image_prefix if topic else "",
        image_prompt=topic.prompt_gen_image if topic else "", llm=_llm_settings(),
    ) if new_texts else None
    new_prompts = dict(zip(new_texts, built.prompts)) if built else {}
    rows = []
    for segment in segments:
        kept = previous.get(segment.text)
        rows.append(JobSplit(
            job=job, index=segment.index, start_ms=segment.start_ms, end_ms=segment.end_ms,
            text=segment.text, prompt=kept.prompt if kept else new_prompts[segment.text],
            images=kept.images if kept else [], selected=kept.selected if kept else "",
            clip=kept.clip if kept else None,
        ))
    with transaction.atomic():
        if fence is not None:
            fence()
        job.splits.all().delete()
        JobSplit.objects.bulk_create(rows)
        if not any(row.clip_id for row in rows):
            _assign_clips(job, rows)


def _llm_settings() -> dict | None:
    if not (settings.LLM_BASE_URL and settings.LLM_MODEL):
        return None
    return {"base_url": settings.LLM_BASE_URL, "api_key": settings.LLM_API_KEY, "model": settings.LLM_MODEL}


def _assign_clips(job: Job, rows: list[JobSplit]) -> None:
    library = list(StockClip.objects.visible_to(job.owner) if job.owner else StockClip.objects.filter(owner=None))
    if not library:
        return
    choices = [clips.ClipChoice(id=clip.pk, duration_ms=clip.duration_ms, tags=clip.tag_set) for clip in library]
    wanted = job.topic.tag_set if job.topic else set()
    assignment = clips.assign_clips(len(rows), ratio=clip_ratio(job), clips=choices, seed=job.pk, wanted_tags=wanted)
    for row in rows:
        if row.index in assignment:
            row.clip_id = assignment[row.index]
            row.save(update_fields=["clip", "updated_at"])
