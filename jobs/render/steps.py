"""The render's steps, in one table: name, share of the progress bar, inputs, run.

`inputs(context)` returns the plain values a step's result depends on; the render hashes them
and reuses an earlier run's stored outputs when the hash matches. `run(context, inputs)` does
the work and returns (storage keys of its outputs, data for later steps and for reuse).
`restore(context, data)`, where a step has one, hands later steps what they need from that
data, whether the step ran now or was reused. Data may carry `fallbacks`: what the render used
instead of a missing model or service, said in the execution's detail.

One module past 500 lines because it is the one table of steps: each step's inputs, run and restore
sit together, so that what a step's reuse depends on can be read beside what it does.
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
from jobs import storyboard
from jobs.exports import timeline
from jobs.files import chunk_store, execution_key, fetch, file_digest, moving_clip_key, picture_key, store
from jobs.footage import stock
from jobs.models import FRAME_SIZES, Job, JobExecution, JobSplit, Orientation, Resource
from jobs.render.fanout import Tally, chunks_farm
from jobs.render.workspace import sentence_cache
from jobs.validation import check_content, voice_language_problem
from media_engine import cards, compose, layout, subtitles, tts, words
from media_engine.errors import Cancelled, MediaError
from media_engine.fonts import default_font_path
from media_engine.presenter import Placement, fetch_presenter_clip
from media_engine.sentences import Narration, TimedSentence, split_clauses, split_sentences


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
    # What running the step takes (a Resource, or a function of the job for a step that needs a
    # model only for some jobs); a reused step runs nothing and needs nothing.
    resource: str | Callable[[Job], str] = Resource.CPU

    def needs(self, job: Job) -> str:
        return self.resource(job) if callable(self.resource) else self.resource


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
    if problem := voice_language_problem(job.language, job.voice):
        raise ValidationError(problem)
    sentences = split_sentences(check_content(job.content), language=job.language.code)
    return {
        "sentences": sentences,
        # How they are cut into clauses (the narration's and the subtitles' unit).
        "clauses": [split_clauses(sentence) for sentence in sentences],
        "platform": job.language.platform,
        "language": job.language.code,
        "voice": job.voice.name if job.voice else "",
        "reference": file_digest(job.voice.reference) if job.voice else "",
        "speed": job.speech_speed,
        "uploaded": file_digest(job.narration_audio),
        "word_times": True,  # narrations made before word times are made again, once, to get them
        "spoken_form": 1,  # narrations made before numbers were read as words are made again, once
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
            raise MediaError(
                f"voice {voice.name!r}: reference file {voice.reference.name} is missing"
            ) from error
    spec = tts.VoiceSpec(name=inputs["voice"], language=inputs["language"], reference_path=reference_path)
    narration = tts.synthesize(
        inputs["sentences"],
        platform=inputs["platform"],
        voice=spec,
        speed=inputs["speed"],
        frame_rate=inputs["fps"],
        out_dir=context.workdir / "narration",
        cache_dir=sentence_cache(),
        options=settings.TTS_OPTIONS.get(inputs["platform"], {}),
        on_progress=lambda fraction: context.report("narration", fraction, "Narrating"),
        cancel=context.cancel,
    )
    key = context.store(narration.path, context.key("narration.wav"))
    return {"narration": key}, {
        "duration_ms": narration.duration_ms,
        "sentences": [vars(sentence) for sentence in narration.sentences],
        "words": words.as_data(narration.words),
        "word_source": narration.word_source,
        "clauses": [vars(clause) for clause in narration.clauses],
        "fallbacks": ["espeak-ng voice"] if inputs["platform"] == "espeak" else [],
    }


def _narration_from_upload(context: RenderContext, inputs: dict) -> Outputs:
    """An uploaded narration: FunASR finds when each of the script's sentences is spoken."""
    from media_engine import asr, ffmpeg

    if not settings.FUNASR_MODEL_DIR:
        raise MediaError(
            "this job has an uploaded narration, which needs FUNASR_MODEL_DIR (a local Paraformer)"
        )
    upload = fetch(context.job.narration_audio.name)
    narration_path = context.workdir / "narration.wav"
    ffmpeg.run(
        ["-i", upload, "-vn", "-ac", "1", "-ar", str(tts.SAMPLE_RATE), "-c:a", "pcm_s16le", narration_path],
        timeout=600,
        cancel=context.cancel,
    )
    duration_ms = int(ffmpeg.duration(narration_path) * 1000)
    context.report("narration", 0.2, "Recognising the narration")
    recognised = asr.transcribe(
        narration_path,
        model_dir=Path(settings.FUNASR_MODEL_DIR),
        vad_dir=Path(settings.FUNASR_VAD_DIR) if settings.FUNASR_VAD_DIR else None,
        punc_dir=Path(settings.FUNASR_PUNC_DIR) if settings.FUNASR_PUNC_DIR else None,
        words=True,  # per-character times align the script exactly
        scratch_dir=context.workdir / "tmp",
    )
    clauses = asr.align(
        [clause for group in inputs["clauses"] for clause in group], recognised, duration_ms=duration_ms
    )
    sentences, position = [], 0
    for text, group in zip(inputs["sentences"], inputs["clauses"]):
        first, last = clauses[position], clauses[position + len(group) - 1]
        sentences.append(TimedSentence(text, first.start_ms, last.end_ms))
        position += len(group)
    # Word times only where the model gave token times; sentence times alone would only be guessed.
    token_times = asr.has_token_times(recognised)
    spoken = asr.align_words(inputs["sentences"], recognised, sentences) if token_times else []
    key = context.store(narration_path, context.key("narration.wav"))
    return {"narration": key}, {
        "duration_ms": duration_ms,
        "sentences": [vars(sentence) for sentence in sentences],
        "words": words.as_data(spoken),
        "word_source": words.FUNASR_SOURCE if token_times else "",
        "clauses": [vars(clause) for clause in clauses],
        "fallbacks": [],
    }


