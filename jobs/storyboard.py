"""Every write to a job's storyboard (its JobSplit rows): the admin storyboard, the API and the
render's own steps all call these functions.

A segment keeps its identity across renders: its row, sentences, prompt, pictures, selection and
clip. The render lays the storyboard on each new narration (`split.carry_over`: only times and texts
move, added sentences join a segment or form new ones, a segment whose sentences all went is gone);
it groups from scratch only for a new storyboard or when the operator asks (`storyboard_resplit`).
Operators split a segment at a sentence boundary and merge neighbours here too.

One module, past 500 lines: every JobSplit write is here, so the admin, the API and the render
change a storyboard by the same rules.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F

from accounts import teams
from jobs.files import picture_key
from jobs.footage import stock
from jobs.models import ExecutionStatus, Job, JobSplit, StockClip
from jobs.records import step_record, storyboard_layout_steps
from jobs.validation import check_content, clean_prompt
from media_engine import clips, split
from media_engine.cards import key_phrase
from media_engine.errors import MediaError
from media_engine.prompts import BuiltPrompts, build_prompts
from media_engine.sentences import TimedSentence, split_sentences

# Rows move past this index while a storyboard is renumbered: (job, index) is unique at every
# moment (PostgreSQL checks it row by row, even inside one UPDATE).
PARKED = 1_000_000


@dataclass(frozen=True)
class StoryboardNarration:
    """The narration a storyboard's times refer to: that of the newest render that laid it out."""

    key: str  # the stored narration.wav
    duration_ms: int
    sentences: list[TimedSentence]


@dataclass(frozen=True)
class ResplitPlan:
    """What a re-split would do: the new segments, and which current ones (0-based) keep their choices."""

    segments: list[split.Segment]
    kept: list[int]
    dropped: list[int]


# ---------------------------------------------------------------- one segment's text and pictures


@transaction.atomic
def split_update(*, split_row: JobSplit, text: str | None = None, prompt: str | None = None) -> JobSplit:
    """Change a segment's text or prompt. A new text goes into the job's script too, so the
    next render re-narrates just the changed sentences and the subtitles stay exact."""
    if prompt is not None and clean_prompt(prompt) != split_row.prompt:
        split_row.prompt, split_row.prompt_edited = clean_prompt(prompt), True
    if text is not None:
        new_text = check_content(text)
        old_text = split_row.text
        if new_text != old_text:
            job = split_row.job
            _retext(split_row, job, new_text)
            split_row.sentences = _sentences_in(new_text, job)
            if old_text and old_text in job.content:
                job.content = job.content.replace(old_text, new_text, 1)
            else:
                texts = [
                    new_text if row.pk == split_row.pk else row.text for row in job.splits.order_by("index")
                ]
                job.content = "\n".join(texts)
            job.content = check_content(job.content)
            job.save(update_fields=["content", "updated_at"])
    split_row.save()
    return split_row


@transaction.atomic
def split_regenerate(*, split_row: JobSplit) -> JobSplit:
    """New pictures for a segment on the next render: generated ones are dropped, uploads kept."""
    split_row.images = split_row.images_except(JobSplit.GENERATED)
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
    if (
        clip is not None
        and user is not None
        and not user.is_superuser
        and not teams.usable_in(clip, split_row.job.team)
    ):
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
    return _add_images(split_row, [{"key": key, "seed": None, "source": JobSplit.CARD}], select=True)


def split_set_animation(*, split_row: JobSplit, key: str, picture: str) -> JobSplit:
    """The render's moving clip made from the segment's picture `picture` ("" and "": none). It is
    shown only while that picture stays selected (`JobSplit.moving_clip`)."""
    animation = {"key": key, "picture": picture} if key else {}
    if split_row.animation != animation:
        split_row.animation = animation
        split_row.save(update_fields=["animation", "updated_at"])
    return split_row


