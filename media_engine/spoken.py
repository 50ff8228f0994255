"""Spoken form: what the voice reads for a written clause, per language, and which written words
each spoken word came from.

Subtitles keep the written text ("$3.42", "5.25%", "https://www.bls.gov/cpi/"); the voice reads
"three dollars and forty-two cents", "five point two five percent", "bls dot gov". `spoken_form`
rewrites the pieces a voice would misread (numbers, decimals, currency, percentages, fractions,
ordinals, dates and times, abbreviations and titles, units, URLs and e-mail addresses) and
remembers where each came from, so `written_words` can give karaoke the written words' times:
"$3.42" lights up while its four spoken words are said.

Numbers are spelled by num2words (English, Spanish) and cn2an (Chinese), both offline and rule-based.
Other languages are read as written.

One module, past 500 lines: the spoken-form rules of each language and the map back to the
written words share one piece list.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import cn2an
from num2words import num2words

from .sentences import TimedWord, is_cjk


@dataclass(frozen=True)
class Spoken:
    written: str
    text: str  # what the voice reads
    # (written start, written end, spoken start, spoken end) of each rewritten piece, in order.
    pieces: tuple[tuple[int, int, int, int], ...] = ()


def language_of(code: str) -> str:
    """The primary subtag of a BCP-47 code: "en-US" -> "en", "zh-CN" -> "zh", "es-419" -> "es"."""
    return code.strip().lower().replace("_", "-").split("-")[0]


def spoken_form(text: str, language: str) -> Spoken:
    rules = _RULES.get(language_of(language))
    if rules is None:
        return Spoken(written=text, text=text)
    pattern, handlers = rules
    parts: list[str] = []
    pieces: list[tuple[int, int, int, int]] = []
    position = spoken_length = 0
    for match in pattern.finditer(text):
        kind = match.lastgroup
        said = handlers[kind](match, text) if kind else None
        if said is None or said == match.group():
            continue
        parts.append(text[position : match.start()])
        spoken_length += match.start() - position
        # Spoken words of a piece stand apart from the written words around it.
        before = " " if match.start() and _latin_pair(text[match.start() - 1], said[0]) else ""
        after = " " if match.end() < len(text) and _latin_pair(said[-1], text[match.end()]) else ""
        said = f"{before}{said}{after}"
        pieces.append((match.start(), match.end(), spoken_length, spoken_length + len(said)))
        parts.append(said)
        spoken_length += len(said)
        position = match.end()
    parts.append(text[position:])
    return Spoken(written=text, text="".join(parts), pieces=tuple(pieces))


def _latin_pair(left: str, right: str) -> bool:
    """Two letters or digits that would run into one word, in a script written with spaces."""
    return left.isalnum() and right.isalnum() and not (is_cjk(left) or is_cjk(right))


def written_words(words: Sequence[TimedWord], spoken: Spoken) -> list[TimedWord]:
    """The spoken words' times given to the written words they read: the words of one rewritten
    piece become that piece, from the first one's start to the last one's end. A word that is not
    found in the spoken text (an engine that reports its own spelling) keeps its text."""
    result: list[TimedWord] = []
    merged_piece: int | None = None
    cursor = 0
    for word in words:
        found = spoken.text.find(word.text, cursor) if word.text else -1
        if found < 0:
            result.append(word)
            merged_piece = None
            continue
        cursor = found + len(word.text)
        piece = _piece_at(spoken, found)
        if piece is None:
            start = _written_offset(spoken, found)
            result.append(
                TimedWord(
                    spoken.written[start : start + len(word.text)], word.start_ms, word.end_ms, word.sentence
                )
            )
            merged_piece = None
            continue
        written_start, written_end, _, _ = spoken.pieces[piece]
        if merged_piece == piece and result:
            previous = result[-1]
            result[-1] = TimedWord(
                previous.text, previous.start_ms, max(previous.end_ms, word.end_ms), previous.sentence
            )
        else:
            result.append(
                TimedWord(
                    spoken.written[written_start:written_end].strip(),
                    word.start_ms,
                    word.end_ms,
                    word.sentence,
                )
            )
        merged_piece = piece
    return result


def _piece_at(spoken: Spoken, offset: int) -> int | None:
    for index, (_, _, start, end) in enumerate(spoken.pieces):
        if start <= offset < end:
            return index
    return None


def _written_offset(spoken: Spoken, offset: int) -> int:
    """Where spoken offset `offset` (outside every piece) lies in the written text."""
    shift = 0
    for _written_start, written_end, _start, end in spoken.pieces:
        if end > offset:
            break
        shift = end - written_end
    return offset - shift


# --- numbers ---------------------------------------------------------------------------------


def _number(digits: str, *, group: str, point: str) -> Decimal:
    """`digits` as written in a language: `group` separates thousands, `point` starts decimals."""
    return Decimal(digits.replace(group, "").replace(point, "."))


def _decimal_words(value: Decimal, language: str) -> str:
    """A number in words: "five point two five", "dos coma cinco", "三点五"."""
    if language == "zh":
        return cn2an.an2cn(format(value, "f"))
    whole, _, fraction = format(value, "f").partition(".")
    words = num2words(int(whole), lang=language).replace(",", "")
    if not fraction:
        return words
    if language == "es":
        # Spanish reads a short fraction as a number ("dos coma cincuenta"), a long one by digits.
        tail = (
            num2words(int(fraction), lang="es")
            if len(fraction) <= 2 and not fraction.startswith("0")
            else " ".join(num2words(int(digit), lang="es") for digit in fraction)
        )
        return f"{words} coma {tail}"
    return f"{words} point " + " ".join(num2words(int(digit), lang=language) for digit in fraction)


def _before_noun(words: str, language: str) -> str:
    """Spanish "uno" drops its vowel before a masculine noun: "veintiún dólares", "un euro"."""
    if language == "es":
        words = re.sub(r"veintiuno$", "veintiún", words)
        words = re.sub(r"\buno$", "un", words)
    return words


def _plural(value: Decimal, one: str, many: str) -> str:
    return one if value == 1 else many


# --- the rules per language ---------------------------------------------------------------------

_MONTHS_EN = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_MONTH_ABBREVIATIONS_EN = {
    "Jan": 0,
    "Feb": 1,
    "Mar": 2,
    "Apr": 3,
    "Jun": 5,
    "Jul": 6,
    "Aug": 7,
    "Sep": 8,
    "Sept": 8,
    "Oct": 9,
    "Nov": 10,
    "Dec": 11,
}
# Written abbreviations and the words a voice says for them. "St." and "Dr." before a name are
# a saint and a doctor, after one a street and a drive (see _abbreviation).
_ABBREVIATIONS = {
    "en": {
        "Mr.": "Mister",
        "Mrs.": "Missus",
        "Ms.": "Miz",
        "Dr.": "Doctor",
        "St.": "Saint",
        "Prof.": "Professor",
        "Jr.": "Junior",
        "Sr.": "Senior",
        "Gen.": "General",
        "Sen.": "Senator",
        "Rep.": "Representative",
        "Gov.": "Governor",
        "Lt.": "Lieutenant",
        "Col.": "Colonel",
        "Capt.": "Captain",
        "Mt.": "Mount",
        "Ave.": "Avenue",
        "Blvd.": "Boulevard",
        "Rd.": "Road",
        "No.": "number",
        "vs.": "versus",
        "etc.": "et cetera",
        "e.g.": "for example",
        "i.e.": "that is",
        "approx.": "approximately",
        "Mon.": "Monday",
        "Tue.": "Tuesday",
        "Tues.": "Tuesday",
        "Wed.": "Wednesday",
        "Thu.": "Thursday",
        "Thurs.": "Thursday",
        "Fri.": "Friday",
        "Sat.": "Saturday",
        "Sun.": "Sunday",
        "a.m.": "A M",
        "p.m.": "P M",
        "&": "and",
        **{f"{short}.": _MONTHS_EN[index] for short, index in _MONTH_ABBREVIATIONS_EN.items()},
    },
    "es": {
        "Sr.": "señor",
        "Sra.": "señora",
        "Srta.": "señorita",
        "Dr.": "doctor",
        "Dra.": "doctora",
        "Av.": "avenida",
        "Avda.": "avenida",
        "aprox.": "aproximadamente",
        "p. ej.": "por ejemplo",
        "etc.": "etcétera",
        "EE. UU.": "Estados Unidos",
        "EE.UU.": "Estados Unidos",
        "n.º": "número",
        "núm.": "número",
        "Ud.": "usted",
        "Uds.": "ustedes",
        "lun.": "lunes",
        "miér.": "miércoles",
        "jue.": "jueves",
        "juev.": "jueves",
        "vier.": "viernes",
        "sáb.": "sábado",
        "dom.": "domingo",
        "ene.": "enero",
        "feb.": "febrero",
        "abr.": "abril",
        "ago.": "agosto",
        "sept.": "septiembre",
        "oct.": "octubre",
        "nov.": "noviembre",
        "dic.": "diciembre",
        "&": "y",
    },
}
_STREET_AFTER_NAME = {"St.": "Street", "Dr.": "Drive"}
# Units after a number: (singular, plural) per language.
_UNITS = {
    "en": {
        "km": ("kilometer", "kilometers"),
        "kg": ("kilogram", "kilograms"),
        "g": ("gram", "grams"),
        "mg": ("milligram", "milligrams"),
        "ml": ("milliliter", "milliliters"),
        "l": ("liter", "liters"),
        "m": ("meter", "meters"),
        "cm": ("centimeter", "centimeters"),
        "mm": ("millimeter", "millimeters"),
        "mi": ("mile", "miles"),
        "mph": ("mile per hour", "miles per hour"),
        "km/h": ("kilometer per hour", "kilometers per hour"),
        "lb": ("pound", "pounds"),
        "lbs": ("pound", "pounds"),
        "oz": ("ounce", "ounces"),
        "ft": ("foot", "feet"),
        "°C": ("degree Celsius", "degrees Celsius"),
        "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
        "°": ("degree", "degrees"),
        "m²": ("square meter", "square meters"),
    },
    "es": {
        "km": ("kilómetro", "kilómetros"),
        "kg": ("kilo", "kilos"),
        "g": ("gramo", "gramos"),
        "mg": ("miligramo", "miligramos"),
        "ml": ("mililitro", "mililitros"),
        "l": ("litro", "litros"),
        "m": ("metro", "metros"),
        "cm": ("centímetro", "centímetros"),
        "mm": ("milímetro", "milímetros"),
        "km/h": ("kilómetro por hora", "kilómetros por hora"),
        "°C": ("grado", "grados"),
        "°": ("grado", "grados"),
        "m²": ("metro cuadrado", "metros cuadrados"),
    },
    "zh": {
        "km": "公里",
        "kg": "公斤",
        "g": "克",
        "ml": "毫升",
        "m": "米",
        "cm": "厘米",
        "°C": "摄氏度",
        "m²": "平方米",
    },
}
# Currencies: (symbol or word, (unit, units, cent, cents)).
_CURRENCIES = {
    "en": {
        "$": ("dollar", "dollars", "cent", "cents"),
        "€": ("euro", "euros", "cent", "cents"),
        "£": ("pound", "pounds", "penny", "pence"),
        "¥": ("yen", "yen", "", ""),
    },
    "es": {
        "$": ("dólar", "dólares", "centavo", "centavos"),
        "€": ("euro", "euros", "céntimo", "céntimos"),
        "£": ("libra", "libras", "penique", "peniques"),
        "¥": ("yen", "yenes", "", ""),
    },
    "zh": {"$": "美元", "€": "欧元", "£": "英镑", "¥": "元", "￥": "元"},
}
_SCALES = {"en": "million|billion|trillion|thousand", "es": "millones|millón|mil millones|mil"}
_YEAR_AFTER = {
    "in",
    "since",
    "of",
    "by",
    "from",
    "until",
    "to",
    "year",
    "before",
    "after",
    "early",
    "late",
    "mid",
    "spring",
    "summer",
    "fall",
    "autumn",
    "winter",
    "through",
    "between",
    "and",
    *(m for m in _MONTHS_EN),
}
_DENOMINATORS_ES = {
    2: ("medio", "medios"),
    3: ("tercio", "tercios"),
    4: ("cuarto", "cuartos"),
    5: ("quinto", "quintos"),
    6: ("sexto", "sextos"),
    7: ("séptimo", "séptimos"),
    8: ("octavo", "octavos"),
    9: ("noveno", "novenos"),
    10: ("décimo", "décimos"),
}

Handler = Callable[[re.Match, str], str | None]


def _build(language: str) -> tuple[re.Pattern[str], dict[str, Handler]]:
    group, point = {"en": (",", "."), "es": (".", ","), "zh": (",", ".")}[language]
    if language == "es":
        number = r"\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+,\d+|\d+"
    else:
        number = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+|\d+"
    currencies = _CURRENCIES[language]
    symbols = "".join(re.escape(symbol) for symbol in currencies)
    units = sorted(_UNITS.get(language, {}), key=len, reverse=True)
    unit_pattern = "|".join(re.escape(unit) for unit in units)
    abbreviations = sorted(_ABBREVIATIONS.get(language, {}), key=len, reverse=True)
    scales = _SCALES.get(language)

    def value(digits: str) -> Decimal:
        return _number(digits, group=group, point=point)

    def said_number(digits: str) -> str:
        return _decimal_words(value(digits), language)

    def url(match: re.Match, text: str) -> str:
        host = re.sub(r"^(?:https?://)?(?:www\.)?", "", match.group()).split("/")[0]
        return _site(host, language)

    def email(match: re.Match, text: str) -> str:
        user, _, host = match.group().partition("@")
        at = {"en": "at", "es": "arroba", "zh": "艾特"}[language]
        return f"{_site(user, language)} {at} {_site(host, language)}"

    def money(match: re.Match, text: str) -> str:
        symbol = match.group("symbol") or match.group("symbol_after")
        amount = value(match.group("amount") or match.group("amount_after"))
        scale = match.group("scale")
        if language == "zh":
            return _decimal_words(amount, "zh") + currencies[symbol]
        one, many, cent, cents = currencies[symbol]
        if scale:
            of = " de" if language == "es" else ""
            return f"{_decimal_words(amount, language)} {scale}{of} {many}"
        whole = int(amount)
        hundredths = int((amount - whole) * 100)
        said = f"{_before_noun(num2words(whole, lang=language).replace(',', ''), language)} {_plural(whole, one, many)}"
        if hundredths and cent:
            joiner = "con" if language == "es" else "and"
            said_cents = _before_noun(num2words(hundredths, lang=language), language)
            said = f"{said} {joiner} {said_cents} {_plural(hundredths, cent, cents)}"
        return said

    def percent(match: re.Match, text: str) -> str:
        said = said_number(match.group("percent_amount"))
        return {"en": f"{said} percent", "es": f"{said} por ciento", "zh": f"百分之{said}"}[language]

    def measure(match: re.Match, text: str) -> str:
        amount = value(match.group("measure_amount"))
        unit = _UNITS[language][match.group("unit")]
        if language == "zh":
            return _decimal_words(amount, "zh") + unit
        return f"{_before_noun(_decimal_words(amount, language), language)} {_plural(amount, *unit)}"

    def clock(match: re.Match, text: str) -> str:
        hours, minutes = int(match.group("hours")), int(match.group("minutes"))
        if language == "zh":
            return f"{cn2an.an2cn(str(hours))}点" + (
                f"{cn2an.an2cn(match.group('minutes'))}分" if minutes else ""
            )
        said_hours = num2words(hours, lang=language)
        if language == "es":
            return said_hours + (f" y {num2words(minutes, lang='es')}" if minutes else " en punto")
        if not minutes:
            said = f"{said_hours} o'clock"
        elif minutes < 10:
            said = f"{said_hours} oh {num2words(minutes, lang='en')}"
        else:
            said = f"{said_hours} {num2words(minutes, lang='en')}"
        meridiem = match.group("meridiem")
        if not meridiem:
            return said
        # "p.m." at the end of a sentence is also its full stop.
        full_stop = "." if meridiem.endswith(".") and not text[match.end() :].strip() else ""
        return f"{said} {meridiem.upper()[0]} M{full_stop}"

    def fraction(match: re.Match, text: str) -> str:
        numerator, denominator = int(match.group("numerator")), int(match.group("denominator"))
        if language == "zh":
            return f"{cn2an.an2cn(str(denominator))}分之{cn2an.an2cn(str(numerator))}"
        if language == "es":
            if denominator in _DENOMINATORS_ES:
                said = _before_noun(num2words(numerator, lang="es"), "es")
                return f"{said} {_plural(Decimal(numerator), *_DENOMINATORS_ES[denominator])}"
            return f"{num2words(numerator, lang='es')} entre {num2words(denominator, lang='es')}"
        if denominator == 2:
            part = "half" if numerator == 1 else "halves"
        elif denominator == 4:
            part = "quarter" if numerator == 1 else "quarters"
        else:
            part = num2words(denominator, lang="en", to="ordinal") + ("" if numerator == 1 else "s")
        return f"{num2words(numerator, lang='en')} {part}"

    def ordinal(match: re.Match, text: str) -> str:
        return num2words(int(match.group("ordinal_amount")), lang=language, to="ordinal")

    def month_day(match: re.Match, text: str) -> str:
        month = match.group("month").rstrip(".")
        name = _MONTHS_EN[_MONTH_ABBREVIATIONS_EN[month]] if month in _MONTH_ABBREVIATIONS_EN else month
        said = f"{name} {num2words(int(match.group('day')), lang='en', to='ordinal')}"
        if match.group("day_year"):
            said += f", {num2words(int(match.group('day_year')), lang='en', to='year')}"
        return said

    def plain_number(match: re.Match, text: str) -> str:
        digits = match.group()
        if language == "zh":
            if text.startswith("年", match.end()) and len(digits) == 4:
                return cn2an.an2cn(digits, "direct")  # 2023年: 二零二三年
            return cn2an.an2cn(str(value(digits)).replace(",", ""))
        if language == "en" and re.fullmatch(r"1[1-9]\d\d|20\d\d", digits):
            previous = text[: match.start()].split()
            if previous and previous[-1].strip(",").capitalize() in {w.capitalize() for w in _YEAR_AFTER}:
                return num2words(int(digits), lang="en", to="year")
        return said_number(digits)

    def abbreviation(match: re.Match, text: str) -> str | None:
        written = match.group()
        if language == "en" and written in _STREET_AFTER_NAME:
            following = text[match.end() :].lstrip()
            if not following[:1].isupper():
                return _STREET_AFTER_NAME[written]
        return _ABBREVIATIONS[language][written]

    def initialism(match: re.Match, text: str) -> str:
        return " ".join(match.group().replace(".", ""))

    alternatives = [
        ("url", r"(?:https?://|www\.)[^\s<>\"“”()（）]*[^\s<>\"“”()（）.,;:!?'’，。；：！？]"),
        ("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"),
        (
            "money",
            rf"(?:(?P<symbol>[{symbols}])\s?(?P<amount>{number})|(?P<amount_after>{number})\s?"
            rf"(?P<symbol_after>[{symbols}]))"
            + (rf"(?:\s(?P<scale>{scales})\b)?" if scales else "(?P<scale>(?!))?"),
        ),
        ("percent", rf"(?P<percent_amount>{number})\s?%"),
        (
            "clock",
            r"(?<![\d:])(?P<hours>[01]?\d|2[0-3]):(?P<minutes>[0-5]\d)(?![\d:])"
            + (
                r"(?:\s?(?P<meridiem>a\.m\.|p\.m\.|am|pm|AM|PM)(?!\w))?"
                if language == "en"
                else "(?P<meridiem>(?!))?"
            ),
        ),
        ("fraction", r"(?<![\d/])(?P<numerator>\d{1,3})/(?P<denominator>\d{1,3})(?![\d/])"),
    ]
    if unit_pattern:
        alternatives.append(
            ("measure", rf"(?P<measure_amount>{number})\s?(?P<unit>{unit_pattern})(?![A-Za-z])")
        )
    if language == "en":
        months = "|".join(_MONTHS_EN + [rf"{short}\." for short in _MONTH_ABBREVIATIONS_EN])
        alternatives += [
            (
                "month_day",
                (
                    rf"\b(?P<month>{months})\s(?P<day>[0-3]?\d)(?:st|nd|rd|th)?\b(?!\.\d)"
                    r"(?:,\s(?P<day_year>1\d{3}|20\d\d)\b)?"
                ),
            ),
            ("ordinal", r"\b(?P<ordinal_amount>\d+)(?:st|nd|rd|th)\b"),
        ]
    if language == "es":
        alternatives.append(("ordinal", r"\b(?P<ordinal_amount>\d+)\.?[ºª°]"))
    alternatives.append(("plain_number", number))
    if abbreviations:
        escaped = "|".join(re.escape(item) for item in abbreviations)
        alternatives.append(("abbreviation", rf"(?<![\w.])(?:{escaped})(?![\w])"))
    if language in ("en", "es"):
        alternatives.append(("initialism", r"(?<![\w.])(?:[A-Z]\.){2,}"))
    handlers = {
        "url": url,
        "email": email,
        "money": money,
        "percent": percent,
        "clock": clock,
        "fraction": fraction,
        "measure": measure,
        "month_day": month_day,
        "ordinal": ordinal,
        "plain_number": plain_number,
        "abbreviation": abbreviation,
        "initialism": initialism,
    }
    pattern = re.compile("|".join(f"(?P<{name}>{regex})" for name, regex in alternatives))
    return pattern, handlers


def _site(host: str, language: str) -> str:
    """A host or mailbox read as a name: "bls.gov" -> "bls dot gov"."""
    dot = {"en": " dot ", "es": " punto ", "zh": "点"}[language]
    return dot.join(part for part in re.split(r"[.]", host) if part).replace("-", " ").replace("_", " ")


_RULES = {language: _build(language) for language in ("en", "es", "zh")}
