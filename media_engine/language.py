"""Which language a text is in, among the languages the project narrates.

lingua-language-detector (offline: its n-gram models ship inside the wheel and load from memory),
restricted to the candidate languages, so a short or mixed text is never taken for a language no
voice speaks.
"""

from collections.abc import Sequence
from functools import cache

from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

from .spoken import language_of

# Text read for detection: an article's opening says which language it is in.
SAMPLE_CHARS = 2000


def detect_language(text: str, codes: Sequence[str]) -> str | None:
    """The code among `codes` (BCP-47, e.g. "en-US") of the language `text` is written in; None when
    no candidate fits (no letters, or no candidate lingua knows)."""
    candidates: dict[Language, str] = {}
    for code in codes:
        language = _lingua_language(language_of(code))
        if language is not None:
            candidates.setdefault(language, code)
    if not candidates:
        return None
    found = _detector(frozenset(candidates)).detect_language_of(text[:SAMPLE_CHARS])
    return candidates.get(found) if found is not None else None


def _lingua_language(primary: str) -> Language | None:
    iso = getattr(IsoCode639_1, primary.upper(), None)
    return Language.from_iso_code_639_1(iso) if iso is not None else None


@cache
def _detector(languages: frozenset[Language]) -> LanguageDetector:
    return LanguageDetectorBuilder.from_languages(*languages).build()