@transaction.atomic
def _add_images(split_row: JobSplit, images: list[dict], *, select: bool) -> JobSplit:
    split_row.images = [*split_row.images, *images]
    if select:
        split_row.selected = images[0]["key"]
        split_row.clip = None
    split_row.save(update_fields=["images", "selected", "clip", "updated_at"])
    return split_row


def _retext(split_row: JobSplit, job: Job, new_text: str, *, prompt: bool = True) -> None:
    """A segment's text changes: its render-made card stays while it still shows the right headline (the
    key phrase of the text's first clause), and a prompt the operator never edited follows the text (the
    topic's template: no language model is called in a request). Other pictures and choices stay."""
    language = job.language.code if job.language else ""
    if key_phrase(split_row.text, language=language) != key_phrase(new_text, language=language):
        _drop_cards(split_row)
    if prompt and not split_row.prompt_edited:
        split_row.prompt = _new_prompts(job, [new_text], llm=False).prompts[0]
    split_row.text = new_text


def _drop_cards(split_row: JobSplit) -> None:
    """A card shows its segment's old headline: the next render makes a new one. Other pictures stay."""
    cards = split_row.card_keys
    split_row.images = split_row.images_except((JobSplit.CARD,))
    if split_row.selected in cards:
        split_row.selected = ""


# ---------------------------------------------------------------- splitting and merging segments


@transaction.atomic
def split_divide(*, split_row: JobSplit, at: int) -> JobSplit:
    """Split a segment after its sentence number `at` (1-based); returns the new second part.

    The first part keeps the row and every choice (an edited prompt, pictures, selection, clip; its
    render-made card too, whose headline is its first clause). The second part gets a copy of the
    candidate pictures to pick from (the first one's card aside: it shows the other headline), nothing
    selected and no clip, so the next render gives it its own picture, and a prompt from the topic's
    template (no language model is called in a request). A prompt never edited follows each part's text.
    """
    job = split_row.job
    storyboard = _lock_storyboard(job)
    position = _position(storyboard, split_row)
    row = storyboard[position]
    sentences = sentences_of(row)
    number = row.index
    if len(sentences) < 2:
        raise ValidationError(
            {"at": f"Segment {number} is one sentence: there is no boundary in it to split at."}
        )
    if not 1 <= at < len(sentences):
        raise ValidationError(
            {
                "at": f"Segment {number} has {len(sentences)} sentences: split it after "
                f"sentence 1 to {len(sentences) - 1}, not after sentence {at}."
            }
        )
    cut_ms = _cut_ms(job, storyboard, position, at)
    first, second = sentences[:at], sentences[at:]
    _shift(job, after=row.index, by=1)
    second_text = split.join_texts(second)
    built = _new_prompts(job, [second_text], llm=False)
    # Its clip candidates come from the library only: no provider is asked during a request.
    [candidates], _notes = stock.segment_candidates(job=job, keywords=built.keywords, remote=False)
    new_part = JobSplit.objects.create(
        job=job,
        index=row.index + 1,
        start_ms=cut_ms,
        end_ms=row.end_ms,
        text=second_text,
        sentences=second,
        prompt=built.prompts[0],
        keywords=built.keywords[0],
        clip_candidates=candidates,
        images=row.images_except((JobSplit.CARD,)),
    )
    _retext(row, job, split.join_texts(first))
    row.sentences, row.end_ms = first, cut_ms
    row.save()
    split_row.refresh_from_db()
    return new_part


