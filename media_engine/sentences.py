"""Sentences of a script and their exact times in the narration."""

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .errors import MediaError


@dataclass(frozen=True)
class TimedSentence:
    text: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class TimedWord:
    """A spoken word (in CJK text: a character or a word) of sentence number `sentence` (0-based)."""

    text: str
    start_ms: int
    end_ms: int
    sentence: int = 0


@dataclass(frozen=True)
class Narration:
    path: Path
    duration_ms: int
    sentences: list[TimedSentence] = field(default_factory=list)
    # Word times where the speech engine gives them (media_engine.words); `word_source` names the
    # source, "" where there is none and captions keep sentence timing.
    words: list[TimedWord] = field(default_factory=list)
    word_source: str = ""


# Sentence ends: Chinese/Japanese full stops and marks always end a sentence; a Latin "."
# only when followed by whitespace or the end, so "3.14" and "example.com" stay whole.
# Closing quotes and brackets right after the mark belong to the sentence they close.
_CLOSERS = "”’\"'）)」』】》"
_SENTENCE_END = re.compile(rf"(?:[。！？!?；;…]+|\.(?=[{_CLOSERS}]*(?:\s|$)))[{_CLOSERS}]*")
# Places to cut an overlong sentence: Chinese commas anywhere, Latin ones only before a
# space so "1,000" and "10:30" are not cut.
_CLAUSE_END = re.compile(r"[，、：]|[,:](?=\s|$)")


def split_sentences(text: str, *, max_chars: int = 60) -> list[str]:
    """Sentences to narrate one by one, each at most `max_chars` characters."""
    if max_chars < 2:
        raise MediaError(f"max_chars must be at least 2, got {max_chars}")
    sentences: list[str] = []
    for line in text.splitlines():
        for sentence in _cut_after(_SENTENCE_END, line):
            for piece in _fit(sentence, max_chars):
                if _is_speakable(piece):
                    sentences.append(piece)
    if not sentences:
        raise MediaError("content has no speakable text")
    return sentences


def _cut_after(pattern: re.Pattern[str], text: str) -> list[str]:
    """Pieces of `text` cut right after each match, stripped, empty ones dropped."""
    pieces: list[str] = []
    start = 0
    for match in pattern.finditer(text):
        pieces.append(text[start:match.end()])
        start = match.end()
    pieces.append(text[start:])
    return [piece.strip() for piece in pieces if piece.strip()]


def _fit(sentence: str, max_chars: int) -> list[str]:
    """Cut an overlong sentence at commas, packing clauses greedily; hard-cut what is left."""
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for clause in _cut_after(_CLAUSE_END, sentence):
        joined = _join(current, clause)
        if len(joined) <= max_chars:
            current = joined
            continue
        if current:
            pieces.append(current)
        if len(clause) <= max_chars:
            current = clause
        else:
            *whole, current = _hard_cut(clause, max_chars)
            pieces.extend(whole)
    if current:
        pieces.append(current)
    return pieces


def _hard_cut(text: str, max_chars: int) -> list[str]:
    """Cut at the last space that fits (Latin text), else at `max_chars` characters (CJK)."""
    pieces: list[str] = []
    while len(text) > max_chars:
        cut = text.rfind(" ", 1, max_chars + 1)
        if cut <= 0:
            cut = max_chars
            # Never start a piece with punctuation: it belongs to the character before it.
            while cut > 1 and not _is_speakable(text[cut]):
                cut -= 1
        pieces.append(text[:cut].strip())
        text = text[cut:].strip()
    if text:
        pieces.append(text)
    return pieces


def _join(left: str, right: str) -> str:
    """Rejoin two clauses; Latin clauses need the space that the cut removed."""
    if not left:
        return right
    if is_cjk(left[-1]) or is_cjk(right[0]):
        return left + right
    return f"{left} {right}"


def _is_speakable(text: str) -> bool:
    # A letter or a digit is something a voice can say; punctuation alone is not.
    return any(unicodedata.category(char)[0] in "LN" for char in text)


def is_cjk(char: str) -> bool:
    """Chinese, Japanese or Korean: text that is written, and may break, without spaces."""
    code = ord(char)
    return (
        0x2E80 <= code <= 0x9FFF  # CJK radicals, punctuation, kana, ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul syllables
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0xFF00 <= code <= 0xFFEF  # full-width forms: ，！？（）
        or 0x20000 <= code <= 0x3FFFF  # CJK extension planes
    )
