"""Sentence times for an uploaded narration: FunASR recognises it, then the script's own
sentences are aligned onto the recognised characters.

The script, not the recognition, is what the subtitles show: recognition errors, other
punctuation and other sentence boundaries only blur the times a little instead of
changing the text. torch and funasr are imported inside functions, as in images.py,
because workers fork after import.
"""

from __future__ import annotations

import logging
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import ffmpeg
from .errors import MediaError
from .sentences import TimedSentence, TimedWord

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what every FunASR speech model was trained on
# Without sentence_info, recognised tokens are grouped into a new sentence after a pause this long.
PAUSE_SPLIT_MS = 500
SENTENCE_END = set("。！？!?；;.…")
RICH_TAG = re.compile(r"<\|[^|]*\|>|<unk>")
# What FunASR gives one timestamp to: a CJK character, or a word of other scripts.
CJK = "\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af"  # kana, CJK ideographs, hangul
TOKEN = re.compile(f"[{CJK}]|[^\\W_{CJK}]+(?:'[^\\W_]+)?")

_MODELS: dict[tuple[str, str, str, str], Any] = {}


def transcribe(
    audio_path: Path,
    *,
    model_dir: Path,
    vad_dir: Path | None = None,
    punc_dir: Path | None = None,
    device: str = "cpu",
    words: bool = False,
    scratch_dir: Path | None = None,
) -> list[TimedSentence]:
    """Recognised sentences with their times in ms.

    With a VAD and a punctuation model FunASR returns `sentence_info` (one entry per
    punctuated sentence); without them the per-token `timestamp` list is grouped into
    sentences at punctuation and pauses. Silence gives an empty list.
    `words=True` returns one entry per recognised token (a CJK character or a word) where
    the model gives token times: the best input for `align`, whose times are otherwise
    interpolated inside each recognised sentence. Temp files go in `scratch_dir` (the system's
    temp folder by default).
    """
    model = load_model(model_dir, vad_dir=vad_dir, punc_dir=punc_dir, device=device)
    with tempfile.TemporaryDirectory(prefix="asr-", dir=scratch_dir) as scratch:
        # FunASR's own loader needs torchaudio or libsndfile support for the upload's
        # container; one ffmpeg conversion to 16 kHz mono WAV accepts anything ffmpeg reads.
        wav_path = Path(scratch) / "narration.wav"
        ffmpeg.run(
            [
                "-i",
                str(audio_path),
                "-vn",
                "-ac",
                "1",
                "-ar",
                str(SAMPLE_RATE),
                "-c:a",
                "pcm_s16le",
                str(wav_path),
            ],
            timeout=600,
        )
        try:
            results = model.generate(input=str(wav_path), sentence_timestamp=True, batch_size_s=300)
        except RuntimeError as error:
            transient = "out of memory" in str(error).lower()
            raise MediaError(
                f"speech recognition failed on {Path(audio_path).name}: {error}", permanent=not transient
            ) from error
    sentences: list[TimedSentence] = []
    for result in results or []:
        sentences.extend(sentences_from_result(result, words=words))
    return sentences


def load_model(
    model_dir: Path,
    *,
    vad_dir: Path | None = None,
    punc_dir: Path | None = None,
    device: str = "cpu",
) -> Any:
    """funasr.AutoModel over local folders only, built once per process."""
    key = (str(model_dir), str(vad_dir or ""), str(punc_dir or ""), device)
    if key in _MODELS:
        return _MODELS[key]
    for folder in (model_dir, vad_dir, punc_dir):
        if folder is not None:
            _check_model_dir(Path(folder))
    import torch
    from funasr import AutoModel

    options: dict[str, Any] = {
        "model": str(model_dir),
        "device": device,
        "disable_update": True,  # no version check over the network
        "disable_pbar": True,
        "log_level": "WARNING",
        # funasr calls torch.set_num_threads(ncpu) (default 4): keep the process's setting.
        "ncpu": torch.get_num_threads(),
    }
    if vad_dir is not None:
        options["vad_model"] = str(vad_dir)
    if punc_dir is not None:
        options["punc_model"] = str(punc_dir)
    try:
        model = AutoModel(**options)
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, AssertionError, ImportError) as error:
        raise MediaError(f"cannot load the FunASR model in {model_dir}: {error}") from error
    _MODELS[key] = model
    return model