def narration_restore(context: RenderContext, data: dict) -> None:
    context.narration = Narration(
        path=Path(""),  # later steps fetch the stored narration by its key
        duration_ms=data["duration_ms"],
        sentences=[TimedSentence(**sentence) for sentence in data["sentences"]],
        clauses=[TimedSentence(**clause) for clause in data["clauses"]],
        words=words.from_data(data.get("words", [])),  # none in narrations made before word times
        word_source=data.get("word_source", ""),
    )


# ---------------------------------------------------------------- subtitles


def _logo_path(job: Job) -> Path | None:
    return fetch(job.account.logo.name) if job.account and job.account.logo else None


def subtitles_inputs(context: RenderContext) -> dict:
    job = context.job
    inputs = {
        "clauses": [vars(clause) for clause in context.narration.clauses],
        "brand": _brand_inputs(job),
        "size": list(job.frame_size),
        "logo": file_digest(job.account.logo) if job.account else "",
    }
    if inputs["brand"]["subtitle_karaoke"]:
        inputs["words"] = words.as_data(context.narration.words)
        inputs["word_source"] = context.narration.word_source
    return inputs


def subtitles_run(context: RenderContext, inputs: dict) -> Outputs:
    """For each frame the job renders (its own, then the brand's renditions), one cue per clause
    wrapped for that frame: an SRT and a WebVTT (the platforms' closed captions) and an ASS (what
    compose burns in, with the spoken word highlighted where the brand asks for karaoke)."""
    job = context.job
    brand = Brand.from_extra(inputs["brand"])
    outputs: dict[str, str] = {}
    counts = []
    for suffix, (width, height) in _frames(job, brand):
        style, logo_box = _subtitle_layout(job, brand, width, height)
        cues = subtitles.make_cues(
            context.narration.clauses,
            font_path=default_font_path(),
            font_size=style.font_size,
            max_width_px=subtitles.safe_text_width(width, style, logo_box, height=height),
        )
        for name, write in (("srt", subtitles.write_srt), ("vtt", subtitles.write_vtt)):
            path = context.workdir / f"subtitles{suffix}.{name}"
            write(cues, path)
            outputs[f"{name}{suffix}"] = context.store(path, context.key(path.name))
        ass_path = context.workdir / f"subtitles{suffix}.ass"
        subtitles.write_ass(
            cues,
            ass_path,
            width=width,
            height=height,
            style=style,
            logo_box=logo_box,
            karaoke=brand.subtitle_karaoke,
            words=context.narration.words,
        )
        outputs[f"ass{suffix}"] = context.store(ass_path, context.key(f"subtitles{suffix}.ass"))
        counts.append(len(cues))
    missing = (
        words.missing_note(
            context.narration.word_source, context.narration.words, len(context.narration.sentences)
        )
        if brand.subtitle_karaoke
        else ""
    )
    return outputs, {"cues": counts[0], "fallbacks": [missing] if missing else []}


