"""Picture cards: a gradient and the segment's key phrase, for segments with no generated image.

Also home to the fitting and drawing of large text that covers and title overlays share; lines
break by measured width with `subtitles.wrap` (CJK between characters, Latin between words).
"""

import random
import re
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .errors import MediaError
from .fonts import default_font_path
from .sentences import is_speakable, phrase_break_penalty, split_clause_marks, split_sentences
from .subtitles import balanced_wrap, widest_unit

DEFAULT_PALETTE = ["#1d2b53", "#7e2553", "#ff8c42"]
# Index of "Noto Sans CJK SC" inside the Noto CJK collections; other fonts have one face.
_SC_FACE_INDEX = 2
_CJK_CHARS = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
# Punctuation a headline does not end with; a "." only after a word, not in "U.S." or "Dr.".
_CLOSING_MARKS = re.compile(r"(?:[，。！？；：、,!?;:…—–]|\s[-–—]|(?<=[a-z0-9]{3})\.)+$")
# A key phrase's pieces: one CJK character, or a word (a run of anything else but spaces).
_PHRASE_TOKEN = re.compile(f"[{_CJK_CHARS}]|[^\\s{_CJK_CHARS}]+")
# A key phrase holds about 16 CJK characters or 6 words: a word weighs as much as 16/6 characters.
KEY_PHRASE_CJK_CHARS = 16
KEY_PHRASE_WORDS = 6


@cache
def font(size: int, *, bold: bool = True) -> ImageFont.FreeTypeFont:
    """The project's CJK font at `size` px; the Bold face when it is installed."""
    path = default_font_path()
    if bold and "Regular" in path.name:
        bold_path = path.with_name(path.name.replace("Regular", "Bold"))
        path = bold_path if bold_path.exists() else path
    index = _SC_FACE_INDEX if path.suffix.lower() == ".ttc" else 0
    return ImageFont.truetype(str(path), size, index=index)


def key_phrase(text: str, *, language: str = "") -> str:
    """The first clause of `text`'s first sentence (cut at clause punctuation, never at the period
    of "U.S." or "0.4": media_engine.sentences), trimmed to about 16 CJK characters or 6 words at a
    word boundary that ends a phrase (not after "the" or "at", not between "5.25" and "%")."""
    try:
        sentence = split_sentences(text, language=language)[0]
    except MediaError:
        return ""
    clause = next((piece for piece in split_clause_marks(sentence) if is_speakable(piece)), sentence)
    clause = _CLOSING_MARKS.sub("", clause)
    ends = [token.end() for token in _PHRASE_TOKEN.finditer(clause)]
    budget, fitting = float(KEY_PHRASE_CJK_CHARS), 0
    for token in _PHRASE_TOKEN.finditer(clause):
        weight = (
            1.0
            if len(token.group()) == 1 and re.match(f"[{_CJK_CHARS}]", token.group())
            else KEY_PHRASE_CJK_CHARS / KEY_PHRASE_WORDS
        )
        if fitting and weight > budget + 1e-9:
            break
        budget -= weight
        fitting += 1
    if not ends:
        return ""
    if fitting < len(ends):
        # Trimmed: end where a phrase ends, never after a word that leads into the next one; a name
        # running past the budget ("Dr. Jerome H. Powell") may take up to three more words.
        def good(cut: int) -> bool:
            return clause[cut : cut + 1] != " " or phrase_break_penalty(clause, cut) < 1.0

        within = [cut for cut in ends[:fitting] if good(cut)]
        beyond = [cut for cut in ends[fitting : fitting + 3] if good(cut)]
        end = within[-1] if within else beyond[0] if beyond else ends[fitting - 1]
    else:
        end = ends[-1]
    return _CLOSING_MARKS.sub("", clause[:end].strip())


def fit_text(
    text: str,
    *,
    max_width: float,
    max_height: float,
    start_size: int,
    max_lines: int = 3,
    min_size: int = 12,
    bold: bool = True,
) -> tuple[ImageFont.FreeTypeFont, list[str]]:
    """The largest font size (from `start_size` down) whose wrapped lines, of similar lengths so a
    card never ends on a lone character, fit the box with every word whole; at `min_size`, the lines
    whatever their number."""
    size = start_size
    while True:
        text_font = font(size, bold=bold)
        lines = balanced_wrap(text, font=text_font, max_width_px=int(max_width)) or [""]
        height = len(lines) * line_height(text_font)
        # A size where a word is wider than the line would cut it ("WASHINGTO / N"): smaller then.
        whole = widest_unit(text, font=text_font) <= int(max_width)
        if size <= min_size or (whole and len(lines) <= max_lines and height <= max_height):
            return text_font, lines
        size = max(min_size, int(size * 0.9))