def sentences_from_result(result: dict, *, words: bool = False) -> list[TimedSentence]:
    """TimedSentences (or tokens, with `words`) from one FunASR result dict (see `transcribe`)."""
    info = result.get("sentence_info")
    if info:
        pieces: list[TimedSentence] = []
        for item in info:
            text = _clean(str(item.get("text", "")))
            if not text:
                continue
            tokens = _tokens(text)
            stamps = item.get("timestamp") or []
            if words and stamps and len(tokens) == len(stamps):
                pieces.extend(
                    TimedSentence(token, int(start), int(end))
                    for token, (start, end) in zip(tokens, stamps, strict=True)
                )
            else:
                pieces.append(TimedSentence(text, int(item["start"]), int(item["end"])))
        return pieces
    text = _clean(str(result.get("text", "")))
    stamps = result.get("timestamp") or []
    if not text or not stamps:
        return []
    tokens = text.split()
    if len(tokens) != len(stamps):
        tokens = _tokens(text)  # e.g. unspaced CJK text: one timestamp per character
    if len(tokens) != len(stamps):
        # Punctuated or re-joined text no longer matches token by token: one sentence.
        return [TimedSentence(text, int(stamps[0][0]), int(stamps[-1][1]))]
    token_times = [(int(start), int(end)) for start, end in stamps]
    if words:
        return [
            TimedSentence(token, start, end) for token, (start, end) in zip(tokens, token_times, strict=True)
        ]
    return _group_tokens(tokens, token_times)


def align(
    script_sentences: Sequence[str],
    recognised: Sequence[TimedSentence],
    *,
    duration_ms: int,
) -> list[TimedSentence]:
    """The script's sentences with times taken from the recognised speech.

    Both texts are reduced to letters and digits and aligned character by character
    (Levenshtein edit operations, so a misheard character still carries its time). Each
    recognised character gets a time by interpolation inside its recognised sentence; a
    script sentence spans its first to its last aligned character. Sentences with nothing
    aligned share the time between their neighbours by length. The result is ordered,
    non-overlapping, inside [0, duration_ms], and every sentence lasts at least 1 ms.
    """
    from rapidfuzz.distance import Levenshtein

    script_chars: list[str] = []
    owner: list[int] = []  # script sentence of each script character
    for index, sentence in enumerate(script_sentences):
        chars = _normalise(sentence)
        script_chars.extend(chars)
        owner.extend([index] * len(chars))
    heard_chars, heard_times = _timed_characters(recognised)

    spans: list[tuple[int, int] | None] = [None] * len(script_sentences)
    if script_chars and heard_chars:
        opcodes = Levenshtein.opcodes(script_chars, heard_chars)
        char_times = _aligned_times(opcodes, len(script_chars), heard_times)
        for char_index, times in enumerate(char_times):
            if times is None:
                continue
            index = owner[char_index]
            current = spans[index]
            if current is not None:
                times = (min(current[0], times[0]), max(current[1], times[1]))
            spans[index] = times
    weights = [max(1, len(_normalise(sentence))) for sentence in script_sentences]
    return [
        TimedSentence(text, start, end)
        for text, (start, end) in zip(script_sentences, _tidy(spans, weights, duration_ms), strict=True)
    ]