def _frames(job: Job, brand: Brand) -> list[tuple[str, tuple[int, int]]]:
    """(result-name suffix, frame size) of each video the job renders: its own frame (no suffix)
    first, then each other frame the brand's `renditions` lists ("_9x16", "_16x9")."""
    own = job.frame_size
    frames = [("", own)]
    for name in brand.renditions:
        size = FRAME_SIZES[Orientation.VERTICAL if name == "9:16" else Orientation.HORIZONTAL]
        if size not in [frame for _suffix, frame in frames]:
            frames.append(("_" + name.replace(":", "x"), size))
    return frames


def _subtitle_layout(
    job: Job, brand: Brand, width: int, height: int
) -> tuple[subtitles.SubtitleStyle, tuple[int, int, int, int] | None]:
    """The subtitle style of a frame and the logo box that subtitles and texts keep clear of: the same
    box the composition puts the logo in."""
    logo_box = compose.logo_box(
        compose.Plan(
            width=width,
            height=height,
            visuals=[],
            narration_path=Path(""),
            logo_path=_logo_path(job),
            logo_corner=brand.logo_corner,
            logo_scale=brand.logo_scale,
            logo_margin=brand.logo_margin,
        )
    )
    return brand.subtitle_style(width=width, height=height), logo_box


# ---------------------------------------------------------------- segments


def segments_inputs(context: RenderContext) -> dict:
    job = context.job
    narration = context.narration
    target_ms = storyboard.segment_target_ms(job)
    planned = storyboard.segments_plan(
        job=job, sentences=narration.sentences, duration_ms=narration.duration_ms, target_ms=target_ms
    )
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
        "storyboard": None
        if fits or not rows
        else [(row.index, row.start_ms, row.end_ms, row.text, row.sentences) for row in rows],
    }


def segments_run(context: RenderContext, inputs: dict) -> Outputs:
    """The storyboard laid on this narration: each segment keeps its choices, only times and texts move."""
    sentences = context.narration.sentences
    segments = storyboard.segments_plan(
        job=context.job, sentences=sentences, duration_ms=inputs["duration_ms"], target_ms=inputs["target_ms"]
    )
    notes = storyboard.segments_save(
        job=context.job, segments=segments, sentences=[s.text for s in sentences], fence=context.fence
    )
    return {}, {"segments": len(segments), "fallbacks": notes}


# ---------------------------------------------------------------- pictures


def pictures_inputs(context: RenderContext) -> dict:
    job = context.job
    splits = list(job.splits.order_by("index"))
    # A picture this step made itself (a card, a generated one) is an output, not an input, even once
    # chosen: only an operator's own picture counts.
    made = {
        image.get("key") for s in splits for image in s.images if image.get("source") in JobSplit.GENERATED
    }
    return {
        "splits": [
            (s.index, s.text, "" if s.selected in made else s.selected, s.clip_id, s.variant) for s in splits
        ],
        "palette": job.topic.palette if job.topic else [],
        "size": list(job.picture_size),
        "prompts": [s.prompt for s in splits],
        "model": settings.FLUX_MODEL_DIR,
        "lora": [job.topic.lora_name, job.topic.lora_weight] if job.topic else None,
    }


def pictures_run(context: RenderContext, inputs: dict) -> Outputs:
    job = context.job
    width, height = job.picture_size
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
            card_hash = inputs_hash(
                {
                    "text": split_row.text,
                    "palette": palette,
                    "size": [width, height],
                    "variant": split_row.variant,
                }
            )[:16]
            key = picture_key(job.pk, split_row.index, f"card-{card_hash}")
            if not default_storage.exists(key):
                local = context.workdir / f"card-{split_row.index:03d}.png"
                cards.render_card(
                    split_row.text,
                    width=width,
                    height=height,
                    palette=palette,
                    out_path=local,
                    seed=_card_seed(job, split_row),
                    language=job.language.code if job.language else "",
                )
                key = context.store(local, key)
            storyboard.split_set_card(split_row=split_row, key=key)
            fallbacks.append("picture cards")
        context.report("pictures", (number + 1) / len(splits), f"Pictures {number + 1}/{len(splits)}")
    return {}, {"fallbacks": sorted(set(fallbacks))}


