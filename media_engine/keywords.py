"""Search terms for stock footage from a segment's own text, when no chat model writes them.

Latin, Cyrillic and Greek scripts go through YAKE (statistical, with the stop-word lists its wheel
ships; lemmatisation stays off, so neither spaCy nor NLTK data is ever fetched). Chinese goes
through jieba's TF-IDF (its dictionary and IDF table ship in the wheel; the first use writes a
prefix-dictionary cache to the temporary folder, nothing is downloaded). Japanese and Korean have
no maintained offline extractor here: their runs of letters are taken as they are.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

MAX_KEYWORDS = 5
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
# YAKE's own stop-word lists, by its language codes (it falls back to a language-neutral list).
YAKE_LANGUAGES = {
    "en",
    "de",
    "fr",
    "es",
    "it",
    "pt",
    "nl",
    "sv",
    "da",
    "no",
    "fi",
    "pl",
    "cz",
    "ru",
    "uk",
    "tr",
    "ro",
    "hu",
    "el",
    "bg",
    "hr",
    "sk",
    "sl",
    "lt",
    "lv",
    "et",
    "id",
}
# jieba keeps content words by part of speech: nouns, place and organisation names, verbal nouns.
JIEBA_POS = ("n", "ns", "nt", "nz", "vn", "nr", "an")


def extract_keywords(text: str, *, language: str = "", limit: int = MAX_KEYWORDS) -> list[str]:
    """Up to `limit` search terms for `text`, best first, lower-cased, without repeats.

    `language` is a BCP 47 code (`zh-CN`, `en`, `pt-BR`); without one the script decides.
    """
    text = " ".join((text or "").split())
    if not text:
        return []
    base = language.split("-")[0].lower()
    if base == "zh" or (not base and HAN.search(text)):
        terms = _chinese(text, limit)
    elif base in ("ja", "ko"):
        terms = WORD.findall(text)
    else:
        terms = _yake(text, base, limit)
    seen: list[str] = []
    for term in terms:
        term = term.strip().lower()
        if term and term not in seen:
            seen.append(term)
    return seen[:limit]


def _yake(text: str, language: str, limit: int) -> list[str]:
    extractor = _yake_extractor(language if language in YAKE_LANGUAGES else "en", limit)
    # Lower score is better; single words first keeps the searches broad enough to find footage.
    ranked = sorted(extractor.extract_keywords(text), key=lambda pair: pair[1])
    return [term for term, _score in ranked]


@lru_cache(maxsize=32)
def _yake_extractor(language: str, limit: int):
    import yake

    return yake.KeywordExtractor(lan=language, n=2, dedup_lim=0.7, top=limit)


def _chinese(text: str, limit: int) -> list[str]:
    analyse = _jieba_analyse()
    terms = analyse.extract_tags(text, topK=limit, allowPOS=JIEBA_POS)
    # A segment of one short clause may have no noun jieba tags: take its best words of any kind.
    return terms or analyse.extract_tags(text, topK=limit)


@lru_cache(maxsize=1)
def _jieba_analyse():
    import jieba
    import jieba.analyse

    jieba.setLogLevel(logging.WARNING)  # it prints its dictionary loading on every process start
    return jieba.analyse
