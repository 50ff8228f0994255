"""The voice reads numbers, money, dates, abbreviations and addresses as words, per language, while
subtitles keep the written text and karaoke lights up the written word being read."""

import re

import pytest

from media_engine import fonts, subtitles, tts
from media_engine.sentences import TimedWord
from media_engine.spoken import spoken_form, written_words
from media_engine.subtitles import KaraokeStyle

SPOKEN = [
    # English: currency, decimals, percentages, fractions, ordinals, dates, times, titles, units, addresses.
    ("en", "It cost $3.42 today.", "It cost three dollars and forty-two cents today."),
    ("en", "A $15 fee, or $1.2 billion.", "A fifteen dollars fee, or one point two billion dollars."),
    (
        "en",
        "Rates held at 5.25% in July 2023.",
        "Rates held at five point two five percent in July twenty twenty-three.",
    ),
    (
        "en",
        "About 1/3 of them, 3/4 of us and 1/2 of you.",
        "About one third of them, three quarters of us and one half of you.",
    ),
    (
        "en",
        "The 1,250,000 figure rose 0.4 points.",
        "The one million two hundred and fifty thousand figure rose zero point four points.",
    ),
    (
        "en",
        "It happened Wed., Dec. 31, 2024 at 3:30 p.m.",
        "It happened Wednesday, December thirty-first, twenty twenty-four at three thirty P M.",
    ),
    ("en", "The 2nd pour, the 21st time.", "The second pour, the twenty-first time."),
    (
        "en",
        "Dr. Lee met Mr. Smith on St. James St. and the U.S. team, e.g. Jerome H. Powell.",
        "Doctor Lee met Mister Smith on Saint James Street and the U S team, for example Jerome H. Powell.",
    ),
    (
        "en",
        "Heat 500 ml to 93°C, then 30 g.",
        "Heat five hundred milliliters to ninety-three degrees Celsius, then thirty grams.",
    ),
    (
        "en",
        "See https://www.bls.gov/cpi/ or write to press@bls.gov.",
        "See bls dot gov or write to press at bls dot gov.",
    ),
    # Spanish: comma decimals, dot thousands, euros after the number, apocope before a noun.
    ("es", "Pagó 3,50 € y 21 $.", "Pagó tres euros con cincuenta céntimos y veintiún dólares."),
    ("es", "Subió al 2,5% en 2023.", "Subió al dos coma cinco por ciento en dos mil veintitrés."),
    (
        "es",
        "Unos 1.250.000 hogares, aprox. 1/3 del total.",
        "Unos un millón doscientos cincuenta mil hogares, aproximadamente un tercio del total.",
    ),
    (
        "es",
        "El Sr. García y la Dra. Pérez, en la Av. de América n.º 12, el miér. 31 de dic. a las 10:30.",
        "El señor García y la doctora Pérez, en la avenida de América número doce, el miércoles treinta y uno de diciembre a las diez y treinta.",
    ),
    ("es", "Un piso de 60 m², p. ej. el 3.º", "Un piso de sesenta metros cuadrados, por ejemplo el tercero"),
    (
        "es",
        "Más en https://www.ine.es/prensa/ o prensa@ine.es.",
        "Más en ine punto es o prensa arroba ine punto es.",
    ),
    # Chinese: percentages, decimals, years read digit by digit, fractions, money, times, addresses.
    ("zh", "物价上涨3.5%。", "物价上涨百分之三点五。"),
    ("zh", "2023年12月31日", "二零二三年十二月三十一日"),
    ("zh", "下降了1/3左右，扩大0.4个百分点", "下降了三分之一左右，扩大零点四个百分点"),
    ("zh", "花了$3.5和¥120，下午3:30到", "花了三点五美元和一百二十元，下午三点三十分到"),
    ("zh", "访问www.stats.gov.cn查询", "访问stats点gov点cn查询"),
    # A language without rules is read as written.
    ("de", "Es kostet 3,42 €.", "Es kostet 3,42 €."),
]


@pytest.mark.parametrize(("language", "written", "said"), SPOKEN)
def test_spoken_form_per_language(language, written, said):
    assert spoken_form(written, language).text == said


def test_spoken_words_give_their_times_to_the_written_words_they_read():
    form = spoken_form("It cost $3.42 today.", "en-US")
    spoken = [
        TimedWord(word, 100 * index, 100 * index + 90)
        for index, word in enumerate(["It", "cost", "three", "dollars", "and", "forty-two", "cents", "today"])
    ]
    assert written_words(spoken, form) == [
        TimedWord("It", 0, 90),
        TimedWord("cost", 100, 190),
        TimedWord("$3.42", 200, 690),
        TimedWord("today", 700, 790),
    ]


NEWS = [
    "Mr. Smith paid $3.42 for gas, up from $3.10 since July 2023.",
    "About 1/3 of families saw prices rise 5.25% at https://www.bls.gov/cpi/ on Wed., Dec. 31.",
]


def covered(text: str) -> str:
    """The letters, digits and symbols a reader sees, without spaces and punctuation."""
    return re.sub(r"[^\w$%/°€]", "", text)


def test_word_highlights_cover_every_spoken_word_including_numbers_and_symbols(tmp_path):
    narration = tts.synthesize(
        NEWS, platform="espeak", voice=tts.VoiceSpec("", "en-US"), speed=1.0, out_dir=tmp_path
    )
    for index, sentence in enumerate(NEWS):
        highlighted = [word.text for word in narration.words if word.sentence == index]
        # Every written word is highlighted once, in order: "$3.42" whole, the URL whole.
        assert covered("".join(highlighted)) == covered(sentence)
    style = subtitles.subtitle_style(
        width=1280,
        height=720,
        font_size=None,
        font_family=fonts.FAMILY,
        primary_colour="#FFFFFF",
        background_colour="#000000",
        background_opacity=0.6,
    )
    cues = subtitles.make_cues(
        narration.clauses,
        font_path=fonts.default_font_path(),
        font_size=style.font_size,
        max_width_px=subtitles.safe_text_width(1280, style),
    )
    # Subtitles keep the written form.
    assert "$3.42" in " ".join(" ".join(cue.lines) for cue in cues)
    ass_path = tmp_path / "karaoke.ass"
    subtitles.write_ass(
        cues,
        ass_path,
        width=1280,
        height=720,
        style=style,
        karaoke=KaraokeStyle(color="#FFD400"),
        words=narration.words,
    )
    lit = re.findall(r"\\1c&H[0-9A-F]+&}([^{]*)\{\\r}", ass_path.read_text())
    assert lit == [word.text for word in narration.words]
    assert "$3.42" in lit and "5.25%" in lit and "1/3" in lit and "https://www.bls.gov/cpi/" in lit
