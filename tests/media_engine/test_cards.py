import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media_engine.cards import fit_text, font, key_phrase, render_card
from media_engine.compose import cover_layout, make_cover
from media_engine.errors import MediaError
from media_engine.sentences import split_sentences
from media_engine.subtitles import wrap

PALETTE = ["#204060", "#c08040"]


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_card_is_a_png_of_the_requested_size(tmp_path):
    path = render_card("每天喝水", width=320, height=180, palette=PALETTE, out_path=tmp_path / "card.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (320, 180)
    vertical = render_card("每天喝水", width=180, height=320, palette=PALETTE, out_path=tmp_path / "v.png")
    with Image.open(vertical) as image:
        assert image.size == (180, 320)


def test_card_is_not_blank(tmp_path):
    card = pixels(
        render_card("每天喝水", width=320, height=180, palette=PALETTE, out_path=tmp_path / "c.png")
    )
    assert card.std() > 10
    # The gradient spans the palette: opposite corners differ clearly.
    assert np.abs(card[0, 0] - card[-1, -1]).sum() > 60 or np.abs(card[0, -1] - card[-1, 0]).sum() > 60


def test_chinese_text_is_drawn_in_the_middle(tmp_path):
    kwargs = {"width": 320, "height": 180, "palette": PALETTE, "seed": 7}
    with_text = pixels(render_card("老照片里的童年", out_path=tmp_path / "text.png", **kwargs))
    empty = pixels(render_card("", out_path=tmp_path / "empty.png", **kwargs))
    middle = (slice(60, 120), slice(60, 260))
    difference = np.abs(with_text[middle] - empty[middle]).sum(axis=2)
    assert (difference > 100).mean() > 0.05  # a good share of the centre is covered by glyphs
    # White glyphs: the text pixels are bright.
    assert with_text[middle].max() >= 240


def test_empty_palette_uses_the_default(tmp_path):
    card = pixels(render_card("Hello world", width=160, height=90, palette=[], out_path=tmp_path / "d.png"))
    assert card.std() > 10


def test_same_seed_same_card_and_seeds_vary_the_gradient(tmp_path):
    kwargs = {"width": 160, "height": 90, "palette": PALETTE}
    a = pixels(render_card("喝水", out_path=tmp_path / "a.png", seed=1, **kwargs))
    b = pixels(render_card("喝水", out_path=tmp_path / "b.png", seed=1, **kwargs))
    assert np.array_equal(a, b)
    others = [
        pixels(render_card("喝水", out_path=tmp_path / f"s{s}.png", seed=s, **kwargs)) for s in range(2, 6)
    ]
    assert any(not np.array_equal(a, other) for other in others)


def test_key_phrase_is_the_first_clause_trimmed():
    assert key_phrase("每天早上喝一杯温水，可以帮助身体排毒。") == "每天早上喝一杯温水"
    assert len(key_phrase("这是一个非常非常非常非常长的没有任何标点符号的句子")) == 16
    assert key_phrase("Drinking warm water every single morning helps, they say.") == (
        "Drinking warm water every single morning"
    )
    assert key_phrase("  \n第一句。第二句") == "第一句"


def test_wrapping_fits_the_measured_width():
    text_font = font(32)
    lines = wrap("每天早上喝一杯温水可以帮助身体排毒还能改善皮肤", font=text_font, max_width_px=200)
    assert len(lines) > 1
    assert all(text_font.getlength(line) <= 200 for line in lines)
    assert "".join(lines) == "每天早上喝一杯温水可以帮助身体排毒还能改善皮肤"
    # Closing punctuation never starts a line.
    assert not any(
        line.startswith(("，", "。"))
        for line in wrap("一二三四五六，七八九。", font=text_font, max_width_px=96)
    )


def test_bad_colour_is_an_error(tmp_path):
    with pytest.raises(MediaError, match="colour"):
        render_card("x", width=32, height=32, palette=["#zzzzzz"], out_path=tmp_path / "x.png")


# --- word boundaries and covers -----------------------------------------------------------------

LATIN_WORD = re.compile(r"[A-Za-z0-9'’-]+")


def words_kept_whole(lines: list[str], text: str) -> bool:
    """Every Latin word of `text` appears whole on one line."""
    return sorted(LATIN_WORD.findall(" ".join(lines))) == sorted(LATIN_WORD.findall(text))


def test_key_phrase_of_mixed_text_never_ends_inside_a_word():
    """A headline with a CJK word in it was cut at 16 characters: "Today we talk ab"."""
    phrase = key_phrase("Today we talk about 睡眠 and why it matters so much")
    assert phrase.startswith("Today we talk about")
    assert words_kept_whole([phrase], "Today we talk about 睡眠 and why it matters so much"[: len(phrase)])
    assert key_phrase("今天我们聊一聊Vitamin D的好处和坏处还有很多别的事情").startswith(
        "今天我们聊一聊Vitamin D"
    )


@pytest.mark.parametrize(("width", "height"), [(1360, 768), (768, 1360)])
@pytest.mark.parametrize(
    "text",
    [
        "Understanding cardiovascular inflammation: what everybody should know",
        "Today we talk about sleeping well, eating slowly and walking daily",
        "每天早上喝一杯温水可以帮助身体排毒还能改善皮肤",
    ],
)
def test_card_and_cover_lines_break_at_word_boundaries(text, width, height):
    text_font, lines = fit_text(
        key_phrase(text),
        max_width=width * 0.84,
        max_height=height * 0.6,
        start_size=max(12, round(min(width, height) / 6)),
    )
    assert all(text_font.getlength(line) <= width * 0.84 for line in lines)
    assert words_kept_whole(lines, key_phrase(text))
    layout = cover_layout(text, width=width, height=height)
    assert words_kept_whole(layout.lines, text)
    assert "".join(layout.lines).replace(" ", "") == text.replace(" ", "")


def test_a_word_wider_than_the_line_is_the_only_thing_cut():
    text_font = font(48)
    lines = wrap("a Pneumonoultramicroscopicsilicovolcanoconiosis case", font=text_font, max_width_px=400)
    assert lines[0] == "a"
    assert all(text_font.getlength(line) <= 400 for line in lines)
    assert len(lines) >= 3 and lines[-1].endswith(" case")
    assert "".join(lines).replace(" ", "") == "aPneumonoultramicroscopicsilicovolcanoconiosiscase"


@pytest.mark.parametrize(("width", "height"), [(1360, 768), (768, 1360)])
@pytest.mark.parametrize(
    "title",
    [
        "Seven habits that keep your heart healthy after sixty, explained simply by a cardiologist",
        "每天早上一杯温水，坚持一个月以后身体会发生什么变化？医生告诉你答案",
    ],
)
def test_cover_title_lines_do_not_overlap_and_stay_in_the_safe_area(tmp_path, title, width, height):
    layout = cover_layout(title, width=width, height=height)
    assert 1 <= len(layout.lines) <= (4 if height > width else 3)
    for upper, lower in zip(layout.boxes, layout.boxes[1:]):
        assert upper[3] <= lower[1], "two title lines overlap"
    for x0, y0, x1, y1 in layout.boxes:
        assert width * 0.05 <= x0 and x1 <= width * 0.95
        assert height * 0.05 <= y0 and y1 <= height * (0.8 if height > width else 0.95)
        assert layout.band[0] <= y0 and y1 <= layout.band[1]


@pytest.mark.parametrize(("width", "height"), [(1360, 768), (768, 1360)])
def test_cover_over_a_card_shows_the_title_as_its_only_text(tmp_path, width, height):
    """The cover used to put its title over the card's own big phrase; now the card comes without it."""
    background = render_card(
        "", width=width, height=height, palette=PALETTE, out_path=tmp_path / "bg.png", seed=3
    )
    title = "Seven habits that keep your heart healthy after sixty"
    cover = pixels(make_cover(background, title, tmp_path / "cover.jpg", width=width, height=height))
    card = pixels(background)
    layout = cover_layout(title, width=width, height=height)
    top, bottom = layout.band
    feather = (bottom - top) * 0.35 + 2
    outside = np.ones((height, width), dtype=bool)
    outside[max(0, int(top - feather)) : int(bottom + feather) + 1] = False
    # Outside the title band the cover is the picture itself (JPEG noise aside): no other text.
    assert np.abs(cover[outside] - card[outside]).max() < 24
    # Inside it the title is drawn: bright glyph pixels in every line's box.
    for x0, y0, x1, y1 in layout.boxes:
        assert (cover[y0:y1, x0:x1].min(axis=2) > 220).sum() > 50


# --- headlines of real articles -----------------------------------------------------------------

ARTICLES = Path(__file__).resolve().parents[1] / "data" / "articles"


@pytest.mark.parametrize(
    ("text", "headline"),
    [
        # The cards: "WASHINGTO / N (AP) — U" and "groceries rose 0".
        ("WASHINGTON (AP) — U.S. consumer prices rose 0.4% in December.", "WASHINGTON (AP)"),
        ("Groceries rose 0.5 percent in a single month, the survey found.", "Groceries rose 0.5 percent"),
        ("The U.S. economy grew.", "The U.S. economy grew"),
        (
            "Federal Reserve Chair Dr. Jerome H. Powell told reporters that rates were high.",
            "Federal Reserve Chair Dr. Jerome H. Powell",
        ),
        ("Rates held at 5.25% were still restrictive, she said.", "Rates held at 5.25% were still"),
        ("La inflación subió al 2,5% en diciembre de 2023.", "La inflación subió al 2,5%"),
        ("12月份居民消费价格同比上涨3.5%，涨幅扩大。", "12月份居民消费价格同比上涨"),
    ],
)
def test_headline_is_whole_words_of_the_segment_never_cut_at_a_period(text, headline):
    assert key_phrase(text) == headline


@pytest.mark.parametrize("name", ["news_en", "howto_en", "news_zh", "news_es"])
@pytest.mark.parametrize(("width", "height"), [(1360, 768), (768, 1360)])
def test_cards_never_end_inside_a_word(name, width, height):
    for sentence in split_sentences((ARTICLES / f"{name}.txt").read_text(encoding="utf-8")):
        phrase = key_phrase(sentence)
        assert phrase and sentence.replace(" ", "").startswith(phrase.replace(" ", "")[:1])
        assert phrase in sentence
        after = sentence[sentence.index(phrase) + len(phrase) :][:1]
        # The headline ends where a word ends: at a space, punctuation or a CJK character.
        assert not (after.isalnum() and phrase[-1].isalnum() and after.isascii() and phrase[-1].isascii())
        _font, lines = fit_text(
            phrase,
            max_width=width * 0.84,
            max_height=height * 0.6,
            start_size=max(12, round(min(width, height) / 6)),
        )
        assert words_kept_whole(lines, phrase), lines
