import dataclasses
import re

import numpy as np
import pytest
from PIL import Image

from accounts.brand import Brand
from media_engine import ffmpeg, fonts, subtitles
from media_engine.errors import MediaError
from media_engine.sentences import TimedSentence
from media_engine.subtitles import Cue, SubtitleStyle, make_cues, write_ass, write_srt

FONT_PATH = fonts.default_font_path()
FONT_SIZE = 35
LONG_CHINESE = (
    "今天的天气非常好，我们一起去公园散步，看看湖边的风景，再去吃一顿美味的午饭，"
    "然后回家好好休息，晚上再一起看一部电影，聊聊这一周发生的事情。"
)


def style_from_brand(extra: dict, *, width: int, height: int) -> SubtitleStyle:
    """The style the render draws for an account whose brand profile is `extra`."""
    return Brand.from_extra(extra).subtitle_style(width=width, height=height)


def measure(line: str) -> float:
    return subtitles._font(FONT_PATH, FONT_SIZE).getlength(line)


def test_measuring_face_is_the_family_libass_draws():
    assert subtitles._font(FONT_PATH, FONT_SIZE).getname()[0] == fonts.FAMILY


def cues_for(sentences, max_width_px=300, max_lines=2):
    return make_cues(
        sentences, font_path=FONT_PATH, font_size=FONT_SIZE, max_width_px=max_width_px, max_lines=max_lines
    )


def parse_srt(text: str) -> list[tuple[int, int, list[str]]]:
    cues = []
    for block in text.strip().split("\n\n"):
        _, times, *lines = block.split("\n")
        start, end = (
            int(h) * 3_600_000 + int(m) * 60_000 + int(s) * 1000 + int(ms)
            for h, m, s, ms in re.findall(r"(\d\d):(\d\d):(\d\d),(\d\d\d)", times)
        )
        cues.append((start, end, lines))
    return cues


def parse_ass_events(text: str) -> list[tuple[int, int, list[str]]]:
    def ms(stamp: str) -> int:
        h, m, s, cs = re.fullmatch(r"(\d+):(\d\d):(\d\d)\.(\d\d)", stamp).groups()
        return int(h) * 3_600_000 + int(m) * 60_000 + int(s) * 1000 + int(cs) * 10

    events = []
    for line in text.splitlines():
        if line.startswith("Dialogue:"):
            fields = line.removeprefix("Dialogue:").strip().split(",", 9)
            events.append((ms(fields[1]), ms(fields[2]), fields[9].split(r"\N")))
    return events


def ass_style(text: str) -> dict[str, str]:
    """The Default style of an ASS file as {field name: value}."""
    lines = text.splitlines()
    header = lines[lines.index("[V4+ Styles]") + 1]
    row = lines[lines.index("[V4+ Styles]") + 2]
    names = [name.strip() for name in header.split(":", 1)[1].split(",")]
    return dict(zip(names, row.split(":", 1)[1].strip().split(",")))


# --- wrapping -----------------------------------------------------------------------------


def test_chinese_lines_never_exceed_the_measured_width():
    cues = cues_for([TimedSentence(LONG_CHINESE, 0, 9000)], max_width_px=300)
    lines = [line for cue in cues for line in cue.lines]
    assert all(measure(line) <= 300 for line in lines)
    assert "".join(lines) == LONG_CHINESE
    # Lines are filled, not cut early: all but each cue's last line hold at least 7 characters.
    assert min(len(cue.lines[0]) for cue in cues if len(cue.lines) > 1) >= 7


def test_no_line_starts_with_closing_punctuation():
    text = "一二三四五六七八，一二三四五六七八。一二三四五六七八！一二三四五六七八？"
    cues = cues_for([TimedSentence(text, 0, 4000)], max_width_px=FONT_SIZE * 8 + 1, max_lines=10)
    lines = [line for cue in cues for line in cue.lines]
    assert len(lines) > 1
    assert all(line[0] not in "，。！？" for line in lines)
    assert all(measure(line) <= FONT_SIZE * 8 + 1 for line in lines)