@transaction.atomic
def split_merge_next(*, split_row: JobSplit) -> JobSplit:
    """Merge a segment with the next one; returns the merged segment.

    It keeps the first one's row and choices (an edited prompt, selection, clip, its card: the merged
    text opens with its headline) and takes the second one's pictures as candidates (not its card: that
    shows the second one's headline); when the first showed only a render-made card and the second a
    picture or clip of the operator's, it shows the second one's choice instead.
    """
    job = split_row.job
    storyboard = _lock_storyboard(job)
    position = _position(storyboard, split_row)
    row = storyboard[position]
    if position + 1 >= len(storyboard):
        raise ValidationError(
            f"Segment {row.index} is the last one: there is no next segment to merge it with."
        )
    following = storyboard[position + 1]
    cards, following_cards = row.card_keys, following.card_keys
    following_chose = following.clip_id or (following.selected and following.selected not in following_cards)
    if not row.clip_id and (not row.selected or row.selected in cards) and following_chose:
        row.selected = "" if following.selected in following_cards else following.selected
        row.clip_id = following.clip_id
    keys = {image.get("key") for image in row.images}
    row.images = [
        *row.images,
        *[
            image
            for image in following.images
            if image.get("key") not in keys and image.get("key") not in following_cards
        ],
    ]
    sentences = sentences_of(row) + sentences_of(following)
    _retext(row, job, split.join_texts(sentences))
    row.sentences = sentences
    row.end_ms = following.end_ms
    following.delete()
    _shift(job, after=following.index, by=-1)
    row.save()
    split_row.refresh_from_db()
    return split_row


def _lock_storyboard(job: Job) -> list[JobSplit]:
    """The job's segments in order, with the job locked: one change to its storyboard at a time.
    A running render reads the storyboard as it goes, so its segments change once it is done."""
    list(Job.objects.select_for_update().filter(pk=job.pk).values_list("pk", flat=True))
    if job.executions.filter(status=ExecutionStatus.RUNNING).exists():
        raise ValidationError(
            "The job is rendering: split, merge or re-split its segments once the render is done."
        )
    return list(job.splits.select_related("clip").order_by("index"))


def _position(storyboard: list[JobSplit], split_row: JobSplit) -> int:
    for position, row in enumerate(storyboard):
        if row.pk == split_row.pk:
            return position
    raise ValidationError("That segment is no longer part of the storyboard; reload it.")


def _shift(job: Job, *, after: int, by: int) -> None:
    """Move the segments after index `after` by `by` places."""
    job.splits.filter(index__gt=after).update(index=F("index") + PARKED)
    job.splits.filter(index__gte=PARKED).update(index=F("index") - PARKED + by)


def _cut_ms(job: Job, storyboard: list[JobSplit], position: int, at: int) -> int:
    """Where a segment split after its sentence `at` changes picture: in the middle of that pause when
    the storyboard's narration is at hand, else by the share of characters (the next render puts the
    cut in the pause)."""
    row = storyboard[position]
    sentences = sentences_of(row)
    narration = storyboard_narration(job)
    texts = [text for segment in storyboard for text in sentences_of(segment)]
    if narration is not None and [sentence.text for sentence in narration.sentences] == texts:
        before = sum(len(sentences_of(segment)) for segment in storyboard[:position]) + at
        cut_ms = (narration.sentences[before - 1].end_ms + narration.sentences[before].start_ms) // 2
        if row.start_ms <= cut_ms <= row.end_ms:
            return cut_ms
    chars_before = sum(len(text) for text in sentences[:at])
    chars = max(1, sum(len(text) for text in sentences))
    return row.start_ms + (row.end_ms - row.start_ms) * chars_before // chars


# ---------------------------------------------------------------- the storyboard as a whole


def storyboard_narration(job: Job) -> StoryboardNarration | None:
    """The narration of the newest render that laid out the storyboard (None before the first)."""
    for steps in storyboard_layout_steps(job):
        narration = step_record(steps, "narration")
        if narration.data.get("sentences"):
            return StoryboardNarration(
                key=narration.outputs["narration"],
                duration_ms=int(narration.data["duration_ms"]),
                sentences=[TimedSentence(**sentence) for sentence in narration.data["sentences"]],
            )
    return None


def storyboard_runs(job: Job) -> list[list[str]]:
    """Each segment's sentences, in order."""
    return [sentences_of(row) for row in job.splits.order_by("index")]