def align_words(
    script_sentences: Sequence[str],
    recognised: Sequence[TimedSentence],
    sentences: Sequence[TimedSentence],
) -> list[TimedWord]:
    """The script's words (a CJK character, or a word of other scripts) with the times of the
    recognised tokens they align to, inside `sentences` (what `align` returned for them).

    Only per-token recognition (`transcribe(words=True)` where the model gave token times) holds
    word times; callers check that with `has_token_times`. A word none of whose characters was
    heard gets no time and is left out.
    """
    from rapidfuzz.distance import Levenshtein

    script_chars: list[str] = []
    owner: list[tuple[int, int]] = []  # (sentence, word) of each script character
    sentence_words: list[list[str]] = []
    for index, sentence in enumerate(script_sentences):
        tokens = _tokens(sentence)
        sentence_words.append(tokens)
        for word_index, token in enumerate(tokens):
            chars = _normalise(token)
            script_chars.extend(chars)
            owner.extend([(index, word_index)] * len(chars))
    heard_chars, heard_times = _timed_characters(recognised)
    if not script_chars or not heard_chars:
        return []
    char_times = _aligned_times(
        Levenshtein.opcodes(script_chars, heard_chars), len(script_chars), heard_times
    )
    spans: dict[tuple[int, int], tuple[int, int]] = {}
    for char_index, times in enumerate(char_times):
        if times is not None:
            key = owner[char_index]
            current = spans.get(key)
            spans[key] = times if current is None else (min(current[0], times[0]), max(current[1], times[1]))
    words: list[TimedWord] = []
    for (index, word_index), (start, end) in sorted(spans.items()):
        sentence = sentences[index]
        previous_end = words[-1].end_ms if words and words[-1].sentence == index else sentence.start_ms
        start = min(sentence.end_ms, max(start, previous_end))
        end = min(sentence.end_ms, max(end, start))
        words.append(TimedWord(sentence_words[index][word_index], start, end, index))
    return words


def has_token_times(recognised: Sequence[TimedSentence]) -> bool:
    """Whether `transcribe(words=True)` gave one entry per token (else only sentence times)."""
    return bool(recognised) and all(len(_tokens(item.text)) == 1 for item in recognised)


def _check_model_dir(folder: Path) -> None:
    # funasr treats a missing path as a hub name and tries to download it, and it runs a
    # model with random weights when model.pt is missing: both must fail here instead.
    if not folder.is_dir():
        raise MediaError(f"FunASR model folder not found: {folder}")
    if not (folder / "configuration.json").is_file():
        for required in ("config.yaml", "model.pt"):
            if not (folder / required).is_file():
                raise MediaError(f"FunASR model folder {folder} has no {required}")


def _clean(text: str) -> str:
    return RICH_TAG.sub("", text).strip()


def _tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def _is_cjk(token: str) -> bool:
    return any(
        "\u3040" <= char <= "\u30ff" or "\u3400" <= char <= "\u9fff" or "\uac00" <= char <= "\ud7af"
        for char in token
    )


def _join_tokens(tokens: list[str]) -> str:
    text = ""
    for token in tokens:
        between_cjk = _is_cjk(text[-1:]) and _is_cjk(token[0])
        if text and not between_cjk and token[0] not in SENTENCE_END | set("，,、"):
            text += " "
        text += token
    return text


def _group_tokens(tokens: list[str], stamps: list[tuple[int, int]]) -> list[TimedSentence]:
    sentences: list[TimedSentence] = []
    current: list[int] = []
    for index, token in enumerate(tokens):
        if current and stamps[index][0] - stamps[current[-1]][1] >= PAUSE_SPLIT_MS:
            sentences.append(_sentence_of(tokens, stamps, current))
            current = []
        current.append(index)
        if token[-1] in SENTENCE_END:
            sentences.append(_sentence_of(tokens, stamps, current))
            current = []
    if current:
        sentences.append(_sentence_of(tokens, stamps, current))
    return sentences


def _sentence_of(tokens: list[str], stamps: list[tuple[int, int]], indexes: list[int]) -> TimedSentence:
    text = _join_tokens([tokens[i] for i in indexes])
    return TimedSentence(text, stamps[indexes[0]][0], stamps[indexes[-1]][1])