def test_latin_text_breaks_between_words():
    text = "The quick brown fox jumps over the lazy dog and keeps running through the field."
    cues = cues_for([TimedSentence(text, 0, 4000)], max_width_px=250, max_lines=10)
    lines = [line for cue in cues for line in cue.lines]
    assert len(lines) > 1
    assert " ".join(lines) == text
    assert all(measure(line) <= 250 for line in lines)


def test_quotes_stay_with_the_word_they_enclose():
    text = 'He said "hello there" and left, then came back (twice) later today.'
    cues = cues_for([TimedSentence(text, 0, 4000)], max_width_px=130, max_lines=20)
    lines = [line for cue in cues for line in cue.lines]
    assert " ".join(lines) == text
    assert not any(line.endswith(('"', "(")) and len(line) > 1 and line[-2] == " " for line in lines)
    assert not any(line.startswith(('"', ")")) and line[1:2] == " " for line in lines)


def test_a_word_wider_than_a_line_is_hard_split():
    word = "Pneumonoultramicroscopicsilicovolcanoconiosis"
    cues = cues_for([TimedSentence(word, 0, 1000)], max_width_px=200, max_lines=10)
    lines = [line for cue in cues for line in cue.lines]
    assert "".join(lines) == word
    assert all(measure(line) <= 200 for line in lines)


def test_each_cue_has_at_most_max_lines():
    cues = cues_for([TimedSentence(LONG_CHINESE, 0, 9000)], max_width_px=300, max_lines=2)
    assert len(cues) > 1
    assert all(1 <= len(cue.lines) <= 2 for cue in cues)


def test_a_long_sentence_becomes_consecutive_cues_that_tile_its_time():
    sentence = TimedSentence(LONG_CHINESE, 1230, 9870)
    cues = cues_for([sentence], max_width_px=300)
    assert cues[0].start_ms == sentence.start_ms
    assert cues[-1].end_ms == sentence.end_ms
    for current, following in zip(cues, cues[1:]):
        assert current.end_ms == following.start_ms
    # Time is shared by character count.
    span = sentence.end_ms - sentence.start_ms
    for cue in cues:
        share = sum(len(line) for line in cue.lines) / len(LONG_CHINESE)
        assert abs((cue.end_ms - cue.start_ms) - span * share) <= 2


def test_a_short_sentence_is_one_cue_with_its_own_times():
    cues = cues_for([TimedSentence("你好。", 0, 800), TimedSentence("再见。", 1050, 2000)])
    assert cues == [Cue(0, 800, ["你好。"]), Cue(1050, 2000, ["再见。"])]


# --- files --------------------------------------------------------------------------------


SENTENCES = [
    TimedSentence("今天天气很好。", 0, 2603),
    TimedSentence(LONG_CHINESE, 2853, 12007),
    TimedSentence("Good {night} \\N.", 12257, 13001),
]


def test_srt_parses_back_with_sentence_times(tmp_path):
    cues = cues_for(SENTENCES, max_width_px=400)
    write_srt(cues, tmp_path / "narration.srt")
    parsed = parse_srt((tmp_path / "narration.srt").read_text(encoding="utf-8"))
    assert parsed == [(cue.start_ms, cue.end_ms, cue.lines) for cue in cues]
    starts = {start for start, _, _ in parsed}
    assert {s.start_ms for s in SENTENCES} <= starts
    assert parsed[-1][1] == SENTENCES[-1].end_ms


def test_ass_parses_back_with_starts_never_before_the_sentence(tmp_path):
    style = style_from_brand({}, width=1360, height=768)
    cues = cues_for(SENTENCES, max_width_px=400)
    write_ass(cues, tmp_path / "narration.ass", width=1360, height=768, style=style)
    text = (tmp_path / "narration.ass").read_text(encoding="utf-8")
    assert "PlayResX: 1360" in text and "PlayResY: 768" in text
    events = parse_ass_events(text)
    assert len(events) == len(cues)
    for (start, end, _), cue in zip(events, cues):
        assert 0 <= start - cue.start_ms < 10
        assert 0 <= end - cue.end_ms < 10
    for sentence in SENTENCES:
        assert any(0 <= start - sentence.start_ms < 10 for start, _, _ in events)


