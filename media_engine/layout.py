"""Where things go in a frame: the platforms' safe areas, the frames a job renders, and the text lines.

Safe areas (shares of the frame kept clear of text, per edge), from the platforms' own overlays:
- YouTube (16:9): the title-safe 5 % on each side, and 10 % at the bottom, where the progress
  bar and the player controls cover the picture whenever the viewer moves the mouse.
- Shorts (9:16): 12 % at the top (search and menu icons), 25 % at the bottom (channel name,
  description, music and the subscribe button) and 15 % on the right (the like, comment and
  share column), 5 % on the left.

The text lines of a job (index and title at the top, description at the bottom, persistent as
the seed draws them) are laid out here for one frame size; `compose` only draws them.
"""

import math
from dataclasses import dataclass

from PIL import ImageFont

from .cards import fit_text, line_height
from .subtitles import wrap

# Frame names, as operators say them: horizontal long-form and vertical Shorts.
FRAME_NAMES = ("16:9", "9:16")


@dataclass(frozen=True)
class SafeArea:
    left: float
    top: float
    right: float
    bottom: float


YOUTUBE = SafeArea(left=0.05, top=0.05, right=0.05, bottom=0.10)
SHORTS = SafeArea(left=0.05, top=0.12, right=0.15, bottom=0.25)

# Text sizes as shares of the frame's shorter side; a block shrinks to at least MIN_SHRINK of it.
TEXT_SIZE_SHARE = 0.048
LARGE_TEXT_SIZE_SHARE = 0.064
MIN_SHRINK = 0.6
MAX_LINES = 2
GAP_SHARE = 0.012  # of the frame height, between blocks and between a block and the subtitles


def frame_name(width: int, height: int) -> str:
    return "9:16" if height > width else "16:9"


def safe_area(width: int, height: int) -> SafeArea:
    """Shorts' safe area for a vertical frame, YouTube's for any other."""
    return SHORTS if height > width else YOUTUBE


def safe_box(width: int, height: int) -> tuple[int, int, int, int]:
    """x, y, w, h of the frame's safe area in pixels."""
    area = safe_area(width, height)
    left, top = round(width * area.left), round(height * area.top)
    right, bottom = width - round(width * area.right), height - round(height * area.bottom)
    return left, top, right - left, bottom - top


@dataclass(frozen=True)
class TextBlock:
    """One text to show for the whole video, at the top or at the bottom of the safe area."""

    text: str
    position: str = "top"  # "top" blocks stack downwards in order, "bottom" ones upwards above the subtitles
    large: bool = False


@dataclass(frozen=True)
class TextLine:
    text: str
    center_x: int  # the line is centred on this x
    top: int  # y of the line's box (one line height tall)
    font_size: int
    line_height: int


def text_lines(
    blocks: list[TextBlock],
    *,
    width: int,
    height: int,
    subtitles_top: int | None = None,
    logo_box: tuple[int, int, int, int] | None = None,
) -> list[TextLine]:
    """The lines of `blocks` in a width x height frame: inside the safe area, above the subtitle band
    (`subtitles_top`, its y) and beside the logo; each block is wrapped at word (CJK: character)
    boundaries into at most MAX_LINES lines of similar lengths, shrinking its font when it does not fit.
    A large block (the title) stays larger than the others: they shrink with it."""
    left, top, safe_w, safe_h = safe_box(width, height)
    gap = max(2, round(height * GAP_SHARE))
    floor = top + safe_h
    if subtitles_top is not None:
        floor = min(floor, subtitles_top - gap)
    center_x = left + safe_w // 2
    shown = [block for block in blocks if block.text.strip()]
    placed: dict[int, list[TextLine]] = {}
    most = None  # the others' largest size: smaller than the smallest large block, in their full sizes' ratio
    for block in sorted(shown, key=lambda block: not block.large):  # the large ones first
        free_width = _free_width(safe_w, center_x, height, logo_box, block.position == "top")
        placed[id(block)] = _block(
            block, width, height, center_x, free_width, most=None if block.large else most
        )
        if block.large:
            size = placed[id(block)][0].font_size
            ratio_size = min(size - 1, round(size * TEXT_SIZE_SHARE / LARGE_TEXT_SIZE_SHARE))
            most = ratio_size if most is None else min(most, ratio_size)
    lines: list[TextLine] = []
    y = top
    for block in (b for b in shown if b.position == "top"):
        for line in placed[id(block)]:
            lines.append(TextLine(line.text, center_x, y, line.font_size, line.line_height))
            y += line.line_height
        y += gap
    y = floor
    bottom: list[TextLine] = []
    for block in reversed([b for b in shown if b.position == "bottom"]):
        for line in reversed(placed[id(block)]):
            y -= line.line_height
            bottom.insert(0, TextLine(line.text, center_x, y, line.font_size, line.line_height))
        y -= gap
    return lines + bottom


def _free_width(
    safe_w: int, center_x: int, height: int, logo_box: tuple[int, int, int, int] | None, at_top: bool
) -> float:
    """The widest a centred line may be: the safe width, less a logo in the same (top/bottom) half."""
    half = safe_w / 2
    if logo_box is not None:
        x, logo_y, logo_w, logo_h = logo_box
        if (logo_y + logo_h / 2 < height / 2) == at_top:
            margin = max(4, round(logo_w * 0.1))
            if x > center_x:
                half = min(half, x - margin - center_x)
            else:
                half = min(half, center_x - (x + logo_w) - margin)
    return max(half * 2, safe_w * 0.3)


def _block(
    block: TextBlock, width: int, height: int, center_x: int, max_width: float, *, most: int | None = None
) -> list[TextLine]:
    """The block's lines at the largest size (at most `most`, down to MIN_SHRINK of its own) that fits
    MAX_LINES lines, balanced so that no line is left with a lone character or word; at the smallest
    size, text beyond MAX_LINES is cut between words (CJK: characters) with an ellipsis."""
    share = LARGE_TEXT_SIZE_SHARE if block.large else TEXT_SIZE_SHARE
    size = max(12, round(min(width, height) * share))
    smallest = max(10, round(size * MIN_SHRINK))
    if most is not None:
        size = min(size, most)
        smallest = min(smallest, size)
    text = " ".join(block.text.split())
    text_font, wrapped = fit_text(
        text,
        max_width=max_width,
        max_height=math.inf,
        start_size=size,
        max_lines=MAX_LINES,
        min_size=smallest,
        bold=False,  # the face drawtext draws with
    )
    if len(wrapped) > MAX_LINES:
        wrapped = _cut(text, text_font, max_width)
    step = line_height(text_font)
    return [TextLine(line, center_x, 0, text_font.size, step) for line in wrapped]


def _cut(text: str, text_font: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    """The first MAX_LINES lines of `text`, full, the last one ending with "…" after a whole word
    (CJK: character)."""
    lines = wrap(text, font=text_font, max_width_px=int(max_width))[: MAX_LINES - 1]
    position = 0
    for line in lines:
        position = text.index(line, position) + len(line)
    rest = text[position:]
    room = int(max_width - text_font.getlength("…"))
    last = wrap(rest.strip(), font=text_font, max_width_px=room)[0].rstrip(" ,，、;；:：")
    return [*lines, last + "…"]
