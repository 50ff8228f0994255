"""Word times from the speech engine's own events, and keeping them exact through trim and join.

espeak-ng is driven through its C library (libespeak-ng.so.1, ctypes), not its CLI, because
only the library reports what it says when: in AUDIO_OUTPUT_SYNCHRONOUS mode the synthesis
callback receives the audio together with events. A word event carries the word's place in
the text (1-based, in characters) and its start in the audio (ms); phoneme events carry the
pause phonemes ("_", "_:") and language switches, so a word ends where the silence after
its last sounding phoneme begins, not where the next word starts after a comma's pause.
The synthesis flags are the CLI's (`espeak-ng --stdin -w`), and like the CLI every text is
spoken by a fresh process (this module run as a child), so the audio is the CLI's, sample
for sample.

Other sources: edge-tts's WordBoundary events (tts_http.EdgeBackend) and FunASR's token
timestamps for an uploaded narration (asr.align_words). Azure over REST and SeedVC give none.

Times are relative to the audio they came with; `shift` moves them with the silence that
tts trims off the front of a clip, and tts's join with the clip's place in the narration (on the
video's frames, as the clauses are).
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import unicodedata
import wave
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import MediaError
from .processes import bound_to_parent
from .sentences import TimedWord, is_cjk

ESPEAK_LIBRARY = "libespeak-ng.so.1"
ESPEAK_SOURCE = "espeak-ng word events"
EDGE_SOURCE = "edge-tts WordBoundary"
FUNASR_SOURCE = "FunASR token timestamps"

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_EVENT_LIST_TERMINATED, _EVENT_WORD, _EVENT_END, _EVENT_MSG_TERMINATED, _EVENT_PHONEME = 0, 1, 5, 6, 7
_POS_CHARACTER = 1
# The flags the espeak-ng CLI synthesizes with: espeakCHARS_AUTO | espeakPHONEMES | espeakENDPAUSE.
_CLI_SYNTH_FLAGS = 0 | 0x100 | 0x1000
_RATE = 1  # espeakRATE
_ERRORS = {
    1: "internal error",
    2: "voice or file not found",
    0x10000001: "buffer full",
    0x10000002: "not found",
}


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class EngineEvent:
    """What the word-time logic needs of one espeak-ng event."""

    kind: str  # "word", "phoneme" or "end"
    audio_ms: int
    text_position: int = 0  # 1-based character index (word events)
    length: int = 0  # characters (word events)
    phoneme: str = ""  # mnemonic (phoneme events)


@dataclass(frozen=True)
class EspeakSpeech:
    sample_rate: int
    duration_ms: int
    words: list[TimedWord]


_EXIT_CANNOT_WRITE = 3


def espeak_synthesize(
    text: str,
    *,
    voice: str,
    rate: int,
    out_path: Path,
    timeout_s: float = 60.0,
    library: str = ESPEAK_LIBRARY,
) -> EspeakSpeech:
    """Write `text` spoken by espeak-ng to out_path (WAV) exactly as `espeak-ng -v voice -s rate
    --stdin -w out_path` would, and return its word times.

    Each text is spoken in a child process, as the CLI does: the library keeps state from one
    text to the next (a later text's pauses and waveform differ), and espeak_Terminate followed
    by espeak_Initialize does not reset it (and can hang). A child also makes the timeout a kill.
    """
    package_root = str(Path(__file__).resolve().parents[1])
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH", "")])),
    }
    command = [
        sys.executable,
        "-c",
        "from media_engine.words import _espeak_child; _espeak_child()",
        library,
        voice,
        str(rate),
        str(out_path),
    ]
    try:
        completed = subprocess.run(
            bound_to_parent(command),
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=timeout_s,
            env=environment,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise MediaError(f"espeak-ng took longer than {timeout_s:.0f} s", permanent=False) from error
    if completed.returncode != 0:
        message = completed.stderr.decode("utf-8", "replace").strip().splitlines()
        # A WAV it could not write (a full disk, a folder removed under it) may work next time.
        raise MediaError(
            f"espeak-ng failed: {message[-1] if message else f'exit {completed.returncode}'}",
            permanent=completed.returncode != _EXIT_CANNOT_WRITE,
        )
    result = json.loads(completed.stdout)
    events = [EngineEvent(**event) for event in result["events"]]
    return EspeakSpeech(
        sample_rate=result["sample_rate"],
        duration_ms=result["duration_ms"],
        words=words_from_events(text, events, duration_ms=result["duration_ms"]),
    )


def _espeak_child() -> None:
    """The child's side: text on stdin; the WAV to argv[4]; JSON {sample_rate, duration_ms, events}
    on stdout; on failure a one-line message on stderr and exit status 1 (or _EXIT_CANNOT_WRITE when
    the WAV could not be written)."""
    library_name, voice, rate, out_path = sys.argv[1:5]
    text = sys.stdin.buffer.read()
    try:
        try:
            library = ctypes.CDLL(library_name)
        except OSError as error:
            raise MediaError(f"espeak-ng is not installed: cannot load {library_name} ({error})") from error
        library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        library.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        library.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        sample_rate = library.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS
        )
        if sample_rate <= 0:
            raise MediaError(
                f"cannot start (espeak_Initialize returned {sample_rate}): is espeak-ng-data installed?"
            )
        pcm: list[bytes] = []
        events: list[dict] = []

        def on_synth(wav, count, event_list) -> int:
            if wav and count > 0:
                pcm.append(ctypes.string_at(wav, count * 2))
            index = 0
            while event_list[index].type != _EVENT_LIST_TERMINATED:
                event = event_list[index]
                if event.type == _EVENT_WORD:
                    events.append(
                        {
                            "kind": "word",
                            "audio_ms": event.audio_position,
                            "text_position": event.text_position,
                            "length": event.length,
                        }
                    )
                elif event.type == _EVENT_PHONEME:
                    mnemonic = event.id.string.split(b"\0")[0].decode("ascii", "replace")
                    events.append({"kind": "phoneme", "audio_ms": event.audio_position, "phoneme": mnemonic})
                elif event.type in (_EVENT_END, _EVENT_MSG_TERMINATED):
                    events.append({"kind": "end", "audio_ms": event.audio_position})
                index += 1
            return 0

        callback = _CALLBACK(on_synth)
        library.espeak_SetSynthCallback(callback)
        status = library.espeak_SetVoiceByName(voice.encode())
        if status != 0:
            raise MediaError(f"no voice {voice!r} ({_ERRORS.get(status, status)})")
        library.espeak_SetParameter(_RATE, int(rate), 0)
        status = library.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _CLI_SYNTH_FLAGS, None, None)
        if status != 0:
            raise MediaError(_ERRORS.get(status, str(status)))
    except MediaError as error:
        sys.stderr.write(f"{error}\n")
        sys.exit(1)
    audio = b"".join(pcm)
    try:
        with open(out_path, "wb") as file, wave.open(file, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(sample_rate)
            writer.writeframes(audio)
    except OSError as error:
        sys.stderr.write(f"cannot write {out_path}: {error.strerror or error}\n")
        sys.exit(_EXIT_CANNOT_WRITE)
    duration_ms = len(audio) // 2 * 1000 // sample_rate
    sys.stdout.write(json.dumps({"sample_rate": sample_rate, "duration_ms": duration_ms, "events": events}))


def _is_silent_phoneme(mnemonic: str) -> bool:
    # "_", "_:", "_!", "_|" ... are pauses and boundaries; "(en)", "(cmn" switch language.
    return mnemonic.startswith(("_", "("))


def words_from_events(text: str, events: Sequence[EngineEvent], *, duration_ms: int) -> list[TimedWord]:
    """Words of `text` with times from espeak-ng's events.

    A word starts at its word event. It ends at the first silent phoneme of the run of silent
    phonemes (pauses, boundaries) that precedes the next word, or at the next word's start.
    espeak-ng sends several word events for one written word it reads as several ("3.14"):
    they stay one word. A word event with no length (after a quote mark, say) names the word
    that starts there; one that no sounding phoneme follows (a stray one at a clause end) is
    not a word.
    """
    words: list[TimedWord] = []
    current: dict | None = None  # the word being spoken: text, start, first, last, sounded
    silence_from: int | None = None

    def close(at_ms: int) -> None:
        if current is None or not current["sounded"]:
            return
        end_ms = min(duration_ms, silence_from if silence_from is not None else at_ms)
        words.append(TimedWord(current["text"], current["start"], max(current["start"], end_ms)))

    for event in events:
        if event.kind == "word":
            first = event.text_position - 1
            if current is not None and current["sounded"] and current["first"] <= first < current["last"]:
                continue  # another part of the written word being spoken
            span = _word_span(text, first, event.length)
            if span is None:
                continue
            close(event.audio_ms)
            start_ms = max(words[-1].end_ms if words else 0, min(duration_ms, event.audio_ms))
            current = {
                "text": text[span[0] : span[1]],
                "start": start_ms,
                "first": span[0],
                "last": span[1],
                "sounded": False,
            }
            silence_from = None
        elif event.kind == "phoneme":
            if not _is_silent_phoneme(event.phoneme):
                silence_from = None
                if current is not None:
                    current["sounded"] = True
            elif silence_from is None:
                silence_from = event.audio_ms
        elif event.kind == "end" and silence_from is None:
            silence_from = event.audio_ms
    close(duration_ms)
    return words


def _is_word_character(char: str) -> bool:
    return unicodedata.category(char)[0] in "LN"


def _word_span(text: str, first: int, length: int) -> tuple[int, int] | None:
    """(start, end) in `text` of the word an event points at, without punctuation around it."""
    if not 0 <= first < len(text):
        return None
    if length > 0:
        start, end = first, min(len(text), first + length)
        while start < end and not _is_word_character(text[start]):
            start += 1
        while end > start and not _is_word_character(text[end - 1]):
            end -= 1
        if start < end:
            return start, end
    start = first
    while start < len(text) and not _is_word_character(text[start]):
        start += 1
    if start == len(text):
        return None
    if is_cjk(text[start]):
        return start, start + 1
    end = start
    while end < len(text) and (
        _is_word_character(text[end])
        or (text[end] in "'’-" and end + 1 < len(text) and _is_word_character(text[end + 1]))
    ):
        if end > start and is_cjk(text[end]):
            break
        end += 1
    return start, end


def shift(words: Iterable[TimedWord], offset_ms: int, *, length_ms: int, sentence: int) -> list[TimedWord]:
    """Words moved by `offset_ms` (negative: audio was cut off the front), kept inside
    0..length_ms, and labelled with their sentence; a word left with no time at all is dropped."""
    moved: list[TimedWord] = []
    for word in words:
        start = min(length_ms, max(0, word.start_ms + offset_ms))
        end = min(length_ms, max(0, word.end_ms + offset_ms))
        if end > start or (start == end and 0 < start < length_ms):
            moved.append(TimedWord(word.text, start, end, sentence))
    return moved


def missing_note(source: str, words: Sequence[TimedWord], sentence_count: int) -> str:
    """What a job's detail says when karaoke captions lack word times for some sentences ("" when none do)."""
    timed = {word.sentence for word in words}
    missing = sentence_count - len(timed)
    if not source:
        return "no word times for this narration: karaoke captions keep clause timing"
    if missing > 0:
        return f"no word times for {missing} of {sentence_count} sentences: those keep clause timing"
    return ""


# --- the cache's sidecar files ------------------------------------------------------------------


def sidecar_path(audio_path: Path) -> Path:
    return Path(audio_path).with_suffix(".words.json")


def write_sidecar(audio_path: Path, words: Sequence[TimedWord]) -> None:
    """Word times beside a cached clip (written before the clip is published, so a clip that
    exists has its words)."""
    payload = [{"text": word.text, "start_ms": word.start_ms, "end_ms": word.end_ms} for word in words]
    # A name of this process's own: another process may be caching the same clip into the same folder.
    temporary = sidecar_path(audio_path).with_name(f".{sidecar_path(audio_path).name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, sidecar_path(audio_path))


def read_sidecar(audio_path: Path) -> list[TimedWord] | None:
    """The cached clip's word times, or None when there is no readable sidecar."""
    try:
        payload = json.loads(sidecar_path(audio_path).read_text(encoding="utf-8"))
        return [TimedWord(str(item["text"]), int(item["start_ms"]), int(item["end_ms"])) for item in payload]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def as_data(words: Sequence[TimedWord]) -> list[dict]:
    return [asdict(word) for word in words]


def from_data(items: Iterable[dict]) -> list[TimedWord]:
    return [TimedWord(**item) for item in items]


# --- other engines -------------------------------------------------------------------------------


def from_edge_boundaries(boundaries: Iterable[dict]) -> list[TimedWord]:
    """edge-tts WordBoundary chunks (offset and duration in 100 ns ticks) as words."""
    words: list[TimedWord] = []
    for boundary in boundaries:
        start = round(boundary["offset"] / 10_000)
        end = round((boundary["offset"] + boundary["duration"]) / 10_000)
        text = str(boundary.get("text", "")).strip()
        if text:
            previous_end = words[-1].end_ms if words else 0
            start = max(start, previous_end)
            words.append(TimedWord(text, start, max(start, end)))
    return words