def _card_seed(job: Job, split_row: JobSplit) -> int:
    return job.pk * 1000 + split_row.index + 7919 * split_row.variant


def _is_card(split_row: JobSplit) -> bool:
    return bool(split_row.selected) and split_row.selected in split_row.card_keys


def _has_picture(split_row: JobSplit) -> bool:
    return bool(split_row.selected) and default_storage.exists(split_row.selected)


def _lora_dir(job: Job) -> Path | None:
    return Path(settings.LORA_DIR) if settings.LORA_DIR and job.topic and job.topic.lora_name else None


def _generate_pictures(context: RenderContext, splits: list[JobSplit]) -> None:
    """Candidates from Flux (and the topic's LoRA) for segments without a picture; the first is selected."""
    from media_engine import images

    job = context.job
    width, height = job.picture_size
    topic = job.topic
    out_dir = context.workdir / "generated"
    for number, split_row in enumerate(splits):
        # Seeds differ per segment and per "regenerate pictures"; each is recorded.
        [candidates] = images.generate_candidates(
            [split_row.prompt],
            model_dir=Path(settings.FLUX_MODEL_DIR),
            width=width,
            height=height,
            candidates=settings.IMAGE_CANDIDATES,
            out_dir=out_dir,
            steps=settings.IMAGE_STEPS,
            seed=job.pk * 1_000_000 + split_row.index * 10_000 + split_row.variant * 100,
            lora_dir=_lora_dir(job),
            lora_name=topic.lora_name if topic else "",
            lora_weight=topic.lora_weight if topic else 100,
            on_progress=lambda fraction, number=number: context.report(
                "pictures",
                (number + fraction) / len(splits) * 0.95,
                f"Generating pictures {number + 1}/{len(splits)}",
            ),
            cancel=context.cancel,
        )
        added = []
        for picture in candidates:
            # The row's id in the key: another segment that had this index (before a split or merge)
            # keeps its own pictures.
            key = picture_key(job.pk, split_row.index, f"flux-{split_row.pk}-{picture.seed}")
            added.append(
                {"key": context.store(picture.path, key), "seed": picture.seed, "source": JobSplit.FLUX}
            )
        storyboard.split_add_generated(split_row=split_row, images=added)


# ---------------------------------------------------------------- moving pictures


def _i2v_settings() -> dict | None:
    """What a moving clip is made with (None: no model here). The device, offloading and VAE tiling
    only change where and how fast the same clip is made, so they are not part of it."""
    if not settings.I2V_MODEL_DIR:
        return None
    return {
        "model": settings.I2V_MODEL_DIR,
        "steps": settings.I2V_STEPS,
        "guidance": settings.I2V_GUIDANCE,
        "fps": settings.I2V_FPS,
        "max_frames": settings.I2V_MAX_FRAMES,
        "max_side": settings.I2V_MAX_SIDE,
    }


def _animate(job: Job) -> list[int]:
    """The segment indexes the job's `animate` option lists."""
    return job.extra.get("animate") or []


def _animated(job: Job, splits: list[JobSplit]) -> list[JobSplit]:
    """The segments the job's `animate` lists that show a picture (a real clip is kept)."""
    chosen = set(_animate(job))
    return [s for s in splits if s.index in chosen and not s.clip_id and s.selected]


def _moving_identity(split_row: JobSplit, made_with: dict) -> str:
    """A hash of everything a segment's moving clip is made from: its picture (key and stored size, so a
    file replaced under its key counts), its prompt, its length in the model's frames and the settings."""
    from media_engine import animation

    try:
        picture = f"{split_row.selected}:{default_storage.size(split_row.selected)}"
    except (OSError, ValueError):
        picture = f"{split_row.selected}:missing"
    frames = animation.frame_count(
        split_row.duration_ms, fps=made_with["fps"], max_frames=made_with["max_frames"]
    )
    return inputs_hash(
        {"picture": picture, "prompt": _motion_prompt(split_row), "frames": frames, "settings": made_with}
    )[:24]


def _motion_prompt(split_row: JobSplit) -> str:
    return split_row.prompt or split_row.text