def line_height(text_font: ImageFont.FreeTypeFont) -> int:
    return round(text_font.size * 1.3)


def line_boxes(
    image_width: int,
    lines: list[str],
    text_font: ImageFont.FreeTypeFont,
    *,
    center_y: float,
) -> list[tuple[float, float, tuple[int, int, int, int]]]:
    """Where `draw_centered_lines` draws each line: (x, y, the box its glyphs cover)."""
    step = line_height(text_font)
    top = center_y - step * len(lines) / 2
    placed = []
    for number, line in enumerate(lines):
        x = (image_width - text_font.getlength(line)) / 2
        y = top + number * step + (step - text_font.size) / 2
        left, upper, right, lower = text_font.getbbox(line)
        placed.append((x, y, (round(x + left), round(y + upper), round(x + right), round(y + lower))))
    return placed


def draw_centered_lines(
    image: Image.Image,
    lines: list[str],
    text_font: ImageFont.FreeTypeFont,
    *,
    center_y: float,
    fill: str = "#ffffff",
    shadow: str = "#000000",
    shadow_blur: float | None = None,
) -> None:
    """Draw `lines` centred horizontally around `center_y`, over a blurred (soft) shadow."""
    blur = shadow_blur if shadow_blur is not None else max(2.0, text_font.size / 12)
    offset = max(1, round(text_font.size / 20))
    shadow_layer = Image.new("L", image.size, 0)
    shadow_draw = ImageDraw.Draw(shadow_layer)
    positions = line_boxes(image.width, lines, text_font, center_y=center_y)
    for (x, y, _box), line in zip(positions, lines):
        shadow_draw.text((x + offset, y + offset), line, font=text_font, fill=255)
    shadow_layer = shadow_layer.filter(ImageFilter.GaussianBlur(blur))
    image.paste(Image.new("RGB", image.size, shadow), (0, 0), shadow_layer.point(lambda v: v * 0.8))
    draw = ImageDraw.Draw(image)
    for (x, y, _box), line in zip(positions, lines):
        draw.text((x, y), line, font=text_font, fill=fill)


def render_card(
    text: str,
    *,
    width: int,
    height: int,
    palette: list[str],
    out_path: Path,
    seed: int = 0,
    language: str = "",
) -> Path:
    """A PNG card: the palette as a gradient, the key phrase of `text` large in the middle."""
    if width <= 0 or height <= 0:
        raise MediaError(f"card size must be positive, got {width}x{height}")
    colours = [_parse_hex(value) for value in (palette or DEFAULT_PALETTE)]
    image = _gradient(width, height, colours, random.Random(seed))
    phrase = key_phrase(text, language=language)
    if phrase:
        text_font, lines = fit_text(
            phrase,
            max_width=width * 0.84,
            max_height=height * 0.6,
            start_size=max(12, round(min(width, height) / 6)),
        )
        draw_centered_lines(image, lines, text_font, center_y=height / 2)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    image.save(out_path, format="PNG")
    return out_path


def _gradient(
    width: int,
    height: int,
    colours: list[tuple[int, int, int]],
    rng: random.Random,
) -> Image.Image:
    """A linear gradient through `colours` at an angle picked by `rng`, so cards differ."""
    if len(colours) == 1:
        # One colour still deserves depth: fade it towards a darker shade.
        colours = [colours[0], tuple(int(c * 0.45) for c in colours[0])]
    order = colours[:] if rng.random() < 0.5 else colours[::-1]
    angle = rng.uniform(0, np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    projection = xs / max(width, 1) * np.cos(angle) + ys / max(height, 1) * np.sin(angle)
    position = (projection - projection.min()) / max(float(np.ptp(projection)), 1e-6)
    stops = np.linspace(0.0, 1.0, len(order))
    channels = [np.interp(position, stops, [colour[i] for colour in order]) for i in range(3)]
    pixels = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _parse_hex(value: str) -> tuple[int, int, int]:
    digits = value.strip().lstrip("#")
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    if not re.fullmatch(r"[0-9a-fA-F]{6}", digits):
        raise MediaError(f"not a hex colour: {value!r}")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