def test_ass_escapes_braces_and_backslashes(tmp_path):
    style = style_from_brand({}, width=1360, height=768)
    cues = [Cue(0, 1000, ["Good {night} \\N.", "二"])]
    write_ass(cues, tmp_path / "a.ass", width=1360, height=768, style=style)
    event = (tmp_path / "a.ass").read_text(encoding="utf-8").splitlines()[-1]
    assert event.endswith(r"Good \{night\} ＼N.\N二")


def test_brand_background_becomes_an_opaque_ass_box_colour(tmp_path):
    brand = {"subtitle_background": "#578B2E", "subtitle_color": "#FFEE00"}
    style = style_from_brand(brand, width=1360, height=768)
    write_ass([Cue(0, 1000, ["你好"])], tmp_path / "a.ass", width=1360, height=768, style=style)
    fields = ass_style((tmp_path / "a.ass").read_text(encoding="utf-8"))
    assert fields["BackColour"] == "&H002E8B57"
    assert fields["PrimaryColour"] == "&H0000EEFF"
    # One box behind the whole cue (libass's BorderStyle 4), padded by Shadow: no glyph outline.
    assert (fields["BorderStyle"], fields["Outline"], fields["Shadow"]) == ("4", "0", str(style.outline))
    assert fields["Fontname"] == fonts.FAMILY


def test_ass_colour_encodes_opacity_as_inverted_alpha():
    assert subtitles.ass_colour("#578B2E") == "&H002E8B57"
    assert subtitles.ass_colour("#000000", opacity=0.6) == "&H66000000"
    with pytest.raises(MediaError, match="green"):
        subtitles.ass_colour("green")


def test_brand_defaults_are_readable_in_both_orientations():
    for width, height in [(1360, 768), (768, 1360)]:
        style = style_from_brand({}, width=width, height=height)
        assert 30 <= style.font_size <= 40
        # At least 15 Chinese characters fit on a line, inside the 5% safe area.
        assert subtitles.safe_text_width(width, style) >= 15 * style.font_size
        x, y, w, h = subtitles.subtitle_area(width, height, style)
        assert x >= width * 0.05 and x + w <= width * 0.95
        assert y >= height * 0.05 and y + h <= height * 0.95


def test_brand_font_size_and_bad_colour():
    assert style_from_brand({"subtitle_font_size": "48"}, width=1360, height=768).font_size == 48
    with pytest.raises(MediaError, match="#12"):
        style_from_brand({"subtitle_background": "#12"}, width=1360, height=768)