def _normalise(text: str) -> list[str]:
    """Letters and digits only, case-folded: punctuation and spacing differ between script and ASR."""
    return [
        char
        for char in unicodedata.normalize("NFKC", text).casefold()
        if unicodedata.category(char)[0] in "LN"
    ]


def _timed_characters(recognised: Sequence[TimedSentence]) -> tuple[list[str], list[tuple[float, float]]]:
    chars: list[str] = []
    times: list[tuple[float, float]] = []
    for sentence in recognised:
        sentence_chars = _normalise(sentence.text)
        step = (sentence.end_ms - sentence.start_ms) / max(1, len(sentence_chars))
        for position, char in enumerate(sentence_chars):
            chars.append(char)
            times.append((sentence.start_ms + position * step, sentence.start_ms + (position + 1) * step))
    return chars, times


def _aligned_times(
    opcodes: Any,
    script_length: int,
    heard_times: list[tuple[float, float]],
) -> list[tuple[int, int] | None]:
    """The time of each script character, or None where the recognition has nothing for it."""
    times: list[tuple[int, int] | None] = [None] * script_length
    for op in opcodes:
        same_length = op.src_end - op.src_start == op.dest_end - op.dest_start
        if op.tag == "equal" or (op.tag == "replace" and same_length):
            for offset in range(op.src_end - op.src_start):
                start, end = heard_times[op.dest_start + offset]
                times[op.src_start + offset] = (round(start), round(end))
        elif op.tag == "replace":
            # A differently long rewording of the same stretch of audio ("2024" heard as
            # "二零二四"): spread the script's characters evenly over it.
            begin, finish = heard_times[op.dest_start][0], heard_times[op.dest_end - 1][1]
            count = op.src_end - op.src_start
            for offset in range(count):
                times[op.src_start + offset] = (
                    round(begin + (finish - begin) * offset / count),
                    round(begin + (finish - begin) * (offset + 1) / count),
                )
        # "delete": script text that was not heard gets no time; "insert": heard noise is ignored.
    return times


def _tidy(spans: list[tuple[int, int] | None], weights: list[int], duration_ms: int) -> list[tuple[int, int]]:
    """Fill the gaps of unaligned sentences, then make the spans ordered and non-overlapping."""
    duration_ms = max(duration_ms, len(spans))
    filled: list[tuple[int, int] | None] = list(spans)
    index = 0
    while index < len(filled):
        if filled[index] is not None:
            index += 1
            continue
        run_end = index
        while run_end < len(filled) and filled[run_end] is None:
            run_end += 1
        left = filled[index - 1][1] if index > 0 else 0
        right = filled[run_end][0] if run_end < len(filled) else duration_ms
        right = max(left, right)
        total = sum(weights[index:run_end])
        position = float(left)
        for gap_index in range(index, run_end):
            length = (right - left) * weights[gap_index] / total
            filled[gap_index] = (round(position), round(position + length))
            position += length
        index = run_end
    result: list[tuple[int, int]] = []
    for start, end in filled:  # type: ignore[misc]
        start, end = max(0, min(start, duration_ms)), max(0, min(end, duration_ms))
        if result and start < result[-1][1]:
            # Overlap from a boundary character aligned to the wrong side: meet in the middle.
            previous_start, previous_end = result[-1]
            middle = max(previous_start + 1, (start + previous_end) // 2)
            result[-1] = (previous_start, middle)
            start = middle
        result.append((start, max(end, start + 1)))
    # The 1 ms minimum may push past the end on a pathological input: pull back from the end.
    for position in range(len(result) - 1, -1, -1):
        limit = duration_ms if position == len(result) - 1 else result[position + 1][0]
        start, end = result[position]
        if end > limit:
            result[position] = (min(start, limit - 1), limit)
    return result
