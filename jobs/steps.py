"""The render's steps, in one table: name, share of the progress bar, inputs, run.

`inputs(context)` returns the plain values a step's result depends on; the render hashes them
and reuses an earlier run's stored outputs when the hash matches. `run(context, inputs)` does
the work and returns (storage keys of its outputs, data for later steps and for reuse).
`restore(context, data)`, where a step has one, hands later steps what they need from that
data, whether the step ran now or was reused. Data may carry `fallbacks`: what the render used
instead of a missing model or service, said in the execution's detail.
"""

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage

from accounts.brand import Brand
from media_engine import cards, compose, subtitles, tts
from media_engine.errors import Cancelled, MediaError
from media_engine.fonts import default_font_path
from media_engine.sentences import Narration, TimedSentence, split_sentences

from . import storyboard
from .files import chunk_store, execution_key, fetch, file_digest, picture_key, store
from .models import Job, JobExecution, JobSplit
from .validation import check_content


@dataclass
class RenderContext:
    """What the steps of one execution share."""

    execution: JobExecution
    job: Job
    workdir: Path
    cancel: Callable[[], bool]
    report: Callable[..., None]  # report(step, fraction, message, force=False)
    fence: Callable[[], None]  # raises ClaimLost once another worker holds the execution
    fallbacks: list[str] = field(default_factory=list)
    narration: Narration | None = None

    def key(self, name: str) -> str:
        return execution_key(self.job.pk, self.execution.pk, name)

    def store(self, local_path: Path, key: str) -> str:
        """Store an output, unless this worker lost the execution (its new owner stores its own)."""
        self.fence()
        return store(local_path, key)


Outputs = tuple[dict[str, str], dict[str, Any]]


@dataclass(frozen=True)
class Step:
    weight: int  # share of the progress bar; the steps add up to 100
    inputs: Callable[[RenderContext], dict]
    run: Callable[[RenderContext, dict], Outputs]
    restore: Callable[[RenderContext, dict], None] | None = None