def overlaps(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_a_logo_in_the_subtitle_band_lifts_the_band_above_it():
    style = style_from_brand({}, width=1360, height=768)
    band = subtitles.subtitle_area(1360, 768, style)
    logo = (1160, 620, 160, 120)
    assert overlaps(band, logo)
    lifted = subtitles.subtitle_area(1360, 768, style, logo)
    assert not overlaps(lifted, logo)
    assert lifted[1] + lifted[3] <= logo[1]
    assert lifted[1] >= 768 * 0.05
    assert subtitles.safe_text_width(1360, style, logo) == subtitles.safe_text_width(1360, style)


def test_a_logo_too_tall_to_lift_the_band_above_is_an_error():
    style = style_from_brand({}, width=1360, height=768)
    with pytest.raises(MediaError, match=r"logo at \(1200, 60, 120, 680\)"):
        subtitles.subtitle_area(1360, 768, style, (1200, 60, 120, 680))


def test_a_logo_away_from_the_band_changes_nothing():
    style = style_from_brand({}, width=768, height=1360)
    logo = (40, 40, 120, 120)
    assert subtitles.subtitle_area(768, 1360, style, logo) == subtitles.subtitle_area(768, 1360, style)


@pytest.mark.parametrize(("width", "height"), [(1360, 768), (768, 1360)])
def test_libass_burns_the_subtitles_inside_the_safe_area_and_clear_of_the_logo(tmp_path, width, height):
    logo = (width - 200, height - 170, 160, 130)  # bottom-right corner, inside the default band
    style = style_from_brand({"subtitle_background": "#578B2E"}, width=width, height=height)
    max_width = subtitles.safe_text_width(width, style, logo)
    cues = make_cues(
        [TimedSentence(LONG_CHINESE, 0, 2000)],
        font_path=FONT_PATH,
        font_size=style.font_size,
        max_width_px=max_width,
    )
    ass_path = tmp_path / "subtitles.ass"
    # The widest case, a full two-line box, shown for the whole clip.
    write_ass(
        [dataclasses.replace(cues[0], start_ms=0, end_ms=2000)],
        ass_path,
        width=width,
        height=height,
        style=style,
        logo_box=logo,
    )
    assert len(cues[0].lines) == 2

    video_path, frame_path = tmp_path / "burned.mp4", tmp_path / "frame.png"
    ffmpeg.run(
        [
            "-f",
            "lavfi",
            "-i",
            f"color=black:s={width}x{height}:r=5:d=2",
            "-filter_complex",
            f"[0:v]ass=filename={ass_path},split=2[video][still];[still]select='eq(n,5)'[frame]",
            "-map",
            "[video]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            video_path,
            "-map",
            "[frame]",
            "-frames:v",
            "1",
            "-update",
            "1",
            frame_path,
        ],
        timeout=120,
    )
    assert abs(ffmpeg.duration(video_path) - 2.0) < 0.3

    pixels = np.asarray(Image.open(frame_path).convert("RGB")).astype(int)
    drawn = pixels.sum(axis=2) > 30
    ys, xs = np.nonzero(drawn)
    assert len(xs) > 1000, "libass drew no subtitles"
    # Everything drawn stays inside the 5% safe area ...
    assert xs.min() >= width * 0.05 - 1 and xs.max() <= width * 0.95 + 1
    assert ys.min() >= height * 0.05 - 1 and ys.max() <= height * 0.95 + 1
    # ... and off the logo.
    x, y, w, h = logo
    assert not drawn[y : y + h, x : x + w].any()
    # The box carries the brand colour.
    green = np.all(np.abs(pixels - [0x57, 0x8B, 0x2E]) < 6, axis=2)
    assert green.sum() > 1000


def test_vertical_cues_keep_out_of_the_shorts_button_column(tmp_path):
    """A 9:16 frame's cues stay inside the Shorts safe area (15 % clear on the right, where the like,
    comment and share buttons are), as its text lines do; a long URL is the widest cue there is."""
    from media_engine import layout

    width, height = 768, 1360
    style = style_from_brand({}, width=width, height=height)
    url = "Read more at https://www.example.com/health/articles/2024/why-walking-after-dinner-helps-sleep"
    cues = make_cues(
        [TimedSentence(url, 0, 2000)],
        font_path=FONT_PATH,
        font_size=style.font_size,
        max_width_px=subtitles.safe_text_width(width, style, height=height),
    )
    ass_path = tmp_path / "subtitles.ass"
    write_ass(
        [dataclasses.replace(cues[0], start_ms=0, end_ms=2000)],
        ass_path,
        width=width,
        height=height,
        style=style,
    )
    frame_path = tmp_path / "frame.png"
    ffmpeg.run(
        [
            "-f",
            "lavfi",
            "-i",
            f"color=black:s={width}x{height}:r=5:d=1",
            "-vf",
            f"ass=filename={ass_path}",
            "-frames:v",
            "1",
            "-update",
            "1",
            frame_path,
        ],
        timeout=60,
    )

    drawn = np.asarray(Image.open(frame_path).convert("RGB")).astype(int).sum(axis=2) > 30
    _ys, xs = np.nonzero(drawn)
    left, _top, safe_width, _safe_height = layout.safe_box(width, height)
    assert len(xs) > 1000, "libass drew no subtitles"
    assert xs.min() >= left - 1 and xs.max() <= left + safe_width + 1, (xs.min(), xs.max())
    assert (
        subtitles.subtitle_area(width, height, style)[0] + subtitles.subtitle_area(width, height, style)[2]
        <= left + safe_width
    )
