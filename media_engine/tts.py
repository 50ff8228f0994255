"""Narration synthesized clause by clause, so every clause's (and sentence's) time is exact.

Each sentence is cut into clauses (`sentences.split_clauses`), and each clause becomes one WAV
in a content-addressed cache (`out_dir/sentences/`), so an edit re-synthesizes only the clauses
that changed and a rerun synthesizes nothing. A clause that still speaks longer than
`max_clause_ms` is cut in two and both halves are synthesized, so no subtitle cue stays up
much longer than that, whatever the voice's pace. The cached WAVs are already in one common
format (mono, 24 kHz, 16-bit); joining them is plain sample arithmetic, which is what makes
the times exact. Clauses of one sentence are joined with a shorter pause than sentences.
Backends that give word times (`word_source`) have them cached beside each clip
(`<key>.words.json`, media_engine.words), moved with the trim and the join. The voice reads each
clause's spoken form (media_engine.spoken: "$3.42" as "three dollars and forty-two cents"); the
clause, its cue and its word times keep the written text.
"""

import dataclasses
import hashlib
import importlib
import json
import os
import tempfile
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import ffmpeg, words
from .errors import Cancelled, MediaError
from .sentences import Narration, TimedSentence, TimedWord, split_clauses, split_in_two
from .spoken import spoken_form, written_words

SAMPLE_RATE = 24_000
MIN_SPEED, MAX_SPEED = 0.5, 2.0
# Loudness every sentence is brought to, and the peak it may never pass.
TARGET_RMS_DBFS = -20.0
PEAK_LIMIT_DBFS = -1.0
# A 10 ms frame counts as speech when its RMS is above this share of the loudest frame.
SPEECH_FRAME_SHARE = 0.05
# Kept around the speech when trimming, so soft onsets and endings are not cut.
TRIM_PADDING_MS = 30
# Pauses between sentences and, shorter, between the clauses of one sentence.
SENTENCE_PAUSE_MS = 250
CLAUSE_PAUSE_MS = 120
# A clause spoken longer than this is cut in two (a subtitle cue should last about 7 s).
MAX_CLAUSE_MS = 7000


@dataclass(frozen=True)
class VoiceSpec:
    name: str  # backend voice name, e.g. espeak "cmn", "en-us"; "" = backend default
    language: str  # BCP-47, e.g. "zh-CN", "en-US", "ja-JP"
    reference_path: Path | None = None  # reference audio for voice-cloning backends


class TTSBackend:
    """One speech engine. Subclasses write one sentence to a WAV file."""

    # Voice-cloning backends need a reference recording of the voice.
    needs_reference: bool = False
    # Names where the backend's word times come from; "" where it gives none.
    word_source: str = ""

    def __init__(self, options: dict | None = None) -> None:
        self.options = options or {}

    def synthesize_sentence(
        self, text: str, *, voice: VoiceSpec, speed: float, out_path: Path
    ) -> list[TimedWord] | None:
        """Write a WAV of `text` to out_path (any sample rate / channels). Raise MediaError.

        Backends with a `word_source` return the words' times in that audio."""
        raise NotImplementedError


class EspeakBackend(TTSBackend):
    """espeak-ng: robotic but always available, the fallback voice of every language.

    Spoken through its C library (media_engine.words), which gives each word's time.
    """

    word_source = words.ESPEAK_SOURCE
    # BCP-47 code (lower case) -> espeak-ng voice, where the voice is not the bare language
    # ("ja-JP" -> "ja", "de-DE" -> "de" need no entry).
    VOICES = {
        "zh": "cmn",
        "zh-cn": "cmn",
        "zh-sg": "cmn",
        "zh-tw": "cmn",
        "zh-hans": "cmn",
        "zh-hant": "cmn",
        "zh-hk": "yue",
        "en": "en-us",
        "en-us": "en-us",
        "en-gb": "en-gb",
        "fr": "fr-fr",
        "fr-fr": "fr-fr",
        "fr-be": "fr-be",
        "fr-ch": "fr-ch",
        "pt-br": "pt-br",
        "es-419": "es-419",
        "es-mx": "es-419",
    }
    WORDS_PER_MINUTE = 175  # espeak-ng's default rate, i.e. speed 1.0

    def synthesize_sentence(
        self, text: str, *, voice: VoiceSpec, speed: float, out_path: Path
    ) -> list[TimedWord]:
        speech = words.espeak_synthesize(
            text,
            voice=voice.name or self.voice_for(voice.language),
            rate=round(self.WORDS_PER_MINUTE * speed),
            out_path=out_path,
            timeout_s=float(self.options.get("timeout_s", 60)),
            library=self.options.get("library", words.ESPEAK_LIBRARY),
        )
        return speech.words

    @classmethod
    def voice_for(cls, language: str) -> str:
        code = language.strip().lower().replace("_", "-")
        primary = code.split("-")[0]
        return cls.VOICES.get(code) or cls.VOICES.get(primary) or primary