def inputs_hash(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _brand_inputs(job: Job) -> dict:
    """The job's brand, every default filled in, as plain values for a step's inputs."""
    return dataclasses.asdict(Brand.of(job.account))


# ---------------------------------------------------------------- narration


def narration_inputs(context: RenderContext) -> dict:
    job = context.job
    if job.language is None:
        raise ValidationError("The job has no language; choose one to narrate it.")
    return {
        "sentences": split_sentences(check_content(job.content)),
        "platform": job.language.platform,
        "language": job.language.code,
        "voice": job.voice.name if job.voice else "",
        "reference": file_digest(job.voice.reference) if job.voice else "",
        "speed": job.speech_speed,
        "uploaded": file_digest(job.narration_audio),
        "fps": settings.VIDEO_FPS,  # sentences lie on the video's frames
    }


def narration_run(context: RenderContext, inputs: dict) -> Outputs:
    if inputs["uploaded"]:
        return _narration_from_upload(context, inputs)
    job = context.job
    voice = job.voice
    reference_path = None
    if voice is not None and voice.reference:
        try:
            reference_path = fetch(voice.reference.name)
        except OSError as error:
            raise MediaError(f"voice {voice.name!r}: reference file {voice.reference.name} is missing") from error
    spec = tts.VoiceSpec(name=inputs["voice"], language=inputs["language"], reference_path=reference_path)
    narration = tts.synthesize(
        inputs["sentences"],
        platform=inputs["platform"],
        voice=spec,
        speed=inputs["speed"],
        frame_rate=inputs["fps"],
        out_dir=Path(settings.WORK_ROOT) / f"job-{job.pk}" / "narration",
        options=settings.TTS_OPTIONS.get(inputs["platform"], {}),
        on_progress=lambda fraction: context.report("narration", fraction, "Narrating"),
        cancel=context.cancel,
    )
    key = context.store(narration.path, context.key("narration.wav"))
    return {"narration": key}, {
        "duration_ms": narration.duration_ms,
        "sentences": [vars(sentence) for sentence in narration.sentences],
        "fallbacks": ["espeak-ng voice"] if inputs["platform"] == "espeak" else [],
    }


def _narration_from_upload(context: RenderContext, inputs: dict) -> Outputs:
    """An uploaded narration: FunASR finds when each of the script's sentences is spoken."""
    from media_engine import asr, ffmpeg

    if not settings.FUNASR_MODEL_DIR:
        raise MediaError("this job has an uploaded narration, which needs FUNASR_MODEL_DIR (a local Paraformer)")
    upload = fetch(context.job.narration_audio.name)
    narration_path = context.workdir / "narration.wav"
    ffmpeg.run(["-i", upload, "-vn", "-ac", "1", "-ar", str(tts.SAMPLE_RATE), "-c:a", "pcm_s16le", narration_path],
               timeout=600, cancel=context.cancel)
    duration_ms = int(ffmpeg.duration(narration_path) * 1000)
    context.report("narration", 0.2, "Recognising the narration")
    recognised = asr.transcribe(
        narration_path, model_dir=Path(settings.FUNASR_MODEL_DIR),
        vad_dir=Path(settings.FUNASR_VAD_DIR) if settings.FUNASR_VAD_DIR else None,
        punc_dir=Path(settings.FUNASR_PUNC_DIR) if settings.FUNASR_PUNC_DIR else None,
        words=True,  # per-character times align the script exactly
    )
    sentences = asr.align(inputs["sentences"], recognised, duration_ms=duration_ms)
    key = context.store(narration_path, context.key("narration.wav"))
    return {"narration": key}, {
        "duration_ms": duration_ms,
        "sentences": [vars(sentence) for sentence in sentences],
        "fallbacks": [],
    }


def narration_restore(context: RenderContext, data: dict) -> None:
    context.narration = Narration(
        path=Path(""),  # later steps fetch the stored narration by its key
        duration_ms=data["duration_ms"],
        sentences=[TimedSentence(**sentence) for sentence in data["sentences"]],
    )


# ---------------------------------------------------------------- subtitles


def _logo_path(job: Job) -> Path | None:
    return fetch(job.account.logo.name) if job.account and job.account.logo else None


def subtitles_inputs(context: RenderContext) -> dict:
    job = context.job
    return {
        "sentences": [vars(sentence) for sentence in context.narration.sentences],
        "brand": _brand_inputs(job),
        "size": list(job.frame_size),
        "logo": file_digest(job.account.logo) if job.account else "",
    }


def subtitles_run(context: RenderContext, inputs: dict) -> Outputs:
    job = context.job
    width, height = job.frame_size
    brand = Brand.from_extra(inputs["brand"])
    style = brand.subtitle_style(width=width, height=height)
    # Subtitles keep clear of the logo: the same box the composition puts it in.
    logo_box = compose.logo_box(compose.Plan(
        width=width, height=height, visuals=[], narration_path=Path(""), logo_path=_logo_path(job),
        logo_corner=brand.logo_corner,
    ))
    cues = subtitles.make_cues(
        context.narration.sentences,
        font_path=default_font_path(),
        font_size=style.font_size,
        max_width_px=subtitles.safe_text_width(width, style, logo_box),
    )
    srt_path = context.workdir / "subtitles.srt"
    ass_path = context.workdir / "subtitles.ass"
    subtitles.write_srt(cues, srt_path)
    subtitles.write_ass(cues, ass_path, width=width, height=height, style=style, logo_box=logo_box)
    return {
        "srt": context.store(srt_path, context.key("subtitles.srt")),
        "ass": context.store(ass_path, context.key("subtitles.ass")),
    }, {"cues": len(cues)}


# ---------------------------------------------------------------- segments


def segments_inputs(context: RenderContext) -> dict:
    job = context.job
    narration = context.narration
    target_ms = storyboard.segment_target_ms(job)
    planned = storyboard.segments_plan(job=job, sentences=narration.sentences,
                                       duration_ms=narration.duration_ms, target_ms=target_ms)
    fits = storyboard.segments_fit(job=job, segments=planned, sentences=[s.text for s in narration.sentences])
    rows = list(job.splits.order_by("index"))
    return {
        "sentences": [vars(sentence) for sentence in narration.sentences],
        "duration_ms": narration.duration_ms,
        "target_ms": target_ms,
        "topic": job.topic_id,
        "ratio": storyboard.clip_ratio(job),
        # The storyboard, when it does not fit this narration yet (a split, merge, re-split or text edit
        # since): the step runs and lays it on the narration. One that fits (or none yet) adds nothing,
        # so an unchanged job reuses the step.
        "storyboard": None if fits or not rows else [
            (row.index, row.start_ms, row.end_ms, row.text, row.sentences) for row in rows
        ],
    }


def segments_run(context: RenderContext, inputs: dict) -> Outputs:
    """The storyboard laid on this narration: each segment keeps its choices, only times and texts move."""
    sentences = context.narration.sentences
    segments = storyboard.segments_plan(job=context.job, sentences=sentences,
                                        duration_ms=inputs["duration_ms"], target_ms=inputs["target_ms"])
    storyboard.segments_save(job=context.job, segments=segments, sentences=[s.text for s in sentences],
                             fence=context.fence)
    return {}, {"segments": len(segments)}


# ---------------------------------------------------------------- pictures


def pictures_inputs(context: RenderContext) -> dict:
    job = context.job
    splits = list(job.splits.order_by("index"))
    # A card this step made itself is an output, not an input: only a chosen picture counts.
    cards_made = {image["key"] for s in splits for image in s.images if image.get("source") == "card"}
    return {
        "splits": [(s.index, s.text, "" if s.selected in cards_made else s.selected, s.clip_id, s.variant)
                   for s in splits],
        "palette": job.topic.palette if job.topic else [],
        "size": list(job.frame_size),
        "prompts": [s.prompt for s in splits],
        "model": settings.FLUX_MODEL_DIR,
        "lora": [job.topic.lora_name, job.topic.lora_weight] if job.topic else None,
    }


def pictures_run(context: RenderContext, inputs: dict) -> Outputs:
    job = context.job
    width, height = job.frame_size
    splits = list(job.splits.order_by("index"))
    palette = inputs["palette"]
    fallbacks: list[str] = []
    if settings.FLUX_MODEL_DIR:
        _generate_pictures(context, [s for s in splits if not s.clip_id and not _has_picture(s)])
    for number, split_row in enumerate(splits):
        if context.cancel():
            raise Cancelled("cancelled by an operator")
        if split_row.clip_id:
            fallbacks.append("clip library")
        elif not _has_picture(split_row):
            card_hash = inputs_hash({"text": split_row.text, "palette": palette, "size": [width, height],
                                     "variant": split_row.variant})[:16]
            key = picture_key(job.pk, split_row.index, f"card-{card_hash}")
            if not default_storage.exists(key):
                local = context.workdir / f"card-{split_row.index:03d}.png"
                cards.render_card(split_row.text, width=width, height=height, palette=palette, out_path=local,
                                  seed=job.pk * 1000 + split_row.index + 7919 * split_row.variant)
                key = context.store(local, key)
            storyboard.split_set_card(split_row=split_row, key=key)
            fallbacks.append("picture cards")
        context.report("pictures", (number + 1) / len(splits), f"Pictures {number + 1}/{len(splits)}")
    return {}, {"fallbacks": sorted(set(fallbacks))}


def _has_picture(split_row: JobSplit) -> bool:
    return bool(split_row.selected) and default_storage.exists(split_row.selected)


def _lora_dir(job: Job) -> Path | None:
    return Path(settings.LORA_DIR) if settings.LORA_DIR and job.topic and job.topic.lora_name else None


def _generate_pictures(context: RenderContext, splits: list[JobSplit]) -> None:
    """Candidates from Flux (and the topic's LoRA) for segments without a picture; the first is selected."""
    from media_engine import images

    job = context.job
    width, height = job.frame_size
    topic = job.topic
    out_dir = Path(settings.WORK_ROOT) / f"job-{job.pk}" / "generated"
    for number, split_row in enumerate(splits):
        # Seeds differ per segment and per "regenerate pictures"; each is recorded.
        [candidates] = images.generate_candidates(
            [split_row.prompt],
            model_dir=Path(settings.FLUX_MODEL_DIR), width=width, height=height,
            candidates=settings.IMAGE_CANDIDATES, out_dir=out_dir, steps=settings.IMAGE_STEPS,
            seed=job.pk * 1_000_000 + split_row.index * 10_000 + split_row.variant * 100,
            lora_dir=_lora_dir(job),
            lora_name=topic.lora_name if topic else "", lora_weight=topic.lora_weight if topic else 100,
            on_progress=lambda fraction, number=number: context.report(
                "pictures", (number + fraction) / len(splits) * 0.95,
                f"Generating pictures {number + 1}/{len(splits)}",
            ),
            cancel=context.cancel,
        )
        added = []
        for picture in candidates:
            # The row's id in the key: another segment that had this index (before a split or merge)
            # keeps its own pictures.
            key = picture_key(job.pk, split_row.index, f"flux-{split_row.pk}-{picture.seed}")
            added.append({"key": context.store(picture.path, key), "seed": picture.seed, "source": "flux"})
        storyboard.split_add_generated(split_row=split_row, images=added)


# ---------------------------------------------------------------- compose


def _presenter_wanted(job: Job) -> bool:
    return bool(job.extra.get("enable_digital_human")) and bool(settings.PRESENTER_URL)


def _music(job: Job) -> str:
    """A storage key (the job's own upload) or BACKGROUND_MUSIC, the hosts' own file."""
    return job.extra.get("music") or settings.BACKGROUND_MUSIC


def compose_inputs(context: RenderContext) -> dict:
    job = context.job
    splits = list(job.splits.select_related("clip").order_by("index"))
    return {
        "narration": context.execution.results.get("narration"),
        "subtitles": context.execution.results.get("ass"),
        "visuals": [(s.start_ms, s.end_ms, s.clip.file.name if s.clip else s.selected) for s in splits],
        "logo": file_digest(job.account.logo) if job.account else "",
        "brand": _brand_inputs(job),
        "texts": [job.extra.get(name, "") for name in ("index_text", "title_text", "desc_text")],
        "music": _music(job),
        "h2v": bool(job.extra.get("h2v")),
        "size": list(job.frame_size),
        "presenter": _presenter_wanted(job),
    }


def compose_run(context: RenderContext, inputs: dict) -> Outputs:
    plan = compose_plan(context.job, narration_key=inputs["narration"], subtitles_key=inputs["subtitles"])
    out_path = context.workdir / "video.mp4"
    share = 0.85 if inputs["presenter"] else 1.0
    composition = compose.render(
        plan, out_path, store=chunk_store(),
        on_progress=lambda fraction: context.report("compose", fraction * share, "Composing the video"),
        cancel=context.cancel,
        timeout=settings.FFMPEG_TIMEOUT_S,
    )
    if inputs["presenter"]:
        out_path = _add_presenter(context, out_path, plan.narration_path, Brand.from_extra(inputs["brand"]))
    # The chunks it is made of: the clean-up keeps them while this execution holds its files.
    return {"video": context.store(out_path, context.key("video.mp4"))}, {
        "chunks": composition.chunks, "chunks_reused": len(composition.reused),
    }


def compose_plan(
    job: Job, *, narration_key: str, subtitles_key: str | None, shown: tuple[int, int] | None = None,
) -> compose.Plan:
    """The job as compose sees it: its storyboard's pictures and clips over a stored narration.

    With `shown` (first, last segment), only those segments' files are fetched (a preview)."""
    width, height = job.frame_size
    brand = Brand.of(job.account)
    visuals = []
    for number, split_row in enumerate(job.splits.select_related("clip").order_by("index")):
        key, kind = (split_row.clip.file.name, "clip") if split_row.clip else (split_row.selected, "still")
        path = fetch(key) if shown is None or shown[0] <= number <= shown[1] else Path(key)
        visuals.append(compose.Visual(path=path, kind=kind, start_ms=split_row.start_ms, end_ms=split_row.end_ms))
    music_path = None
    music = _music(job)
    if job.extra.get("music"):
        if not default_storage.exists(music):
            raise MediaError(f"music {music} is not in storage; put the file there first")
        music_path = fetch(music)
    elif music:
        music_path = Path(music)
    return compose.Plan(
        width=width,
        height=height,
        visuals=visuals,
        narration_path=fetch(narration_key),
        subtitles_path=fetch(subtitles_key) if subtitles_key else None,
        logo_path=_logo_path(job),
        logo_corner=brand.logo_corner,
        music_path=music_path,
        transition=brand.transition,
        transition_s=brand.transition_s,
        texts=_text_overlays(job),
        fps=settings.VIDEO_FPS,
        seed=job.pk,
        h2v=bool(job.extra.get("h2v")),
        preset=settings.VIDEO_PRESET,
    )


def _add_presenter(context: RenderContext, video_path: Path, narration_path: Path, brand: Brand) -> Path:
    """The talking presenter from the presenter server, placed as the brand profile says."""
    from media_engine import presenter

    placement = brand.human_config
    clip = presenter.fetch_presenter_clip(
        narration_path, url=placement.url, out_path=context.workdir / "presenter.mp4"
    )
    out_path = context.workdir / "video-presenter.mp4"
    presenter.place_presenter(
        video_path, clip, out_path, mode=brand.human_insertion_mode,
        start_s=placement.start_s, end_s=placement.end_s, corner=placement.corner, scale=placement.scale,
        chroma_key=placement.chroma_key,
        on_progress=lambda fraction: context.report("compose", 0.85 + 0.15 * fraction, "Placing the presenter"),
        cancel=context.cancel,
    )
    return out_path


def _text_overlays(job: Job) -> list[compose.TextOverlay]:
    overlays = []
    if job.extra.get("index_text"):
        overlays.append(compose.TextOverlay(text=str(job.extra["index_text"]), position="top"))
    if job.extra.get("title_text"):
        overlays.append(compose.TextOverlay(text=str(job.extra["title_text"]), position="center", end_ms=4000))
    if job.extra.get("desc_text"):
        overlays.append(compose.TextOverlay(text=str(job.extra["desc_text"]), position="center",
                                            start_ms=1000, end_ms=4000))
    return overlays


# ---------------------------------------------------------------- cover


def cover_inputs(context: RenderContext) -> dict:
    job = context.job
    return {"video": context.execution.results.get("video"), "title": job.publish_title or job.title,
            "prompt": job.topic.prompt_cover_image if job.topic and settings.FLUX_MODEL_DIR else "",
            "model": settings.FLUX_MODEL_DIR}


def cover_run(context: RenderContext, inputs: dict) -> Outputs:
    width, height = context.job.frame_size
    if inputs["prompt"]:
        frame = _generate_cover(context, inputs["prompt"])
    else:
        frame = compose.extract_frame(fetch(inputs["video"]), 1.0, context.workdir / "cover-frame.png")
    cover = compose.make_cover(frame, inputs["title"], context.workdir / "cover.jpg", width=width, height=height)
    return {"cover": context.store(cover, context.key("cover.jpg"))}, {}


def _generate_cover(context: RenderContext, prompt: str) -> Path:
    """The cover picture from the topic's cover prompt (Flux and the topic's LoRA)."""
    from media_engine import images

    job = context.job
    width, height = job.frame_size
    return images.cover_image(
        prompt, model_dir=Path(settings.FLUX_MODEL_DIR), width=width, height=height, seed=job.pk,
        out_path=context.workdir / "cover-picture.png", steps=settings.IMAGE_STEPS,
        lora_dir=_lora_dir(job), lora_name=job.topic.lora_name, lora_weight=job.topic.lora_weight,
        cancel=context.cancel,
    )


STEPS: dict[str, Step] = {
    "narration": Step(25, narration_inputs, narration_run, narration_restore),
    "subtitles": Step(3, subtitles_inputs, subtitles_run),
    "segments": Step(2, segments_inputs, segments_run),
    "pictures": Step(15, pictures_inputs, pictures_run),
    "compose": Step(50, compose_inputs, compose_run),
    "cover": Step(5, cover_inputs, cover_run),
}