def animation_inputs(context: RenderContext) -> dict:
    job = context.job
    splits = list(job.splits.order_by("index"))
    made_with = _i2v_settings()
    animated = _animated(job, splits)
    clips = {str(s.pk): _moving_identity(s, made_with) for s in animated} if made_with else {}
    return {
        "settings": made_with,
        # Per segment (by row, which keeps across splits and merges): the clip it should show, by identity.
        "clips": clips,
        "chosen": sorted(_animate(job)),
        "without_model": [s.index for s in animated] if not made_with else [],
        # Clips shown that are no longer wanted, to take down (none once the step has run).
        "unwanted": sorted(s.pk for s in splits if s.animation and str(s.pk) not in clips),
    }


def animation_run(context: RenderContext, inputs: dict) -> Outputs:
    """A moving clip (image-to-video, on the GPU host) for each segment the job's `animate` lists,
    made from its picture and prompt for its length; one made before from the same inputs is reused."""
    job = context.job
    splits = list(job.splits.order_by("index"))
    notes = []
    missing = sorted(set(inputs["chosen"]) - {s.index for s in splits})
    if missing:
        notes.append(
            f"animate lists segment(s) {', '.join(map(str, missing))}, which the storyboard does not have"
        )
    if inputs["without_model"]:
        notes.append("still pictures instead of moving clips (no I2V_MODEL_DIR)")
    wanted = {int(pk): identity for pk, identity in inputs["clips"].items()}
    made = reused = 0
    todo = [s for s in splits if s.pk in wanted]
    for number, split_row in enumerate(todo):
        if context.cancel():
            raise Cancelled("cancelled by an operator")
        key = moving_clip_key(job.pk, wanted[split_row.pk])
        if default_storage.exists(key):
            reused += 1
        else:
            key = context.store(
                _make_moving_clip(context, split_row, wanted[split_row.pk], number, len(todo)), key
            )
            made += 1
        storyboard.split_set_animation(split_row=split_row, key=key, picture=split_row.selected)
    for split_row in splits:
        if split_row.pk not in wanted and split_row.animation:
            storyboard.split_set_animation(split_row=split_row, key="", picture="")
    context.report("animation", 1.0, "Moving pictures")
    return {}, {"made": made, "reused": reused, "fallbacks": notes}


def _make_moving_clip(
    context: RenderContext, split_row: JobSplit, identity: str, number: int, count: int
) -> Path:
    from media_engine import animation

    return animation.animate(
        fetch(split_row.selected),
        _motion_prompt(split_row),
        model_dir=Path(settings.I2V_MODEL_DIR),
        duration_ms=split_row.duration_ms,
        out_path=context.workdir / f"moving-{identity}.mp4",  # an attempt's retry keeps what it made
        seed=int(hashlib.sha256(split_row.selected.encode()).hexdigest()[:8], 16),
        fps=settings.I2V_FPS,
        max_frames=settings.I2V_MAX_FRAMES,
        max_side=settings.I2V_MAX_SIDE,
        steps=settings.I2V_STEPS,
        guidance=settings.I2V_GUIDANCE,
        device=settings.I2V_DEVICE or None,
        cpu_offload=settings.I2V_CPU_OFFLOAD,
        vae_tiling=settings.I2V_VAE_TILING,
        on_progress=lambda fraction: context.report(
            "animation", (number + fraction) / count, f"Moving pictures {number + 1}/{count}"
        ),
        cancel=context.cancel,
        timeout=settings.FFMPEG_TIMEOUT_S,
    )


# ---------------------------------------------------------------- compose


def _presenter_wanted(job: Job) -> bool:
    return bool(job.extra.get("enable_digital_human")) and bool(settings.PRESENTER_URL)


def job_music(job: Job) -> str:
    """A storage key (the job's own upload) or BACKGROUND_MUSIC, the hosts' own file."""
    return job.extra.get("music") or settings.BACKGROUND_MUSIC


def burns_subtitles(job: Job) -> bool:
    """The job's own burn_subtitles, else its account's."""
    if isinstance(job.extra.get("burn_subtitles"), bool):
        return job.extra["burn_subtitles"]
    return Brand.of(job.account).burn_subtitles