BACKENDS: dict[str, str] = {
    "espeak": "media_engine.tts.EspeakBackend",
    "seedvc": "media_engine.tts_http.SeedVCBackend",
    "azure": "media_engine.tts_http.AzureBackend",
    "edge": "media_engine.tts_http.EdgeBackend",
}


def get_backend(platform: str, options: dict | None = None) -> TTSBackend:
    dotted = BACKENDS.get(platform)
    if dotted is None:
        known = ", ".join(sorted(BACKENDS))
        raise MediaError(f"unknown TTS platform {platform!r}; known platforms: {known}")
    module_name, _, class_name = dotted.rpartition(".")
    try:
        backend_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise MediaError(f"TTS platform {platform!r} is not available: {error}") from error
    return backend_class(options)


def synthesize(
    sentences: list[str],
    *,
    platform: str,
    voice: VoiceSpec,
    speed: float,
    out_dir: Path,
    cache_dir: Path | None = None,
    options: dict | None = None,
    pause_ms: int = SENTENCE_PAUSE_MS,
    clause_pause_ms: int = CLAUSE_PAUSE_MS,
    max_clause_ms: int = MAX_CLAUSE_MS,
    frame_rate: int = 0,
    on_progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Narration:
    """Narrate `sentences` into `out_dir/narration.wav` with each sentence's and clause's exact times
    (every sentence on the video's frames, with `frame_rate`: see `_join`). Each clause's audio is
    cached in `cache_dir` (default `out_dir/sentences`, which may be shared by several processes);
    temporary files are made in `out_dir`, the caller's own folder."""
    if not sentences:
        raise MediaError("nothing to narrate: the sentence list is empty")
    for number, text in enumerate(sentences, start=1):
        if not text.strip():
            raise MediaError(f"sentence {number} is empty")
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise MediaError(f"speech speed {speed} is outside {MIN_SPEED}-{MAX_SPEED}")
    if pause_ms < 0 or clause_pause_ms < 0:
        raise MediaError(f"pauses must not be negative, got {pause_ms} and {clause_pause_ms} ms")
    backend = get_backend(platform, options)
    reference_hash = _check_reference(voice) if backend.needs_reference else ""

    cache_dir = Path(cache_dir or Path(out_dir) / "sentences")
    cache_dir.mkdir(parents=True, exist_ok=True)
    Path(out_dir).mkdir(parents=True, exist_ok=True)

    def clause_audio(number: int, text: str) -> tuple[np.ndarray, Path]:
        """The clause's audio, spoken in its spoken form (`spoken.spoken_form`)."""
        said = spoken_form(text, voice.language).text
        key = _cache_key(platform, voice, reference_hash, speed, said)
        cached_path = cache_dir / f"{key}.wav"
        samples = _read_cached(cached_path)
        if samples is not None and (not backend.word_source or words.read_sidecar(cached_path) is not None):
            cached_path.touch()  # used now: the workspace prune keeps it
            if backend.word_source:
                words.sidecar_path(cached_path).touch()
            return samples, cached_path
        try:
            _synthesize_into_cache(
                backend, said, voice=voice, speed=speed, cached_path=cached_path, scratch_dir=Path(out_dir)
            )
        except MediaError as error:
            message = f"sentence {number} ({text[:30]!r}): {error}"
            raise MediaError(message, permanent=error.permanent) from error
        samples = _read_cached(cached_path)
        if samples is None:
            raise MediaError(f"sentence {number}: the cached audio {cached_path.name} vanished")
        return samples, cached_path

    # Per sentence: its clauses, their trimmed audio and their word times inside that audio.
    spoken: list[list[tuple[str, np.ndarray, list[TimedWord] | None]]] = []
    for number, sentence in enumerate(sentences, start=1):
        if cancel is not None and cancel():
            raise Cancelled(f"cancelled before sentence {number} of {len(sentences)}")
        clauses: list[tuple[str, np.ndarray, list[TimedWord] | None]] = []
        pending = split_clauses(sentence)
        while pending:
            text = pending.pop(0)
            samples, cached_path = clause_audio(number, text)
            start, end = _speech_bounds(samples)
            halves = split_in_two(text) if end - start > max_clause_ms * SAMPLE_RATE // 1000 else None
            if halves is not None:
                pending[0:0] = halves
                continue
            clip_words = words.read_sidecar(cached_path) if backend.word_source else None
            if clip_words is not None:
                # The spoken words' times, given to the written words they read ("$3.42", not "dollars").
                clip_words = written_words(clip_words, spoken_form(text, voice.language))
                clip_words = words.shift(
                    clip_words,
                    -(start * 1000 // SAMPLE_RATE),
                    length_ms=-(-(end - start) * 1000 // SAMPLE_RATE),
                    sentence=number - 1,
                )
            clauses.append((text, _even_out(samples[start:end]), clip_words))
        spoken.append(clauses)
        if on_progress is not None:
            on_progress(number / len(sentences))

    narration = _join(
        spoken,
        sentences,
        pause_ms=pause_ms,
        clause_pause_ms=clause_pause_ms,
        frame_rate=frame_rate,
        narration_path=Path(out_dir) / "narration.wav",
    )
    return dataclasses.replace(narration, word_source=backend.word_source)


def _check_reference(voice: VoiceSpec) -> str:
    """The reference recording's content hash, after making sure it is readable audio."""
    path = voice.reference_path
    if path is None:
        raise MediaError(f"voice {voice.name!r} has no reference audio, which this TTS platform needs")
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"reference audio {path} does not exist")
    try:
        info = ffmpeg.probe(path)
    except MediaError as error:
        raise MediaError(f"reference audio {path} is not readable audio: {error}") from error
    if not any(stream.get("codec_type") == "audio" for stream in info.get("streams", [])):
        raise MediaError(f"reference audio {path} has no audio stream")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cache_key(platform: str, voice: VoiceSpec, reference_hash: str, speed: float, text: str) -> str:
    # Everything that changes the sound is in the key; the sample rate too, since the
    # cached files are stored already converted.
    fields = [platform, voice.name, voice.language, reference_hash, f"{speed:.3f}", text, SAMPLE_RATE]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


def _synthesize_into_cache(
    backend: TTSBackend, text: str, *, voice: VoiceSpec, speed: float, cached_path: Path, scratch_dir: Path
) -> None:
    """Synthesize, convert to the common format, and publish with an atomic rename, so a
    crash never leaves a half-written file that a rerun would take for a finished one. The
    temporary files live in `scratch_dir` (on the cache's file system, for the rename)."""
    scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_dir, prefix=".tmp-") as work_dir:
        raw_path = Path(work_dir) / "raw.wav"
        converted_path = Path(work_dir) / "converted.wav"
        spoken = backend.synthesize_sentence(text, voice=voice, speed=speed, out_path=raw_path)
        if not raw_path.is_file() or raw_path.stat().st_size == 0:
            raise MediaError("the TTS backend wrote no audio")
        ffmpeg.run(
            [
                "-i",
                raw_path,
                "-map",
                "0:a:0",
                "-ac",
                "1",
                "-ar",
                str(SAMPLE_RATE),
                "-c:a",
                "pcm_s16le",
                "-map_metadata",
                "-1",
                "-f",
                "wav",
                converted_path,
            ],
            timeout=120,
        )
        samples = _read_cached(converted_path)
        if samples is None:
            raise MediaError("the converted audio is unreadable")
        # Checked before caching, so a rerun asks the backend again instead of reusing silence.
        if _is_silent(samples):
            raise MediaError("the TTS backend returned silence")
        if backend.word_source:  # the times survive the conversion: it keeps the duration
            words.write_sidecar(cached_path, spoken or [])
        os.replace(converted_path, cached_path)


def _read_cached(path: Path) -> np.ndarray | None:
    """Samples as float32 in -1..1, or None when the file is missing or unreadable."""
    try:
        with wave.open(str(path), "rb") as reader:
            if (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) != (1, 2, SAMPLE_RATE):
                return None
            frames = reader.readframes(reader.getnframes())
    except (FileNotFoundError, EOFError, wave.Error):
        return None
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0


def _frame_rms(samples: np.ndarray) -> np.ndarray:
    frame = SAMPLE_RATE // 100  # 10 ms
    usable = len(samples) - len(samples) % frame
    frames = samples[:usable].reshape(-1, frame)
    return np.sqrt(np.mean(frames**2, axis=1))


def _is_silent(samples: np.ndarray) -> bool:
    rms = _frame_rms(samples)
    return len(rms) == 0 or rms.max() < 1e-4  # below -80 dBFS: nothing was said


def _speech_bounds(samples: np.ndarray) -> tuple[int, int]:
    """Where to cut leading and trailing silence, keeping a little padding around the speech:
    (first, end) sample indexes, `first` a whole number of milliseconds."""
    if _is_silent(samples):  # a cache file written by hand or by an older version
        raise MediaError("cached sentence audio is silent; delete it to synthesize it again")
    rms = _frame_rms(samples)
    speech = np.flatnonzero(rms >= rms.max() * SPEECH_FRAME_SHARE)
    frame = SAMPLE_RATE // 100
    padding = SAMPLE_RATE * TRIM_PADDING_MS // 1000
    start = max(0, speech[0] * frame - padding)
    end = min(len(samples), (speech[-1] + 1) * frame + padding)
    return int(start), int(end)


def _even_out(samples: np.ndarray) -> np.ndarray:
    """Bring the speech to one loudness, measured on the speech frames only (pauses inside a
    sentence would otherwise make it louder), without letting the peak clip."""
    rms = _frame_rms(samples)  # the trim left at least one frame, holding speech
    speech_rms = rms[rms >= rms.max() * SPEECH_FRAME_SHARE]
    loudness = float(np.sqrt(np.mean(speech_rms**2)))
    peak = float(np.abs(samples).max())
    gain = min(10 ** (TARGET_RMS_DBFS / 20) / loudness, 10 ** (PEAK_LIMIT_DBFS / 20) / peak)
    return samples * gain


def frame_edge(samples: int, frame_rate: int) -> int:
    """The first video frame boundary at or after `samples` (at SAMPLE_RATE): where narration times
    are put so that they lie on the video's frames."""
    frame = -(-samples * frame_rate // SAMPLE_RATE)  # ceil
    return -(-frame * SAMPLE_RATE // frame_rate)


def _join(
    spoken: list[list[tuple[str, np.ndarray, list[TimedWord] | None]]],
    sentences: list[str],
    *,
    pause_ms: int,
    clause_pause_ms: int,
    narration_path: Path,
    frame_rate: int = 0,
) -> Narration:
    """Concatenate with pauses; times come from sample counts. Every clip is padded to a whole
    millisecond; with `frame_rate`, every clause is padded to a whole video frame and every pause
    lasts an even number of frames: every sentence and clause starts and ends on a frame, and the
    cut halfway through a pause too, so a sentence that gets longer moves the later ones, and their
    subtitle cues, by whole frames (the video's chunks for them stay the same). Clause cues are
    where their audio is. Word times (in each clip, labelled with their sentence) follow their
    clause and, with `frame_rate`, are put on frames by the same rule (`frame_edge`, counted from
    the clause's start): a karaoke caption moved by whole frames keeps its frames too."""
    per_ms = SAMPLE_RATE // 1000

    def edge(samples: int) -> int:
        return frame_edge(samples, frame_rate) if frame_rate else samples

    def to_ms(samples: int) -> int:
        return round(samples * 1000 / SAMPLE_RATE)

    def pause(position: int, ms: int) -> int:
        """Samples of silence after `position`: `ms`, or with `frame_rate` the even number of frames
        nearest to it (`position` is then on a frame)."""
        if not frame_rate:
            return ms * per_ms
        frame = position * frame_rate // SAMPLE_RATE
        return -(-(frame + 2 * round(ms * frame_rate / 2000)) * SAMPLE_RATE // frame_rate) - position

    parts: list[np.ndarray] = []
    timed_sentences: list[TimedSentence] = []
    timed_clauses: list[TimedSentence] = []
    timed_words: list[TimedWord] = []
    position = 0  # samples: a whole millisecond, or (with `frame_rate`) a frame boundary
    for sentence_index, (clauses, sentence) in enumerate(zip(spoken, sentences)):
        for clause_index, (text, clip, clip_words) in enumerate(clauses):
            if sentence_index or clause_index:
                length = pause(position, clause_pause_ms if clause_index else pause_ms)
                parts.append(np.zeros(length, dtype=np.float32))
                position += length
            end = edge(position + len(clip)) if frame_rate else position + len(clip) + (-len(clip) % per_ms)
            clip = np.pad(clip, (0, end - position - len(clip)))
            parts.append(clip)
            timed_clauses.append(TimedSentence(text=text, start_ms=to_ms(position), end_ms=to_ms(end)))
            timed_words.extend(
                TimedWord(
                    word.text,
                    to_ms(position + min(end - position, edge(word.start_ms * per_ms))),
                    to_ms(position + min(end - position, edge(word.end_ms * per_ms))),
                    word.sentence,
                )
                for word in clip_words or ()
            )
            position = end
        first = timed_clauses[-len(clauses)]
        timed_sentences.append(TimedSentence(text=sentence, start_ms=first.start_ms, end_ms=to_ms(position)))
    position_ms = to_ms(position)

    pcm = (np.clip(np.concatenate(parts), -1.0, 1.0) * 32767).astype("<i2")
    temporary_path = narration_path.with_name(f".{narration_path.name}.tmp")
    with wave.open(str(temporary_path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(pcm.tobytes())
    os.replace(temporary_path, narration_path)
    return Narration(
        path=narration_path,
        duration_ms=position_ms,
        sentences=timed_sentences,
        clauses=timed_clauses,
        words=timed_words,
    )
