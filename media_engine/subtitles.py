"""Subtitles from exact clause times: measured, CJK-aware wrapping; SRT, WebVTT and styled ASS.

Lines are wrapped here, by the width Pillow measures with the font libass will draw,
because libass itself only breaks at spaces and so cannot wrap Chinese or Japanese.
The ASS file therefore turns libass's own wrapping off (WrapStyle 2).

Sizes: `SubtitleStyle.font_size` is the em size in pixels, the size Pillow measures
with. libass sizes a font by its line height (ascender + descender, VSFilter's rule),
so the ASS `Fontsize` is the em size times the font's line-height ratio.

One module, past 500 lines: wrapping, the three formats and the karaoke events share one
measurement of each line; splitting them would pass the measurements between modules.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import ImageFont

from . import fonts
from .errors import MediaError
from .sentences import TimedSentence, TimedWord, is_cjk, is_cjk_text

# Safe area: nothing of the subtitle box closer than this share of the frame to an edge.
SAFE_MARGIN = 0.05
# Vertical videos are watched in apps whose channel name, description and buttons cover the
# bottom quarter of the frame (the Shorts safe area, media_engine.layout.SHORTS), so their subtitles sit above it.
PORTRAIT_MARGIN_V = 0.25
FONT_SIZE_SHARE = 0.045  # of the shorter side: 35 px at 1360x768 and 768x1360

# Line lengths that read comfortably: CJK characters, or Latin characters of ordinary text
# (measured with the font on LATIN_SAMPLE), per line; a narrower frame narrows them further.
CJK_LINE_CHARS = 17
LATIN_LINE_CHARS = 42
LATIN_SAMPLE = "Drink a glass of warm water every morning, then walk for ten minutes."

# No line may start with closing punctuation, nor end with opening punctuation (kinsoku).
CLOSING = set("，。！？、；：”’）」』】》〉…‥・ー,.!?;:)]}%'\"")
OPENING = set("“‘（「『【《〈([{")


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    lines: list[str]


@dataclass(frozen=True)
class SubtitleStyle:
    font_size: int  # em size in pixels (what Pillow measures), not the ASS Fontsize
    margin_v: int  # frame bottom edge to the bottom of the subtitle box, pixels
    margin_h: int  # frame side edges to the subtitle box, pixels
    font_family: str = fonts.FAMILY
    primary_colour: str = "#FFFFFF"
    background_colour: str = "#000000"
    background_opacity: float = 0.6  # 0 transparent .. 1 opaque
    outline: int = 8  # padding of the opaque box around the text, pixels
    max_lines: int = 2
    alignment: int = 2  # ASS numpad alignment; only the bottom row (1, 2, 3) is supported


@dataclass(frozen=True)
class KaraokeStyle:
    """The spoken word highlighted: its text colour, optionally larger and on a box of its own."""

    color: str = "#FFD400"
    scale: float = 1.0  # of the font size, for the highlighted word
    box: str | None = None  # colour of the highlighted word's box; None: the line's box


def subtitle_style(
    *,
    width: int,
    height: int,
    font_size: int | None,
    font_family: str,
    primary_colour: str,
    background_colour: str,
    background_opacity: float,
) -> SubtitleStyle:
    """The subtitle style for one frame size; `font_size` None scales the font to the frame.

    The values come from the account's brand (`accounts.brand.Brand`), which knows their defaults.
    """
    font_size = _positive_int(font_size, "subtitle_font_size") or round(min(width, height) * FONT_SIZE_SHARE)
    try:
        opacity = float(background_opacity)
    except (TypeError, ValueError) as error:
        raise MediaError(f"subtitle_background_opacity {background_opacity!r} is not a number") from error
    style = SubtitleStyle(
        font_size=font_size,
        margin_v=round(height * (PORTRAIT_MARGIN_V if height > width else SAFE_MARGIN)),
        margin_h=round(width * SAFE_MARGIN),
        font_family=font_family,
        primary_colour=primary_colour,
        background_colour=background_colour,
        background_opacity=min(1.0, max(0.0, opacity)),
        outline=max(2, round(font_size * 0.25)),
    )
    ass_colour(style.primary_colour)  # reject a bad colour now, not at render time
    ass_colour(style.background_colour)
    return style


def _positive_int(value, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError) as error:
        raise MediaError(f"{name} {value!r} is not a whole number") from error
    if number <= 0:
        raise MediaError(f"{name} must be positive, got {number}")
    return number


# --- wrapping ---------------------------------------------------------------------------


def make_cues(
    clauses: list[TimedSentence], *, font_path: Path, font_size: int, max_width_px: int, max_lines: int = 2
) -> list[Cue]:
    """One cue per clause (the narration's timed unit, see `tts.synthesize`), lines at most
    `line_width_px` wide.

    A clause that still needs more than `max_lines` lines is shown in consecutive cues that share
    its time span in proportion to their characters, so together they cover the clause exactly.
    """
    if max_lines < 1:
        raise MediaError(f"max_lines must be at least 1, got {max_lines}")
    font = _font(Path(font_path), font_size)
    width = line_width_px(" ".join(clause.text for clause in clauses), font=font, max_width_px=max_width_px)
    cues: list[Cue] = []
    for clause in clauses:
        lines = balanced_wrap(clause.text, font=font, max_width_px=width)
        if not lines:
            continue
        groups = [lines[i : i + max_lines] for i in range(0, len(lines), max_lines)]
        weights = [sum(len(line.replace(" ", "")) for line in group) for group in groups]
        span = clause.end_ms - clause.start_ms
        total = sum(weights)
        done = 0
        start_ms = clause.start_ms
        for group, weight in zip(groups, weights):
            done += weight
            end_ms = clause.start_ms + round(span * done / total)
            cues.append(Cue(start_ms=start_ms, end_ms=end_ms, lines=group))
            start_ms = end_ms
    return cues


def line_width_px(text: str, *, font: ImageFont.FreeTypeFont, max_width_px: int) -> int:
    """The widest a subtitle line of `text`'s language may be: CJK_LINE_CHARS full-width
    characters or LATIN_LINE_CHARS ordinary Latin ones, as `font` draws them, within `max_width_px`."""
    if is_cjk_text(text):
        comfortable = font.getlength("中" * CJK_LINE_CHARS)
    else:
        comfortable = font.getlength(LATIN_SAMPLE) * LATIN_LINE_CHARS / len(LATIN_SAMPLE)
    return min(max_width_px, math.ceil(comfortable))


def balanced_wrap(text: str, *, font: ImageFont.FreeTypeFont, max_width_px: int) -> list[str]:
    """`wrap`, with lines of similar length: the narrowest width that needs no more lines,
    so a cue never ends on a lone character or word."""
    lines = wrap(text, font=font, max_width_px=max_width_px)
    if len(lines) < 2:
        return lines
    step = max(1, font.size // 2)
    # Never narrower than the widest word: that would cut it ("MADRI / D") into as many lines.
    width = math.ceil(max(font.getlength(" ".join(text.split())) / len(lines), widest_unit(text, font=font)))
    while width < max_width_px:
        narrower = wrap(text, font=font, max_width_px=width)
        if len(narrower) == len(lines):
            return narrower
        width += step
    return lines


def wrap(text: str, *, font: ImageFont.FreeTypeFont, max_width_px: int) -> list[str]:
    """Lines of `text` no wider than `max_width_px` as measured with `font`."""
    lines: list[str] = []
    line = ""
    for unit in _break_units(" ".join(text.split())):
        candidate = line + unit
        if font.getlength(candidate.rstrip()) <= max_width_px:
            line = candidate
            continue
        if line.strip():
            lines.append(line.rstrip())
        line = ""
        unit = unit.lstrip()
        if font.getlength(unit.rstrip()) > max_width_px:
            # A word wider than a whole line: cut it character by character.
            *whole, line = _hard_split(unit, font=font, max_width_px=max_width_px)
            lines.extend(whole)
        else:
            line = unit
    if line.strip():
        lines.append(line.rstrip())
    return lines


def widest_unit(text: str, *, font: ImageFont.FreeTypeFont) -> float:
    """The width of the widest piece `wrap` never breaks (a Latin word with its punctuation)."""
    return max((font.getlength(unit.strip()) for unit in _break_units(" ".join(text.split()))), default=0.0)


def _break_units(text: str) -> list[str]:
    """Text cut where a line may break: between CJK characters and after spaces, but never
    before closing punctuation or after opening punctuation. Spaces stay on the unit
    before them, so a line ending there is simply right-stripped."""
    units: list[str] = []
    glue_next = False  # the previous character was opening punctuation
    for char in text:
        previous = units[-1] if units else ""
        if char == " ":
            if previous and not previous.endswith(" "):
                units[-1] += " "
            continue
        if previous and not previous.endswith(" ") and (glue_next or char in CLOSING):
            units[-1] += char
        elif is_cjk(char) or char in OPENING:
            units.append(char)
        elif previous and not previous.endswith(" ") and not is_cjk(previous[-1]):
            units[-1] += char  # the next letter of a Latin word
        else:
            units.append(char)
        glue_next = char in OPENING
    return units


def _hard_split(word: str, *, font: ImageFont.FreeTypeFont, max_width_px: int) -> list[str]:
    pieces: list[str] = []
    piece = ""
    for char in word:
        if piece and font.getlength((piece + char).rstrip()) > max_width_px:
            pieces.append(piece.rstrip())
            piece = ""
        piece += char
    pieces.append(piece)
    return pieces


@cache
def _font(font_path: Path, font_size: int) -> ImageFont.FreeTypeFont:
    """The face libass will pick: in a collection (.ttc), the one named fonts.FAMILY."""
    if font_path.suffix.lower() == ".ttc":
        for index in range(32):
            try:
                face = ImageFont.truetype(str(font_path), font_size, index=index)
            except OSError:
                break
            if face.getname()[0] == fonts.FAMILY:
                return face
    try:
        return ImageFont.truetype(str(font_path), font_size)
    except OSError as error:
        raise MediaError(f"cannot load font {font_path}: {error}") from error


# --- layout -----------------------------------------------------------------------------


def subtitle_area(
    width: int, height: int, style: SubtitleStyle, logo_box: tuple[int, int, int, int] | None = None
) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the band that the subtitle boxes (text and padding) can cover."""
    left, right = _side_margins(width, height, style)
    band_height = _band_height(style)
    bottom = _bottom_margin(width, height, style, logo_box)
    return left, height - bottom - band_height, width - left - right, band_height


def safe_text_width(
    width: int,
    style: SubtitleStyle,
    logo_box: tuple[int, int, int, int] | None = None,
    *,
    height: int | None = None,
) -> int:
    """The widest a line of text may be: pass it to make_cues as max_width_px.

    A logo never narrows the text, because the band is lifted above a logo in its way
    (see `subtitle_area`); `logo_box` is taken so callers describe the same layout to
    this function and to `write_ass`. `height` names the frame: a vertical one keeps its text inside
    the Shorts safe area (see `_side_margins`).
    """
    left, right = _side_margins(width, height or 0, style)
    return width - left - right - 2 * style.outline


def _side_margins(width: int, height: int, style: SubtitleStyle) -> tuple[int, int]:
    """Left and right edge to the subtitle box: the style's margin, at least the frame's safe area (in a
    vertical frame, Shorts' 15 % on the right: its like, comment and share buttons)."""
    from .layout import safe_area  # layout draws with cards, which wraps with this module

    area = safe_area(width, height)
    return (
        max(style.margin_h, math.ceil(width * max(SAFE_MARGIN, area.left))),
        max(style.margin_h, math.ceil(width * max(SAFE_MARGIN, area.right))),
    )


def _band_height(style: SubtitleStyle) -> int:
    # libass lays each line one line height (the ASS Fontsize) below the previous one and pads
    # the cue's box by the outline.
    return style.max_lines * ass_font_size(style) + 2 * style.outline


def _bottom_margin(
    width: int, height: int, style: SubtitleStyle, logo_box: tuple[int, int, int, int] | None
) -> int:
    """Distance from the frame's bottom edge to the band: the style's, or above the logo."""
    if style.alignment not in (1, 2, 3):
        raise MediaError(f"subtitle alignment {style.alignment} is not supported, only 1, 2 or 3 (bottom)")
    safe_top = math.ceil(height * SAFE_MARGIN)
    bottom = max(style.margin_v, safe_top)
    band_height = _band_height(style)
    if height - bottom - band_height < safe_top:
        raise MediaError(
            f"{style.max_lines} subtitle lines of {style.font_size} px do not fit a {width}x{height} frame"
        )
    left, right = _side_margins(width, height, style)
    band = (left, height - bottom - band_height, width - left - right, band_height)
    if logo_box is None or not _overlaps(logo_box, band):
        return bottom
    # Lift the band above the logo, keeping the text centred and its lines as wide.
    lifted = height - logo_box[1] + max(4, round(height * 0.01))
    if height - lifted - band_height < safe_top:
        raise MediaError(
            f"the logo at {tuple(logo_box)} leaves no room above it for {style.max_lines} "
            f"subtitle lines in a {width}x{height} frame"
        )
    return lifted


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


# --- files ------------------------------------------------------------------------------


def write_srt(cues: list[Cue], path: Path) -> None:
    blocks = [
        f"{number}\n{_srt_time(cue.start_ms)} --> {_srt_time(cue.end_ms)}\n" + "\n".join(cue.lines)
        for number, cue in enumerate(cues, start=1)
    ]
    Path(path).write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def write_vtt(cues: list[Cue], path: Path) -> None:
    """WebVTT, the format players and YouTube take besides SRT."""
    blocks = [
        f"{_srt_time(cue.start_ms).replace(',', '.')} --> {_srt_time(cue.end_ms).replace(',', '.')}\n"
        + "\n".join(_vtt_text(line) for line in cue.lines)
        for cue in cues
    ]
    Path(path).write_text("WEBVTT\n\n" + "\n\n".join(blocks) + "\n", encoding="utf-8")


def _vtt_text(line: str) -> str:
    # "<" opens a tag and "&" an entity in a cue's text; "-->" would end the timing line.
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_ass(
    cues: list[Cue],
    path: Path,
    *,
    width: int,
    height: int,
    style: SubtitleStyle,
    logo_box: tuple[int, int, int, int] | None = None,
    karaoke: KaraokeStyle | None = None,
    words: Sequence[TimedWord] = (),
) -> None:
    """The cues as an ASS file; with `karaoke` and word times, the spoken word is highlighted.

    Each cue shows on one box (libass's BorderStyle 4: one rectangle behind the whole event, padded
    by Shadow, in BackColour). Boxes per line (BorderStyle 3) overlap where two lines meet, and where
    two runs of differently styled text meet (the spoken word's edges): a see-through box was drawn
    twice there, in darker bands and bars."""
    left, right = _side_margins(width, height, style)
    bottom = _bottom_margin(width, height, style, logo_box)
    box = ass_colour(style.background_colour, opacity=style.background_opacity)
    clear = ass_colour(style.background_colour, opacity=0.0)

    def style_line(name: str, primary: str, border_style: int, back: str, shadow: int) -> str:
        # The ASS margins place the text; the box reaches `outline` beyond it.
        fields = [name, style.font_family, str(ass_font_size(style)), primary, primary, back, back]
        fields += ["0", "0", "0", "0", "100", "100", "0", "0", str(border_style), "0", str(shadow)]
        fields += [str(style.alignment), str(left + style.outline), str(right + style.outline)]
        return "Style: " + ",".join([*fields, str(bottom + style.outline), "1"]) + "\n"

    styles = style_line("Default", ass_colour(style.primary_colour), 4, box, style.outline)
    if karaoke is not None and karaoke.box:
        # The spoken word's own box: BorderStyle 3 around its run of text, everything else see-through.
        styles += style_line(WORD_BOX_STYLE, clear, 3, clear, 0)
        styles += style_line(TEXT_STYLE, ass_colour(style.primary_colour), 1, clear, 0)
    events = (
        [
            f"Dialogue: 0,{_ass_time(cue.start_ms)},{_ass_time(cue.end_ms)},Default,,0,0,0,,"
            + r"\N".join(_ass_text(line) for line in cue.lines)
            for cue in cues
        ]
        if karaoke is None or not words
        else _karaoke_events(cues, words, karaoke, style=style)
    )
    Path(path).write_text(
        "[Script Info]\n"
        "ScriptType: v4.00+\n"
        f"PlayResX: {width}\n"
        f"PlayResY: {height}\n"
        "WrapStyle: 2\n"  # lines are already wrapped by measured width
        "ScaledBorderAndShadow: yes\n"
        "\n[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
        "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, "
        "Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"{styles}"
        "\n[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        + "".join(f"{event}\n" for event in events),
        encoding="utf-8",
    )


# With a karaoke box, a highlighted word's moment is three events on three layers, laid out alike
# (the same text and tags): the cue's box (its text see-through), the word's box, the text.
WORD_BOX_STYLE = "KaraokeBox"
TEXT_STYLE = "KaraokeText"
_HIDE_TEXT = r"\1a&HFF&"


def _karaoke_events(
    cues: list[Cue], words: Sequence[TimedWord], karaoke: KaraokeStyle, *, style: SubtitleStyle
) -> list[str]:
    """One Dialogue per word state: while a word is spoken its cue is shown with that word
    highlighted; before, between and after the words the cue is shown plain. A word belongs
    to the cue its middle falls in and is found in that cue's text in order; one that is not
    (the engine read "3.14" as its own words, say) is simply not highlighted.

    The highlight changes the word's colour (and size) inside the cue's one box. Its own box is a
    box around the word's run of text alone, as high as its line (never over the other line), on a
    layer between the cue's box and the text."""
    colour = ass_colour(karaoke.color)[4:]  # &HBBGGRR: \1c takes no alpha
    tags = rf"\1c&H{colour}&"
    if karaoke.scale != 1:
        # A larger font size, not \fscx/\fscy: libass scales a BorderStyle 3 box by those twice, and the
        # word's box would reach far over the next line.
        tags += rf"\fs{round(ass_font_size(style) * karaoke.scale)}"
    # The word's box reaches a little beyond its letters, and not at all above or below its line.
    word_box = rf"\3c&H{ass_colour(karaoke.box)[4:]}&\3a&H00&\xbord1\ybord0" if karaoke.box else ""
    events: list[str] = []

    def add(start_ms: int, end_ms: int, text: str, *, layer: int = 0, name: str = "Default") -> None:
        if _ass_time(end_ms) > _ass_time(start_ms):  # an event shorter than a centisecond shows nothing
            events.append(
                f"Dialogue: {layer},{_ass_time(start_ms)},{_ass_time(end_ms)},{name},,0,0,0,,{text}"
            )

    for cue in cues:
        text = "\n".join(" ".join(line.split()) for line in cue.lines)
        plain = _ass_piece(text)
        position_ms, cursor = cue.start_ms, 0
        for word in words:
            if not cue.start_ms <= (word.start_ms + word.end_ms) // 2 < cue.end_ms or not word.text:
                continue
            found = text.find(word.text, cursor)
            if found < 0:
                continue
            cursor = found + len(word.text)
            start_ms, end_ms = max(position_ms, word.start_ms), min(cue.end_ms, word.end_ms)
            if end_ms <= start_ms:
                continue
            add(position_ms, start_ms, plain)

            before, said, rest = _ass_piece(text[:found]), _ass_piece(word.text), _ass_piece(text[cursor:])
            if word_box:
                hidden = "{" + _HIDE_TEXT + "}" + before
                add(start_ms, end_ms, _highlighted(hidden, tags, said, rest, after=_HIDE_TEXT))
                add(
                    start_ms,
                    end_ms,
                    _highlighted(before, tags + word_box, said, rest),
                    layer=1,
                    name=WORD_BOX_STYLE,
                )
                add(start_ms, end_ms, _highlighted(before, tags, said, rest), layer=2, name=TEXT_STYLE)
            else:
                add(start_ms, end_ms, _highlighted(before, tags, said, rest))
            position_ms = end_ms
        add(position_ms, cue.end_ms, plain)
    return events


def _highlighted(before: str, tags: str, said: str, rest: str, *, after: str = "") -> str:
    """A cue's text (ASS) with the spoken word in `tags`; `\\r` returns to the event's style (and `after`)."""
    return f"{before}{{{tags}}}{said}{{\\r{after}}}{rest}"


def _ass_piece(text: str) -> str:
    """Part of a cue's text as ASS: escaped like `_ass_text`, spaces kept, line breaks as \\N."""
    return r"\N".join(
        line.replace("\\", "＼").replace("{", r"\{").replace("}", r"\}") for line in text.split("\n")
    )


def ass_colour(hex_colour: str, *, opacity: float = 1.0) -> str:
    """ "#RRGGBB" as ASS "&HAABBGGRR", where AA is transparency (00 is opaque)."""
    digits = hex_colour.strip().removeprefix("#")
    if len(digits) != 6 or any(char not in "0123456789abcdefABCDEF" for char in digits):
        raise MediaError(f"colour {hex_colour!r} is not of the form #RRGGBB")
    red, green, blue = digits[0:2], digits[2:4], digits[4:6]
    alpha = round((1.0 - min(1.0, max(0.0, opacity))) * 255)
    return f"&H{alpha:02X}{blue}{green}{red}".upper()


def ass_font_size(style: SubtitleStyle) -> int:
    """The ASS Fontsize that makes libass draw `style.font_size` px em squares.

    The line-height ratio is that of the default font, the one text is measured with.
    """
    ascent, descent = _font(fonts.default_font_path(), 1000).getmetrics()
    return round(style.font_size * (ascent + descent) / 1000)


def _ass_text(line: str) -> str:
    # Braces would open an override block and "\N", "\h" are commands: libass reads "\{"
    # and "\}" as literal braces, and a lone backslash becomes the full-width one.
    line = " ".join(line.split()).replace("\\", "＼")
    return line.replace("{", r"\{").replace("}", r"\}")


def _srt_time(ms: int) -> str:
    hours, rest = divmod(max(0, ms), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d},{millis:03d}"


def _ass_time(ms: int) -> str:
    # ASS counts centiseconds; rounding up means a cue never appears before its sentence.
    centis = -(-max(0, ms) // 10)
    hours, rest = divmod(centis, 360_000)
    minutes, rest = divmod(rest, 6000)
    seconds, centis = divmod(rest, 100)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{centis:02d}"
