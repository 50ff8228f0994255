import numpy as np
import pytest
from PIL import Image

from media_engine.cards import font, key_phrase, render_card, wrap_text
from media_engine.errors import MediaError

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
    card = pixels(render_card("每天喝水", width=320, height=180, palette=PALETTE, out_path=tmp_path / "c.png"))
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
    others = [pixels(render_card("喝水", out_path=tmp_path / f"s{s}.png", seed=s, **kwargs))
              for s in range(2, 6)]
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
    lines = wrap_text("每天早上喝一杯温水可以帮助身体排毒还能改善皮肤", text_font, 200)
    assert len(lines) > 1
    assert all(text_font.getlength(line) <= 200 for line in lines)
    assert "".join(lines) == "每天早上喝一杯温水可以帮助身体排毒还能改善皮肤"
    # Closing punctuation never starts a line.
    assert not any(line.startswith(("，", "。")) for line in wrap_text("一二三四五六，七八九。", text_font, 96))


def test_bad_colour_is_an_error(tmp_path):
    with pytest.raises(MediaError, match="colour"):
        render_card("x", width=32, height=32, palette=["#zzzzzz"], out_path=tmp_path / "x.png")
