"""layout: the safe areas and where the text lines go, measured with the font that draws them.
(The lines drawn on real frames are checked in test_compose.)"""

import pytest

from media_engine.cards import font
from media_engine.layout import (
    LARGE_TEXT_SIZE_SHARE,
    MIN_SHRINK,
    SHORTS,
    YOUTUBE,
    TextBlock,
    frame_name,
    safe_area,
    safe_box,
    text_lines,
)

SEED = [
    TextBlock("第12集", position="top"),
    TextBlock("老照片里的童年", position="top", large=True),
    TextBlock("每天一个健康小知识", position="bottom"),
]


def test_each_frame_gets_its_platforms_safe_area():
    assert safe_area(1360, 768) == YOUTUBE and frame_name(1360, 768) == "16:9"
    assert safe_area(768, 1360) == SHORTS and frame_name(768, 1360) == "9:16"
    # Shorts: the right-hand button column and the bottom caption area are out of bounds.
    x, y, w, h = safe_box(768, 1360)
    assert x + w <= round(768 * 0.85) and y + h <= round(1360 * 0.75) and y >= round(1360 * 0.12)


@pytest.mark.parametrize(("width", "height"), [(1360, 768), (768, 1360)])
def test_lines_stack_in_order_inside_the_safe_area_and_above_the_subtitles(width, height):
    subtitles_top = round(height * 0.8)
    lines = text_lines(SEED, width=width, height=height, subtitles_top=subtitles_top)
    assert [line.text for line in lines] == ["第12集", "老照片里的童年", "每天一个健康小知识"]
    index, title, desc = lines
    x, y, w, h = safe_box(width, height)
    assert index.top == y and index.top + index.line_height <= title.top
    assert title.font_size > index.font_size  # the title is the large line
    assert desc.top + desc.line_height <= min(subtitles_top, y + h)
    for line in lines:
        half = font(line.font_size, bold=False).getlength(line.text) / 2
        assert x <= line.center_x - half and line.center_x + half <= x + w


def test_a_long_latin_title_wraps_at_spaces_into_at_most_two_lines():
    title = "Seven habits that keep your heart young, explained by a cardiologist in plain words"
    lines = text_lines([TextBlock(title, large=True)], width=768, height=1360)
    assert 1 < len(lines) <= 2
    words = set(title.replace(",", " ").split())
    for line in lines:  # no word cut in the middle
        assert all(word.strip(",…") in words for word in line.text.split() if word.strip(",…"))
    assert " ".join(line.text for line in lines).rstrip("…").split()[0] == "Seven"


def test_text_too_long_for_two_lines_shrinks_then_ends_with_an_ellipsis():
    very_long = "很长的描述" * 40
    [first, second] = text_lines([TextBlock(very_long, position="bottom")], width=1360, height=768)
    assert second.text.endswith("…")
    assert first.font_size < round(768 * 0.048)  # shrunk before cutting


def test_top_lines_make_room_for_a_logo_in_a_top_corner():
    title = [TextBlock("一个相当长的标题，几乎占满整个画面的宽度，一直到边上", large=True)]
    free = text_lines(title, width=1360, height=768)
    logo = (1360 - 164 - 23, 23, 164, 62)  # top-right, 12 % wide
    beside = text_lines(title, width=1360, height=768, logo_box=logo)
    for line in beside:
        half = font(line.font_size, bold=False).getlength(line.text) / 2
        assert line.center_x + half < logo[0]
    assert len(beside) >= len(free)
    # A logo at the bottom leaves the top lines as they were.
    assert text_lines(title, width=1360, height=768, logo_box=(1173, 683, 164, 62)) == free


def test_empty_texts_have_no_lines():
    assert text_lines([TextBlock(""), TextBlock("  ", position="bottom")], width=1360, height=768) == []


def test_vertical_subtitles_sit_above_the_shorts_bottom_quarter_inside_its_safe_area():
    from media_engine import subtitles
    from media_engine.layout import safe_box

    for width, height in [(768, 1360), (720, 1280)]:
        style = subtitles.subtitle_style(
            width=width,
            height=height,
            font_size=None,
            font_family="Noto Sans CJK SC",
            primary_colour="#FFFFFF",
            background_colour="#000000",
            background_opacity=0.6,
        )
        x, y, w, h = subtitles.subtitle_area(width, height, style)
        sx, sy, sw, sh = safe_box(width, height)
        assert y >= sy and y + h <= sy + sh, ((x, y, w, h), (sx, sy, sw, sh))


# --- titles (issue 29: cut mid-word and smaller than the index in 9:16, a lone character in h2v) ---

SHORTS_LOGO = (561, 163, 92, 46)  # the demo logo's top-right box in a 768x1360 frame
YOUTUBE_LOGO = (1173, 23, 164, 62)
LONG_TITLE = "Why doctors say a glass of warm water every morning is the best habit since childhood"


def title_and_index(title: str, width: int, height: int, logo_box) -> tuple[list, list]:
    lines = text_lines(
        [TextBlock("第12集"), TextBlock(title, large=True)], width=width, height=height, logo_box=logo_box
    )
    return lines[:1], lines[1:]


@pytest.mark.parametrize(
    ("width", "height", "logo_box"), [(768, 1360, SHORTS_LOGO), (1360, 768, YOUTUBE_LOGO)]
)
@pytest.mark.parametrize(
    "title", [LONG_TITLE, LONG_TITLE + ", and what the studies since 1990 found", "喝温水的好处" * 6]
)
def test_the_title_is_the_larger_line_and_is_cut_only_between_words_at_its_smallest(
    width, height, logo_box, title
):
    [index], title_lines = title_and_index(title, width, height, logo_box)
    assert 1 <= len(title_lines) <= 2
    assert {line.font_size for line in title_lines} == {title_lines[0].font_size}
    assert title_lines[0].font_size > index.font_size  # "the larger title"
    shown = " ".join(line.text for line in title_lines)
    if shown.endswith("…"):
        # Cut only where it could not shrink further, and between words (CJK: characters).
        smallest = max(10, round(round(min(width, height) * LARGE_TEXT_SIZE_SHARE) * MIN_SHRINK))
        assert title_lines[0].font_size == smallest
        kept = shown.rstrip("…")
        assert title.replace(" ", "").startswith(kept.replace(" ", "")), shown
        if " " in title:
            words = title.replace(",", " ").split()
            assert all(word in words for word in kept.replace(",", " ").split()), shown
    else:
        assert shown.replace(" ", "") == title.replace(" ", "")


@pytest.mark.parametrize(
    ("width", "height", "logo_box"), [(768, 1360, SHORTS_LOGO), (1360, 768, YOUTUBE_LOGO)]
)
@pytest.mark.parametrize(
    "title",
    [
        "水对身体有很多好处",
        "人常说每天早上喝一杯温水对身体有很多好处",
        "老人常说每天早上喝一杯温水对身体有很多好处",
        "Warm water every morning: seven reasons it helps",
        "Seven habits that keep your heart young, explained by a cardiologist",
    ],
)
def test_a_wrapped_title_never_leaves_one_character_or_word_alone_on_its_last_line(
    width, height, logo_box, title
):
    _index, title_lines = title_and_index(title, width, height, logo_box)
    if len(title_lines) == 2 and not title_lines[-1].text.endswith("…"):
        last = title_lines[-1].text
        assert len(last.split()) > 1 if " " in title else len(last) > 1, [line.text for line in title_lines]
        # Balanced: the lines are of similar widths.
        widths = [font(line.font_size, bold=False).getlength(line.text) for line in title_lines]
        assert min(widths) > 0.5 * max(widths), [line.text for line in title_lines]
