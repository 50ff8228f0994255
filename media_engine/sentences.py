"""Sentences of a script, the clauses they are narrated (and subtitled) in, and their exact times.

A sentence is the storyboard's unit: segments group whole sentences. A clause is the narration's
and the subtitles' unit: a sentence is cut at clause punctuation into pieces short enough to read
as one cue of at most two lines, and each piece is synthesized on its own, so every cue's start
and end are the exact times of its audio.
"""

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import sentencex

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
    # The same text in clauses (see split_clauses), in order; each sentence spans its clauses.
    clauses: list[TimedSentence] = field(default_factory=list)
    # Word times where the speech engine gives them (media_engine.words); `word_source` names the
    # source, "" where there is none (captions then show whole clauses, no word highlighted).
    words: list[TimedWord] = field(default_factory=list)
    word_source: str = ""


# Sentence ends in CJK text: Chinese/Japanese full stops and marks always end a sentence; a Latin
# "." only when followed by whitespace or the end, so "3.14" and "example.com" stay whole.
# Closing quotes and brackets right after the mark belong to the sentence they close.
_CLOSERS = "”’\"'）)」』】》"
_CJK_SENTENCE_END = re.compile(rf"(?:[。！？!?；;…]+|\.(?=[{_CLOSERS}]*(?:\s|$)))[{_CLOSERS}]*")
# Places to cut an overlong sentence: Chinese commas anywhere, Latin ones only before a
# space so "1,000" and "10:30" are not cut.
_CLAUSE_END = re.compile(r"[，、：]|[,:;](?=\s|$)|\s[–—](?=\s)")
# Where a sentence is cut into clauses: the commas above, semicolons, and dashes.
_CLAUSE_MARK = re.compile(r"[，、：；]+|——|[,:;](?=\s|$)|\s[–—](?=\s)")
# Characters per clause: packed up to `soft`, cut when over `hard`. Two subtitle lines hold
# about 2 x 17 CJK characters or 2 x 42 Latin ones (media_engine.subtitles), and a cue should
# last about 7 s (the narration cuts a longer clause again; see tts.synthesize). A clause under
# `least` characters (under about 0.8 s spoken) joins a neighbour, so no cue flashes by.
CLAUSE_CHARS = {"cjk": (18, 30), "latin": (45, 75)}
CLAUSE_LEAST_CHARS = {"cjk": 5, "latin": 18}
# Characters per sentence (the storyboard's unit) before it is cut at clause boundaries: a
# Latin news sentence of 30 words stays one sentence; clauses keep its cues short.
SENTENCE_CHARS = {"cjk": 60, "latin": 220}
# Words a Latin line is never cut after (the phrase goes on): articles, prepositions,
# conjunctions, titles. Lower case; English and Spanish.
_NO_CUT_AFTER = frozenset(
    {
        "a",
        "an",
        "the",
        "of",
        "at",
        "in",
        "on",
        "to",
        "for",
        "by",
        "with",
        "from",
        "into",
        "about",
        "than",
        "as",
        "and",
        "or",
        "nor",
        "but",
        "since",
        "until",
        "after",
        "before",
        "over",
        "under",
        "per",
        "via",
        "its",
        "their",
        "his",
        "her",
        "our",
        "your",
        "my",
        "this",
        "that",
        "these",
        "those",
        "mr.",
        "mrs.",
        "ms.",
        "dr.",
        "st.",
        "prof.",
        "no.",
        "gen.",
        "sen.",
        "rep.",
        "gov.",
        "jr.",
        "sr.",
        "mt.",
        "vs.",
        "el",
        "la",
        "los",
        "las",
        "lo",
        "un",
        "una",
        "unos",
        "unas",
        "de",
        "del",
        "al",
        "en",
        "con",
        "por",
        "para",
        "sin",
        "sobre",
        "entre",
        "y",
        "e",
        "o",
        "u",
        "ni",
        "que",
        "sra.",
        "srta.",
        "dra.",
        "av.",
        "núm.",
    }
)
# Words a Latin line is best cut before: they open a clause.
_CUT_BEFORE = frozenset(
    {
        "and",
        "but",
        "or",
        "because",
        "while",
        "which",
        "who",
        "whereas",
        "although",
        "though",
        "when",
        "where",
        "after",
        "before",
        "since",
        "until",
        "unless",
        "so",
        "yet",
        "y",
        "pero",
        "o",
        "porque",
        "mientras",
        "aunque",
        "cuando",
        "donde",
        "que",
    }
)