def segments_plan(
    *, job: Job, sentences: list[TimedSentence], duration_ms: int, target_ms: int
) -> list[split.Segment]:
    """The storyboard on this narration: the current one carried over, or a new one."""
    previous = storyboard_runs(job)
    if not previous:
        return split.group_segments(sentences, duration_ms=duration_ms, target_ms=target_ms)
    return split.carry_over(previous, sentences, duration_ms=duration_ms, target_ms=target_ms)


def segments_fit(*, job: Job, segments: list[split.Segment], sentences: list[str]) -> bool:
    """Whether the job's rows are these segments already (saving them would change nothing)."""
    rows = list(job.splits.order_by("index"))
    return len(rows) == len(segments) and all(
        segment.origin == row.index == segment.index
        and row.start_ms == segment.start_ms
        and row.end_ms == segment.end_ms
        and row.text == segment.text
        and row.sentences == [sentences[i] for i in segment.sentence_indexes]
        for row, segment in zip(rows, segments)
    )


def segments_save(
    *,
    job: Job,
    segments: list[split.Segment],
    sentences: list[str],
    llm: bool = True,
    fence: Callable[[], None] | None = None,
) -> list[str]:
    """Write the storyboard: a segment that continues an earlier one (its `origin`) keeps that row and
    every choice on it, with new times, sentences and text (a prompt the operator never edited follows
    the text); new segments get new rows and prompts;
    rows no segment continues go (their pictures stay in storage for the clean-up).

    Prompts, footage keywords and clip candidates for new segments come first, outside the transaction:
    they may call an LLM and stock providers (only with `llm`, and providers only when the job shows
    clips). Clips are placed automatically only on a storyboard made from scratch that has none yet,
    the best-fitting first. A render passes its `fence`, checked under the job's row lock: a worker that
    lost its execution writes nothing. Returns notes for the execution's detail (a provider that failed).
    """
    previous = list(job.splits.order_by("index"))  # a segment's origin is its place in this list
    # New segments, and continued ones whose text changed under a prompt the operator never edited.
    prompted = [
        segment
        for segment in segments
        if segment.origin is None
        or (previous[segment.origin].text != segment.text and not previous[segment.origin].prompt_edited)
    ]
    built = _new_prompts(job, [segment.text for segment in prompted], llm=llm)
    new_prompts = dict(zip([id(segment) for segment in prompted], built.prompts))
    # Footage keywords and clip candidates for the new segments only.
    fresh = [keywords for segment, keywords in zip(prompted, built.keywords) if segment.origin is None]
    candidates, notes = stock.segment_candidates(job=job, keywords=fresh, remote=llm and clip_ratio(job) > 0)
    new_rows = iter(zip(fresh, candidates))
    from_scratch = all(segment.origin is None for segment in segments)
    with transaction.atomic():
        list(Job.objects.select_for_update().filter(pk=job.pk).values_list("pk", flat=True))
        if fence is not None:
            fence()
        continued = {segment.origin for segment in segments if segment.origin is not None}
        gone = [row.pk for position, row in enumerate(previous) if position not in continued]
        JobSplit.objects.filter(pk__in=gone).delete()
        job.splits.update(index=F("index") + PARKED)  # every row out of the way, then saved at its index
        rows = []
        for segment in segments:
            texts = [sentences[i] for i in segment.sentence_indexes]
            if segment.origin is None:
                keywords, clip_candidates = next(new_rows)
                row = JobSplit(job=job, keywords=keywords, clip_candidates=clip_candidates)
            else:
                row = previous[segment.origin]
                if row.text != segment.text:
                    _retext(row, job, segment.text, prompt=False)
            if id(segment) in new_prompts:
                row.prompt = new_prompts[id(segment)]
            row.index, row.start_ms, row.end_ms = segment.index, segment.start_ms, segment.end_ms
            row.text, row.sentences = segment.text, texts
            row.save()
            rows.append(row)
        if from_scratch and not any(row.clip_id for row in rows):
            _assign_clips(job, rows)
    return notes