def compose_inputs(context: RenderContext) -> dict:
    job = context.job
    splits = list(job.splits.select_related("clip").order_by("index"))
    return {
        "narration": context.execution.results.get("narration"),
        # Burned in only where the brand (or the job) says so; the SRT and WebVTT files are made either way.
        "subtitles": {
            suffix: context.execution.results.get(f"ass{suffix}") if burns_subtitles(job) else None
            for suffix, _size in _frames(job, Brand.of(job.account))
        },
        "visuals": [(s.start_ms, s.end_ms, s.shown[0]) for s in splits],
        "sentence_starts": [sentence.start_ms for sentence in context.narration.sentences],
        "logo": file_digest(job.account.logo) if job.account else "",
        "brand": _brand_inputs(job),
        "texts": [job.extra.get(name, "") for name in ("index_text", "title_text", "desc_text")],
        "music": job_music(job),
        "h2v": bool(job.extra.get("h2v")),
        "size": list(job.frame_size),
        "presenter": _presenter_wanted(job),
        # What the step's record holds besides the video: a record without the timeline (jobs.exports.timeline) is
        # not reused, so a render made before it was recorded is composed again.
        "records": ["timeline"],
    }


def compose_run(context: RenderContext, inputs: dict) -> Outputs:
    """One storyboard, one video per frame (the job's own and the brand's renditions), each also
    without the logo when the brand keeps plain videos. Each is made of chunks named by what they
    show (compose), so what the renditions share and what an earlier render made is reused."""
    job = context.job
    brand = Brand.from_extra(inputs["brand"])
    visuals, joins, _split_of = compose_visuals(job, brand, inputs["sentence_starts"])
    music_path = compose_music(job, inputs["music"])
    narration_path = fetch(inputs["narration"])
    placement = _presenter_placement(context, narration_path, brand) if inputs["presenter"] else None
    renders = [
        (suffix, size, plain)
        for suffix, size in _frames(job, brand)
        for plain in ((False, True) if brand.keep_plain_video else (False,))
    ]
    outputs = {}
    tally = Tally()  # chunks made, by worker (host:pid)
    chunks: list[str] = []
    sources: list[str] = []
    reused = 0
    for number, (suffix, size, plain) in enumerate(renders):
        subtitles_key = inputs["subtitles"][suffix]
        plan = compose_plan(
            job,
            brand,
            visuals=visuals,
            joins=joins,
            narration_path=narration_path,
            subtitles_path=fetch(subtitles_key) if subtitles_key else None,
            size=size,
            plain=plain,
            music_path=music_path,
            presenter=placement,
        )
        name = f"video{'_plain' if plain else ''}{suffix}"
        out_path = context.workdir / f"{name}.mp4"

        def report(fraction: float, number: int = number) -> None:
            counted = f": {tally.done} of {tally.total} chunks" if tally.total else ""
            context.report("compose", (number + fraction) / len(renders), f"Composing the video{counted}")

        composition = compose.render(
            plan,
            out_path,
            store=chunk_store(
                fence=context.fence, farm=chunks_farm(context.execution, tally, fence=context.fence)
            ),
            on_progress=report,
            cancel=context.cancel,
            timeout=settings.FFMPEG_TIMEOUT_S,
            scratch_dir=context.workdir / "tmp",
        )
        chunks.extend(composition.chunks)
        sources.extend(name for name in composition.sources if name not in sources)
        reused += len(composition.reused)
        outputs[name] = context.store(out_path, context.key(f"{name.replace('_', '-')}.mp4"))
        if number == 0:  # the job's own frame, with its logo: what the timeline export hands over
            splits = list(job.splits.select_related("clip").order_by("index"))
            record = timeline.timeline_record(
                plan=plan, splits=splits, music=inputs["music"], music_stored=bool(job.extra.get("music"))
            )
    # The chunks the videos are made of, and the audio track their audio chunk is cut from (what a
    # preview cuts its own from): the clean-up keeps them while this execution holds its files.
    return outputs, {
        "timeline": record,
        "chunks": chunks,
        "chunks_reused": reused,
        "chunk_sources": sources,
        "chunks_made_by": dict(tally.made_by),
    }