def split_sentences(text: str, *, language: str = "", max_chars: int | None = None) -> list[str]:
    """Sentences to narrate one by one, each at most `max_chars` characters (by default
    SENTENCE_CHARS of its script).

    Latin-script text is segmented by sentencex (Wikimedia's rule-based segmenter, ~250
    languages), which knows each language's abbreviations ("U.S.", "Dr.", "e.g.", "miér."),
    initials, decimals, URLs, e-mail addresses and quotes; measured against pySBD (which
    breaks after "Wed.,", "Sr." and before a closing quote in Chinese) and PyICU (which breaks
    after "Dr." and "Jerome H.", and needs ICU built from source). `language` is the job's
    BCP-47 code; "" guesses English for Latin text. CJK text keeps its own punctuation rules.
    """
    if max_chars is not None and max_chars < 2:
        raise MediaError(f"max_chars must be at least 2, got {max_chars}")
    sentences: list[str] = []
    for line in text.splitlines():
        for sentence in _sentences_of_line(line, language):
            limit = max_chars or SENTENCE_CHARS[_script(sentence)]
            for piece in _fit(sentence, limit):
                if is_speakable(piece):
                    sentences.append(piece)
    if not sentences:
        raise MediaError("content has no speakable text")
    return sentences


def _sentences_of_line(line: str, language: str) -> list[str]:
    if not line.strip():
        return []
    if is_cjk_text(line):
        return _cut_after(_CJK_SENTENCE_END, line)
    code = (language or "en").lower().replace("_", "-").split("-")[0]
    spans: list[tuple[int, int]] = []  # (start, end) in `line`, so a rejoined sentence is as written
    for boundary in sentencex.get_sentence_boundaries(code, line):
        start, end = boundary["start_index"], boundary["end_index"]
        piece = line[start:end].strip()
        if not piece:
            continue
        # An abbreviation the language's list lacks ("miér. 31", "aprox. un", "n.º") is followed by a
        # digit, a lower-case word or a sign, which never opens a sentence: it stays in the sentence.
        previous = line[spans[-1][0] : spans[-1][1]].strip() if spans else ""
        if spans and (
            not piece[0].isalnum()
            and piece[0] not in "\"'“‘¿¡(["
            or not is_speakable(piece)
            or (previous.endswith(".") and _opens_lower(piece))
        ):
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return [line[start:end].strip() for start, end in spans]


def _opens_lower(text: str) -> bool:
    first = next((char for char in text if char.isalnum()), "")
    return first.isdigit() or first.islower()


def _script(text: str) -> str:
    return "cjk" if is_cjk_text(text) else "latin"


def split_clauses(sentence: str) -> list[str]:
    """The sentence in clauses: cut at clause punctuation, short neighbours packed together up to
    the soft length of the sentence's script (and one under its least length always joined to a
    neighbour), longer ones halved until within the hard length."""
    script = _script(sentence)
    soft, hard = CLAUSE_CHARS[script]
    least = CLAUSE_LEAST_CHARS[script]
    packed: list[str] = []
    for clause in split_clause_marks(sentence):
        if packed and (
            not is_speakable(clause) or len(_join(packed[-1], clause)) <= soft or len(packed[-1]) < least
        ):
            packed[-1] = _join(packed[-1], clause)
        else:
            packed.append(clause)
    if len(packed) > 1 and len(packed[-1]) < least:
        last = packed.pop()
        packed[-1] = _join(packed[-1], last)
    clauses: list[str] = []
    for clause in packed:
        clauses.extend(_halve_until(clause, hard))
    return clauses


def split_clause_marks(sentence: str) -> list[str]:
    """The sentence cut after every clause mark (commas, semicolons, colons, dashes), nothing packed."""
    return _cut_after(_CLAUSE_MARK, sentence)


def _halve_until(text: str, max_chars: int) -> list[str]:
    halves = split_in_two(text) if len(text) > max_chars else None
    if halves is None:
        return [text]
    return _halve_until(halves[0], max_chars) + _halve_until(halves[1], max_chars)