def storyboard_resplit_plan(*, job: Job) -> ResplitPlan:
    """The storyboard grouped from scratch on its narration; a segment whose exact run of sentences
    survives keeps its row and choices, the others go."""
    narration = storyboard_narration(job)
    if narration is None:
        raise ValidationError(
            "This job has no storyboard yet: render it, and the render splits it into segments."
        )
    previous = storyboard_runs(job)
    segments = split.resplit(
        previous, narration.sentences, duration_ms=narration.duration_ms, target_ms=segment_target_ms(job)
    )
    kept = sorted(segment.origin for segment in segments if segment.origin is not None)
    dropped = [position for position in range(len(previous)) if position not in kept]
    return ResplitPlan(segments=segments, kept=kept, dropped=dropped)


def storyboard_resplit(*, job: Job) -> ResplitPlan:
    """Group the storyboard from scratch, as the operator asked (see storyboard_resplit_plan)."""
    with transaction.atomic():
        _lock_storyboard(job)
        plan = storyboard_resplit_plan(job=job)
        narration = storyboard_narration(job)
        segments_save(
            job=job,
            segments=plan.segments,
            llm=False,
            sentences=[sentence.text for sentence in narration.sentences],
        )
    return plan


def segment_target_ms(job: Job) -> int:
    return int(job.extra.get("segment_target_ms") or settings.SEGMENT_TARGET_MS)


def sentences_of(split_row: JobSplit) -> list[str]:
    """A segment's sentences; a row made before they were recorded has those of its text."""
    return list(split_row.sentences) if split_row.sentences else _sentences_in(split_row.text, split_row.job)


def _sentences_in(text: str, job: Job) -> list[str]:
    try:
        return split_sentences(text, language=job.language.code if job.language else "")
    except MediaError:  # nothing speakable (the render refuses such a script): the text stands alone
        return [text]


def _new_prompts(job: Job, texts: list[str], *, llm: bool) -> BuiltPrompts:
    if not texts:
        return BuiltPrompts([], "template", "", [])
    topic = job.topic
    return build_prompts(
        texts,
        prefix=topic.prompt_image_prefix if topic else "",
        image_prompt=topic.prompt_gen_image if topic else "",
        llm=_llm_settings() if llm else None,
        language=job.language.code if job.language else "",
    )


def clip_ratio(job: Job) -> float:
    """Share of segments shown with a real clip: the job's own setting, else its topic's."""
    if "real_clip_ratio" in job.extra:
        return float(job.extra["real_clip_ratio"])
    return job.topic.real_clip_ratio if job.topic else 0.0


def _llm_settings() -> dict | None:
    if not (settings.LLM_BASE_URL and settings.LLM_MODEL):
        return None
    return {"base_url": settings.LLM_BASE_URL, "api_key": settings.LLM_API_KEY, "model": settings.LLM_MODEL}


def _assign_clips(job: Job, rows: list[JobSplit]) -> None:
    library = list(StockClip.objects.usable_in(job.team))
    if not library:
        return
    choices = [
        clips.ClipChoice(id=clip.pk, duration_ms=clip.duration_ms, tags=clip.tag_set) for clip in library
    ]
    wanted = job.topic.tag_set if job.topic else set()
    # How well each clip fits each segment's keywords (its candidates), so the fitting clip wins.
    scores = {
        row.index: {candidate["id"]: candidate["score"] for candidate in row.clip_candidates} for row in rows
    }
    assignment = clips.assign_clips(
        len(rows), ratio=clip_ratio(job), clips=choices, seed=job.pk, wanted_tags=wanted, scores=scores
    )
    for row in rows:
        if row.index in assignment:
            row.clip_id = assignment[row.index]
            row.save(update_fields=["clip", "updated_at"])
