"""Karaoke captions as libass burns them: frame crops of a two-line cue with its spoken word
highlighted, at every allowed setting (colour only, larger, on a box of its own; see-through and
opaque caption boxes, in both frames). The caption box must stay one clean box: no box drawn
twice where two lines or two runs of text meet, and the word's own box never over the other line."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media_engine import fonts, subtitles
from media_engine.sentences import TimedWord
from media_engine.subtitles import Cue, KaraokeStyle

pytestmark = pytest.mark.slow

GREY = np.array([128, 128, 128])  # the picture behind the captions
YELLOW = np.array([0xFF, 0xD4, 0x00])
RED = np.array([0xC0, 0x00, 0x00])
LINES = ["今天天气很好我们去公园散步吧", "公园里有很多花孩子们在玩"]
SPOKEN = {0: "公园", 1: "孩子"}  # a word of the first line, a word of the second
PLAIN_MS, SPOKEN_MS = 200, 1000  # before the word is spoken, and while it is


def render(
    tmp_path: Path, *, width: int, height: int, opacity: float, karaoke: KaraokeStyle | None, line: int
):
    """(frame before the word, frame while it is spoken, the style) of the cue over a grey picture."""
    style = subtitles.subtitle_style(
        width=width,
        height=height,
        font_size=None,
        font_family=fonts.FAMILY,
        primary_colour="#FFFFFF",
        background_colour="#000000",
        background_opacity=opacity,
    )
    ass_path = tmp_path / "cue.ass"
    subtitles.write_ass(
        [Cue(0, 2000, LINES)],
        ass_path,
        width=width,
        height=height,
        style=style,
        karaoke=karaoke,
        words=[TimedWord(SPOKEN[line], 500, 1500, 0)],
    )
    frames = []
    for at_ms in (PLAIN_MS, SPOKEN_MS):
        png = tmp_path / f"frame{at_ms}.png"
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                f"color=c=0x808080:s={width}x{height}:r=25:d=2",
                "-vf",
                f"format=rgb24,ass=filename={ass_path}",  # no chroma subsampling blurring colour edges
                "-ss",
                f"{at_ms / 1000:.3f}",
                "-frames:v",
                "1",
                str(png),
            ],
            check=True,
            timeout=60,
        )
        frames.append(np.asarray(Image.open(png).convert("RGB")).astype(int))
    return frames[0], frames[1], style


def near(pixels: np.ndarray, colour, tolerance: int = 24) -> np.ndarray:
    return np.abs(pixels - np.asarray(colour)).max(axis=-1) <= tolerance


def white_rows(pixels: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) row of each run of rows holding white glyph pixels: the lines' white text."""
    return _runs(np.flatnonzero((pixels.min(axis=2) > 215).sum(axis=1) >= 2))


def text_rows(pixels: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) row of each line's text, white or highlighted."""
    bright = (pixels[..., 0] > 200) & (pixels[..., 1] > 150)
    return _runs(np.flatnonzero(bright.sum(axis=1) >= 2))


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    runs: list[list[int]] = []
    for row in rows:
        if runs and row - runs[-1][1] <= 3:
            runs[-1][1] = row
        else:
            runs.append([row, row])
    return [(first, last) for first, last in runs]


def caption_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), inclusive, of everything drawn over the grey picture."""
    drawn = ~near(pixels, GREY, 3)
    rows, columns = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
    return rows[0], rows[-1], columns[0], columns[-1]


SETTINGS = [
    pytest.param(KaraokeStyle(), id="colour"),
    pytest.param(KaraokeStyle(scale=1.5), id="larger"),
    pytest.param(KaraokeStyle(box="#C00000"), id="box"),
    pytest.param(KaraokeStyle(scale=1.5, box="#C00000"), id="larger-box"),
]


@pytest.mark.parametrize("karaoke", SETTINGS)
@pytest.mark.parametrize("line", [0, 1])
@pytest.mark.parametrize("opacity", [0.6, 1.0])
@pytest.mark.parametrize(("width", "height"), [(1360, 768), (768, 1360)])
def test_the_spoken_word_is_highlighted_on_one_clean_caption_box(
    tmp_path, karaoke, line, opacity, width, height
):
    plain, spoken, style = render(
        tmp_path, width=width, height=height, opacity=opacity, karaoke=karaoke, line=line
    )
    box_colour = np.round(GREY * (1 - opacity)).astype(int)  # black at `opacity` over the picture
    word_box = near(spoken, RED, 40) if karaoke.box else np.zeros(spoken.shape[:2], dtype=bool)
    # Where the word's box meets the caption box, a pixel or two blend the two.
    blended = np.zeros_like(word_box)
    for dy in (-2, -1, 0, 1, 2):
        for dx in (-2, -1, 0, 1, 2):
            blended |= np.roll(np.roll(word_box, dy, axis=0), dx, axis=1)

    for frame in (plain, spoken):
        top, bottom, left, right = caption_box(frame)
        # One box, the box colour alone away from the text: no picture showing through (a step between a
        # long line and a short one), nothing drawn twice where two lines or two runs of text meet (darker
        # bands between the lines, bars at the spoken word's edges). Away from the text: the rows above,
        # between and below the lines, and the columns beside them.
        lines = text_rows(frame)
        assert len(lines) == 2, lines
        (first_top, first_bottom), (second_top, second_bottom) = lines
        free_rows = [*range(top + 1, first_top - 6), *range(first_bottom + 6, second_top - 6)]
        free_rows += range(second_bottom + 8, bottom)
        assert len(free_rows) > 4
        pad = style.outline // 2
        free = np.zeros(frame.shape[:2], dtype=bool)
        free[free_rows, left + 1 : right] = True
        free[top + 1 : bottom, [*range(left + 1, left + pad), *range(right - pad + 1, right)]] = True
        free &= ~blended
        wrong = np.abs(frame[free] - box_colour).max(axis=1) > 3
        assert not wrong.any(), sorted({tuple(pixel) for pixel in frame[free][wrong]})[:10]

    # The word is spoken in the highlight colour.
    assert near(spoken, YELLOW, 40).sum() > 50
    # The other line keeps its text: as much white ink as before the word was spoken, and never under
    # the word's box.
    other = 1 - line
    (plain_top, plain_bottom), (spoken_top, spoken_bottom) = (
        white_rows(plain)[other],
        white_rows(spoken)[other],
    )
    plain_ink = (plain[plain_top : plain_bottom + 1].min(axis=2) > 215).sum()
    spoken_ink = (spoken[spoken_top : spoken_bottom + 1].min(axis=2) > 215).sum()
    assert spoken_ink == pytest.approx(plain_ink, rel=0.02)
    if karaoke.box:
        rows, columns = np.flatnonzero(word_box.any(axis=1)), np.flatnonzero(word_box.any(axis=0))
        assert rows[-1] < spoken_top - 2 if other == 1 else rows[0] > spoken_bottom + 2, (rows, spoken_top)
        # The word's box is one box of its colour, the word drawn on it.
        inside = spoken[rows[0] + 2 : rows[-1] - 1, columns[0] + 2 : columns[-1] - 1]
        assert (near(inside, RED, 40) | ((inside[..., 0] > 180) & (inside[..., 2] < 40))).all()