def split_in_two(text: str) -> tuple[str, str] | None:
    """Two speakable halves of `text`, cut as near the middle as a good break allows: after
    clause punctuation, else at a space that ends a phrase (`phrase_break_penalty`), else between CJK
    characters; neither half under the script's least clause length where the text allows it.
    None when it cannot be cut."""
    best: tuple[float, int] | None = None
    middle = len(text) / 2
    least = min(CLAUSE_LEAST_CHARS[_script(text)], len(text) // 3)
    for cut in range(1, len(text)):
        before, after = text[cut - 1], text[cut]
        if _CLAUSE_MARK.match(text, cut - 1) and not _CLAUSE_MARK.match(text, cut):
            penalty = 0.0
        elif after == " ":
            penalty = phrase_break_penalty(text, cut)
        elif before != " " and (is_cjk(before) or is_cjk(after)) and _may_break_between(before, after):
            penalty = 0.3
        else:
            continue
        score = abs(cut - middle) / len(text) + penalty
        if best is None or score < best[0]:
            left, right = text[:cut].strip(), text[cut:].strip()
            if is_speakable(left) and is_speakable(right) and min(len(left), len(right)) >= least:
                best = (score, cut)
    if best is None:
        return None
    return text[: best[1]].strip(), text[best[1] :].strip()


def phrase_break_penalty(text: str, cut: int) -> float:
    """How bad a break at the space `text[cut]` is: least before a word that opens a clause
    ("and", "which", "porque"), most inside a phrase: before a number or after one, after an
    article, preposition, title or initial, or inside a name of capitalised words."""
    previous = text[:cut].split()[-1] if text[:cut].split() else ""
    following = text[cut:].split()[0] if text[cut:].split() else ""
    if not previous or not following:
        return 1.0
    if following.lower() in _CUT_BEFORE:
        return 0.05
    inside_phrase = (
        following[0].isdigit()
        or following[0] in "$€£¥#("
        or previous[-1].isdigit()
        or previous.lower() in _NO_CUT_AFTER
        or (previous.endswith(".") and len(previous) <= 4)  # "H.", "Dr.", "Av."
        or (previous[0].isupper() and following[0].isupper())
    )
    return 1.0 if inside_phrase else 0.15


def _may_break_between(before: str, after: str) -> bool:
    """Not before closing punctuation, not after opening punctuation, not inside a Latin word."""
    if unicodedata.category(after) in ("Pe", "Pf", "Po") or unicodedata.category(before) in ("Ps", "Pi"):
        return False
    return not (before.isalnum() and after.isalnum() and not (is_cjk(before) or is_cjk(after)))


def is_cjk_text(text: str) -> bool:
    """Mostly Chinese, Japanese or Korean: a CJK character counts as much as three Latin letters."""
    cjk = sum(1 for char in text if is_cjk(char) and char.isalnum())
    latin = sum(1 for char in text if char.isalnum() and not is_cjk(char))
    return cjk > 0 and cjk * 3 >= latin


def _cut_after(pattern: re.Pattern[str], text: str) -> list[str]:
    """Pieces of `text` cut right after each match, stripped, empty ones dropped."""
    pieces: list[str] = []
    start = 0
    for match in pattern.finditer(text):
        pieces.append(text[start : match.end()])
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
    """Cut at the space that fits and best ends a phrase (Latin text), else at `max_chars`
    characters (CJK). Each cut looks only at its window (the next `max_chars` characters and the word
    that runs past them), so the work grows with the text, not with its square."""
    pieces: list[str] = []
    while len(text) > max_chars:
        window = text[: _WORD_RUN.match(text, max_chars + 1).end()]
        spaces = [cut for cut in range(1, max_chars + 1) if window[cut] == " "]
        if spaces:
            # The best break, the latest of equally good ones, leaving a piece of a third of the limit.
            long_enough = [space for space in spaces if space >= max_chars // 3] or spaces
            cut = min(long_enough, key=lambda space: (phrase_break_penalty(window, space), -space))
        else:
            cut = max_chars
            # Never start a piece with punctuation: it belongs to the character before it (unless the
            # window holds nothing speakable to start one with).
            while cut > 1 and not is_speakable(text[cut]):
                cut -= 1
            if cut == 1 and not is_speakable(text[1]):
                cut = max_chars
        pieces.append(text[:cut].strip())
        text = text[cut:].strip()
    if text:
        pieces.append(text)
    return pieces


_WORD_RUN = re.compile(r"\S*")


def _join(left: str, right: str) -> str:
    """Rejoin two clauses; Latin clauses need the space that the cut removed."""
    if not left:
        return right
    if is_cjk(left[-1]) or is_cjk(right[0]):
        return left + right
    return f"{left} {right}"


def is_speakable(text: str) -> bool:
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
