"""Real-looking articles (wire news and how-to prose in English, Chinese and Spanish): sentences and
clauses never break inside an abbreviation, initial, decimal, number or address, and no cue flashes by."""

import re
from pathlib import Path

import pytest

from media_engine import tts
from media_engine.sentences import split_clauses, split_sentences
from media_engine.tts import VoiceSpec

ARTICLES = Path(__file__).resolve().parents[1] / "data" / "articles"
# Languages of the articles, as a job names them.
LANGUAGES = {"news_en": "en-US", "howto_en": "en-US", "news_zh": "zh-CN", "news_es": "es-ES"}
# What each article must keep inside one sentence (and one clause): the reproduction and more.
WHOLE = {
    "news_en": [
        "U.S. consumer",
        "Wed., Dec. 31.",
        "Dr. Jerome H. Powell",
        "5.25%",
        "e.g. the January",
        "St. James St. in Baltimore",
        "$3.42",
        "July 2023.",
        "1/3",
        "41.2 million",
        "https://www.bls.gov/cpi/",
        "press@bls.gov.",
        "1,250,000",
    ],
    "howto_en": [
        "500 ml",
        "93°C",
        "i.e. a ratio of 1/16",
        "3:30",
        "$49.99",
        "Dr. Lee",
        "(www.sca.coffee)",
        "2nd",
    ],
    "news_zh": ["12月31日", "3.5%", "0.4个百分点", "2023年", "1/3", "5.2%", "126万亿元", "www.stats.gov.cn"],
    "news_es": [
        "Sr. García",
        "3,50 €",
        "Av. de América",
        "Dr. Pérez.",
        "2,5%",
        "miér. 31 de dic. a las 10:30.",
        "1.250.000",
        "aprox. 1/3",
        "https://www.ine.es/prensa/",
        "prensa@ine.es.",
        "n.º 12",
        "p. ej. un 10%",
    ],
}
SENTENCE_COUNTS = {"news_en": 8, "howto_en": 8, "news_zh": 4, "news_es": 8}


def article(name: str) -> str:
    return (ARTICLES / f"{name}.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(WHOLE))
def test_no_sentence_break_inside_an_abbreviation_initial_decimal_or_url(name):
    sentences = split_sentences(article(name), language=LANGUAGES[name])
    assert len(sentences) == SENTENCE_COUNTS[name], sentences
    for phrase in WHOLE[name]:
        assert any(phrase in sentence for sentence in sentences), (phrase, sentences)
    # Every sentence ends where a sentence ends, not after "Dr." or "Dec." with more to come.
    for sentence in sentences:
        assert re.search(r"[.!?。！？\"”]$", sentence), sentence
        assert not re.search(
            r"\b(U\.S|Dr|Mr|St|Wed|Dec|e\.g|i\.e|Sr|Sra|Av|miér|dic|aprox|[A-Z])\.$", sentence
        )


@pytest.mark.parametrize("name", sorted(WHOLE))
def test_clauses_never_cut_inside_a_phrase_or_number(name):
    clauses = [
        clause
        for sentence in split_sentences(article(name), language=LANGUAGES[name])
        for clause in split_clauses(sentence)
    ]
    for phrase in WHOLE[name]:
        if len(phrase) < 20 and "," not in phrase:  # a phrase with a comma may end a clause
            assert any(phrase in clause for clause in clauses), (phrase, clauses)


def test_the_60_character_cap_keeps_numbers_with_their_phrase():
    text = (
        "Federal Reserve Chair Jerome Powell said rates would stay at 5.25% for now "
        "and that inflation has cooled since July 2023."
    )
    pieces = split_sentences(text, language="en", max_chars=60)
    assert all(len(piece) <= 60 for piece in pieces)
    assert " ".join(pieces) == text
    assert any("at 5.25%" in piece for piece in pieces)
    assert any(piece.endswith("since July 2023.") for piece in pieces)


def test_a_latin_sentence_of_thirty_words_stays_one_sentence():
    text = (
        "The company said on Tuesday that it would hire about 1,200 engineers in Ohio next year, "
        "more than it had planned, as demand for its chips keeps growing."
    )
    assert split_sentences(text, language="en") == [text]


@pytest.fixture(scope="module")
def english_news(tmp_path_factory):
    sentences = split_sentences(article("news_en"), language="en-US")
    return tts.synthesize(
        sentences,
        platform="espeak",
        voice=VoiceSpec(name="", language="en-US"),
        speed=1.0,
        out_dir=tmp_path_factory.mktemp("news_en"),
    )


def test_every_cue_lasts_at_least_0_8_s_unless_its_sentence_is_that_short(english_news):
    for sentence in english_news.sentences:
        clauses = [c for c in english_news.clauses if sentence.start_ms <= c.start_ms < sentence.end_ms]
        for clause in clauses:
            shortest = min(800, sentence.end_ms - sentence.start_ms)
            assert clause.end_ms - clause.start_ms >= shortest, (clause, sentence)