def compose_plan(
    job: Job,
    brand: Brand,
    *,
    visuals: list[compose.Visual],
    joins: list[str],
    narration_path: Path,
    subtitles_path: Path | None,
    size: tuple[int, int],
    plain: bool = False,
    music_path: Path | None = None,
    presenter: Placement | None = None,
) -> compose.Plan:
    """The job as compose sees it in one frame `size`: its visuals over a narration, with the brand's
    look (without the logo when `plain`) and the `presenter` if given. The render and a segment's
    preview use the same plan (a preview without the presenter: its clip is fetched by the render)."""
    width, height = size
    style, logo_box = _subtitle_layout(job, brand, width, height)
    return compose.Plan(
        width=width,
        height=height,
        visuals=visuals,
        narration_path=narration_path,
        subtitles_path=subtitles_path,
        logo_path=None if plain else _logo_path(job),
        logo_corner=brand.logo_corner,
        logo_scale=brand.logo_scale,
        logo_margin=brand.logo_margin,
        music_path=music_path,
        music_volume=brand.music_volume,
        loudness_lufs=brand.loudness_lufs,
        transitions=brand.transitions(joins, seed=job.pk),
        transition_s=brand.transition_s,
        texts=_text_blocks(job),
        # Texts keep above the subtitle band only where subtitles are burned in.
        subtitles_top=subtitles.subtitle_area(width, height, style, logo_box)[1] if subtitles_path else None,
        fps=settings.VIDEO_FPS,
        seed=job.pk,
        picture_size=job.picture_size,
        presenter=presenter,
        preset=brand.video_preset,
        crf=brand.video_crf,
    )


def compose_music(job: Job, music: str) -> Path | None:
    """The local path of the job's music (`job_music`'s answer), or None."""
    if job.extra.get("music"):
        if not default_storage.exists(music):
            raise MediaError(f"music {music} is not in storage; put the file there first")
        return fetch(music)
    return Path(music) if music else None


# Shortest framing of a still between two subtitle joins (enable_srt_concat_transition).
CUE_PIECE_MIN_MS = 1500


def compose_visuals(
    job: Job,
    brand: Brand,
    sentence_starts: list[int],
    *,
    shown: tuple[int, int] | None = None,
) -> tuple[list[compose.Visual], list[str], list[int]]:
    """The segments' visuals, what each join between them is ("segment" or "cue") and the segment
    (split index) each visual shows. With `shown` (first, last split index) only those segments'
    files are fetched (a preview); the others keep their storage key as path.

    With `enable_srt_concat_transition` a still is cut where a subtitle sentence starts inside its
    segment (the seed's transitions at subtitle joins): each piece gets its own motion, and the
    transition blends one framing of the picture into the next. A cross-fade of a picture into
    itself would show nothing, so the picture is reframed; clips play on uncut.
    """
    visuals: list[compose.Visual] = []
    joins: list[str] = []
    split_of: list[int] = []
    for number, split_row in enumerate(job.splits.select_related("clip").order_by("index")):
        key, kind = split_row.shown
        path = fetch(key) if shown is None or shown[0] <= number <= shown[1] else Path(key)
        bounds = [split_row.start_ms]
        if brand.enable_srt_concat_transition and kind == "still":
            for start in sentence_starts:
                if start - bounds[-1] >= CUE_PIECE_MIN_MS and split_row.end_ms - start >= CUE_PIECE_MIN_MS:
                    bounds.append(start)
        bounds.append(split_row.end_ms)
        # A real clip plays from its longest shot, past any fade-in (stock.clip_start_ms); a moving
        # clip from its first frame, the picture itself.
        offset_ms = (
            stock.clip_start_ms(split_row.clip, path=path, needed_ms=split_row.duration_ms)
            if split_row.clip and path.is_absolute()
            else 0
        )
        for piece, (start_ms, end_ms) in enumerate(zip(bounds, bounds[1:])):
            if visuals:
                joins.append("cue" if piece else "segment")
            visuals.append(
                compose.Visual(path=path, kind=kind, start_ms=start_ms, end_ms=end_ms, offset_ms=offset_ms)
            )
            split_of.append(number)
    return visuals, joins, split_of


def _presenter_placement(context: RenderContext, narration_path: Path, brand: Brand) -> Placement:
    """The talking presenter from the presenter server (one clip for every rendition, fetched again for
    this narration), placed as the brand profile says."""
    placement = brand.human_config
    clip_path = context.workdir / "presenter.mp4"
    clip_path.unlink(missing_ok=True)
    context.report("compose", 0.0, "Fetching the presenter")
    fetch_presenter_clip(narration_path, url=placement.url, out_path=clip_path)
    return Placement(
        clip_path=clip_path,
        mode=brand.human_insertion_mode,
        start_s=placement.start_s,
        end_s=placement.end_s,
        corner=placement.corner,
        scale=placement.scale,
        chroma_key=placement.chroma_key,
    )


def _text_blocks(job: Job) -> list[layout.TextBlock]:
    """The seed's persistent lines: index and title at the top, the description at the bottom."""
    return [
        layout.TextBlock(str(job.extra.get("index_text") or ""), position="top"),
        layout.TextBlock(str(job.extra.get("title_text") or ""), position="top", large=True),
        layout.TextBlock(str(job.extra.get("desc_text") or ""), position="bottom"),
    ]


# ---------------------------------------------------------------- cover


def cover_inputs(context: RenderContext) -> dict:
    job = context.job
    first = job.splits.select_related("clip").order_by("index").first()
    return {
        "video": context.execution.results.get("video"),
        "title": job.publish_title or job.title,
        "picture": [
            first.selected,
            first.clip.file.name if first.clip else "",
            first.variant,
            job.topic.palette if job.topic else [],
        ]
        if first
        else None,
        "prompt": job.topic.prompt_cover_image if job.topic and settings.FLUX_MODEL_DIR else "",
        "model": settings.FLUX_MODEL_DIR,
    }


def cover_run(context: RenderContext, inputs: dict) -> Outputs:
    width, height = context.job.frame_size
    if inputs["prompt"]:
        picture = _generate_cover(context, inputs["prompt"])
    else:
        picture = _cover_picture(context, inputs)
    cover = compose.make_cover(
        picture, inputs["title"], context.workdir / "cover.jpg", width=width, height=height
    )
    return {"cover": context.store(cover, context.key("cover.jpg"))}, {}


def _cover_picture(context: RenderContext, inputs: dict) -> Path:
    """The first segment's picture without text on it, so the title is the cover's only text: a card
    is drawn again without its phrase, a clip gives a frame; the video's own frame (with its
    subtitles) only when there is no segment."""
    job = context.job
    first = job.splits.select_related("clip").order_by("index").first()
    if first is None:
        return compose.extract_frame(fetch(inputs["video"]), 1.0, context.workdir / "cover-frame.png")
    if first.clip:
        return compose.extract_frame(fetch(first.clip.file.name), 1.0, context.workdir / "cover-frame.png")
    if _is_card(first):
        width, height = job.frame_size
        return cards.render_card(
            "",
            width=width,
            height=height,
            palette=job.topic.palette if job.topic else [],
            out_path=context.workdir / "cover-card.png",
            seed=_card_seed(job, first),
        )
    return fetch(first.selected)


def _generate_cover(context: RenderContext, prompt: str) -> Path:
    """The cover picture from the topic's cover prompt (Flux and the topic's LoRA)."""
    from media_engine import images

    job = context.job
    width, height = job.frame_size
    return images.cover_image(
        prompt,
        model_dir=Path(settings.FLUX_MODEL_DIR),
        width=width,
        height=height,
        seed=job.pk,
        out_path=context.workdir / "cover-picture.png",
        steps=settings.IMAGE_STEPS,
        lora_dir=_lora_dir(job),
        lora_name=job.topic.lora_name,
        lora_weight=job.topic.lora_weight,
        cancel=context.cancel,
    )


def narration_needs(job: Job) -> str:
    """An uploaded narration is aligned by FunASR (a model); a synthesized one by the TTS engines."""
    return Resource.GPU if job.narration_audio else Resource.CPU


def animation_needs(job: Job) -> str:
    """The image-to-video model, for a job that animates segments; otherwise the step only takes
    down clips no longer wanted, and no GPU host spends a task on it."""
    return Resource.GPU if _animate(job) else Resource.CPU


STEPS: dict[str, Step] = {
    "narration": Step(25, narration_inputs, narration_run, narration_restore, resource=narration_needs),
    "subtitles": Step(3, subtitles_inputs, subtitles_run),
    "segments": Step(2, segments_inputs, segments_run),
    "pictures": Step(12, pictures_inputs, pictures_run, resource=Resource.GPU),
    "animation": Step(3, animation_inputs, animation_run, resource=animation_needs),
    "compose": Step(50, compose_inputs, compose_run),
    "cover": Step(5, cover_inputs, cover_run),
}
