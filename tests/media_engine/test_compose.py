"""compose.render on tiny real inputs (320x180, 2 s), checked with ffprobe and decoded frames."""

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from media_engine import compose, ffmpeg
from media_engine.compose import (
    Plan,
    Visual,
    extract_frame,
    logo_box,
    make_cover,
    pick_transitions,
    render,
    still_motion,
)
from media_engine.errors import Cancelled, MediaError
from media_engine.fonts import FAMILY
from media_engine.layout import TextBlock, safe_box, text_lines

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 320, 180
NARRATION_S = 2.0


# ---------------------------------------------------------------- inputs


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("compose-assets")
    files = {
        "narration": folder / "narration.wav",
        "music": folder / "music.wav",
        "clip": folder / "clip.mp4",
        "logo": folder / "logo.png",
        "subtitles": folder / "subtitles.ass",
    }
    ffmpeg.run(
        [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=24000:duration={NARRATION_S}",
            "-ac",
            "1",
            str(files["narration"]),
        ]
    )
    ffmpeg.run(
        [
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1500:sample_rate=44100:duration=0.7",
            "-ac",
            "2",
            str(files["music"]),
        ]
    )
    # A 0.5 s moving test pattern: shorter than any segment it is used for.
    ffmpeg.run(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=30:duration=0.5",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            str(files["clip"]),
        ]
    )
    for index, colour in enumerate([(200, 60, 40), (40, 140, 200), (60, 180, 90)]):
        files[f"still{index}"] = _textured_still(folder / f"still{index}.png", colour)
    Image.new("RGBA", (64, 32), (255, 0, 255, 255)).save(files["logo"])
    files["subtitles"].write_text(_ass(WIDTH, HEIGHT, "字幕测试 subtitle"), encoding="utf-8")
    return files


def _textured_still(path: Path, colour: tuple[int, int, int]) -> Path:
    """Blocks and lines, so panning and cross-fades change pixels."""
    image = Image.new("RGB", (400, 240), colour)
    draw = ImageDraw.Draw(image)
    for x in range(0, 400, 40):
        for y in range(0, 240, 40):
            if (x + y) // 40 % 2:
                draw.rectangle((x, y, x + 39, y + 39), fill=tuple(255 - c for c in colour))
    draw.line((0, 0, 399, 239), fill="white", width=5)
    image.save(path)
    return path


def _ass(width: int, height: int, text: str) -> str:
    return (
        f"[Script Info]\nScriptType: v4.00+\nPlayResX: {width}\nPlayResY: {height}\n\n"
        "[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, "
        "Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"Style: Default,{FAMILY},26,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,"
        "3,2,0,2,10,10,10,1\n\n"
        "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        f"Dialogue: 0,0:00:00.00,0:00:02.00,Default,,0,0,0,,{text}\n"
    )


def base_plan(assets, **changes) -> Plan:
    visuals = [
        Visual(assets["still0"], "still", 0, 700),
        Visual(assets["still1"], "still", 700, 1400),
        Visual(assets["still2"], "still", 1400, 2000),
    ]
    plan = Plan(
        width=WIDTH,
        height=HEIGHT,
        visuals=visuals,
        narration_path=assets["narration"],
        transitions=("fade", "fade"),
        preset="ultrafast",
        crf=18,
    )
    if "visuals" in changes:  # a fade at every join of the given visuals, unless said otherwise
        changes.setdefault("transitions", ("fade",) * (len(changes["visuals"]) - 1))
    return replace(plan, **changes)


@pytest.fixture(scope="module")
def plain_video(assets, tmp_path_factory) -> Path:
    return render(base_plan(assets), tmp_path_factory.mktemp("plain") / "plain.mp4").path


# ---------------------------------------------------------------- helpers


def video_stream(path: Path) -> dict:
    return next(s for s in ffmpeg.probe(path)["streams"] if s["codec_type"] == "video")


def frame(video: Path, at_s: float, tmp_path: Path) -> np.ndarray:
    image_path = extract_frame(video, at_s, tmp_path / f"{video.stem}-{at_s:.2f}.png")
    with Image.open(image_path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def audio_samples(video: Path, tmp_path: Path) -> np.ndarray:
    raw = tmp_path / f"{video.stem}.s16"
    ffmpeg.run(["-i", str(video), "-map", "0:a", "-ac", "1", "-ar", "16000", "-f", "s16le", str(raw)])
    return np.fromfile(raw, dtype=np.int16).astype(np.float64)


def ffmpeg_children() -> list[int]:
    """ffmpeg processes whose parent is this test process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == os.getpid() and name == "ffmpeg":
            found.append(int(entry.name))
    return found


# ---------------------------------------------------------------- the output


def test_duration_equals_the_narration(plain_video):
    assert abs(ffmpeg.duration(plain_video) - NARRATION_S) <= 0.1


def test_output_is_h264_yuv420p_with_aac_at_the_plan_fps(assets, tmp_path):
    video = render(base_plan(assets, fps=25), tmp_path / "out.mp4").path
    streams = ffmpeg.probe(video)["streams"]
    picture = next(s for s in streams if s["codec_type"] == "video")
    assert picture["codec_name"] == "h264"
    assert picture["pix_fmt"] == "yuv420p"
    assert picture["r_frame_rate"] == "25/1"
    assert int(picture["nb_frames"]) == 50
    assert [s["codec_name"] for s in streams if s["codec_type"] == "audio"] == ["aac"]


@pytest.mark.parametrize(("width", "height"), [(320, 180), (180, 320)])
def test_resolution_follows_the_orientation(assets, tmp_path, width, height):
    video = render(base_plan(assets, width=width, height=height), tmp_path / "out.mp4").path
    stream = video_stream(video)
    assert (stream["width"], stream["height"]) == (width, height)
    assert abs(ffmpeg.duration(video) - NARRATION_S) <= 0.1


@pytest.mark.parametrize(
    "transitions", [(), ("none", "none"), ("fade", "fade"), ("wipeleft", "fade"), ("none", "wipeleft")]
)
def test_transitions_keep_the_duration(assets, tmp_path, transitions):
    video = render(base_plan(assets, transitions=transitions), tmp_path / "out.mp4").path
    assert abs(ffmpeg.duration(video) - NARRATION_S) <= 0.1
    assert int(video_stream(video)["nb_frames"]) == round(NARRATION_S * 30)


def test_fade_blends_the_two_segments_at_their_boundary(assets, plain_video, tmp_path):
    cut = render(base_plan(assets, transitions=()), tmp_path / "cut.mp4").path
    # At the boundary (0.7 s) a hard cut already shows segment 2; the fade shows a mix.
    faded, hard = frame(plain_video, 0.7, tmp_path), frame(cut, 0.7, tmp_path)
    assert np.abs(faded - hard).mean() > 10


def test_each_join_has_its_own_transition(assets, plain_video, tmp_path):
    """A cut at the first join (0.7 s), a fade at the second (1.4 s)."""
    cut = render(base_plan(assets, transitions=()), tmp_path / "cut.mp4").path
    mixed = render(base_plan(assets, transitions=("none", "fade")), tmp_path / "mixed.mp4").path
    assert np.abs(frame(mixed, 0.7, tmp_path) - frame(cut, 0.7, tmp_path)).mean() < 2
    assert np.abs(frame(mixed, 1.4, tmp_path) - frame(cut, 1.4, tmp_path)).mean() > 10
    assert np.abs(frame(mixed, 1.4, tmp_path) - frame(plain_video, 1.4, tmp_path)).mean() < 2


def test_transitions_are_picked_reproducibly_and_never_twice_in_a_row():
    names = ("fade", "wipeleft", "circleopen")
    picked = pick_transitions(names, 40, seed=7)
    assert picked == pick_transitions(names, 40, seed=7)  # the same job gets the same video
    assert picked != pick_transitions(names, 40, seed=8)
    assert set(picked) == set(names)  # every listed transition is used, not only the first
    assert all(a != b for a, b in zip(picked, picked[1:]))
    assert pick_transitions(("fade",), 3, seed=1) == ("fade", "fade", "fade")
    assert pick_transitions((), 2, seed=1) == ("none", "none")


def test_unknown_or_miscounted_transitions_are_refused(assets, tmp_path):
    with pytest.raises(MediaError, match="unknown transition 'spin'"):
        render(base_plan(assets, transitions=("fade", "spin")), tmp_path / "out.mp4")
    with pytest.raises(MediaError, match="1 transitions for 2 joins"):
        render(base_plan(assets, transitions=("fade",)), tmp_path / "out.mp4")


def test_stills_move(plain_video, tmp_path):
    # Ken Burns inside the first segment: same picture, shifted.
    early, late = frame(plain_video, 0.0, tmp_path), frame(plain_video, 0.4, tmp_path)
    assert np.abs(early - late).mean() > 5


# ---------------------------------------------------------------- overlays and audio


def test_logo_lands_in_its_corner(assets, plain_video, tmp_path):
    plan = base_plan(assets, logo_path=assets["logo"], logo_corner="top-right")
    video = render(plan, tmp_path / "logo.mp4").path
    x, y, w, h = logo_box(plan)
    assert x + w < WIDTH and y > 0 and w == round(WIDTH * plan.logo_scale / 2) * 2
    with_logo, without = frame(video, 1.0, tmp_path), frame(plain_video, 1.0, tmp_path)
    inside = np.abs(with_logo[y : y + h, x : x + w] - without[y : y + h, x : x + w]).mean()
    opposite = np.abs(with_logo[-h:, :w] - without[-h:, :w]).mean()
    assert inside > 40
    assert opposite < 8
    # Magenta: strong red and blue, little green.
    red, green, blue = with_logo[y + h // 2, x + w // 2]
    assert red > 180 and blue > 180 and green < 90


def test_subtitles_are_burned_into_the_bottom_band(assets, plain_video, tmp_path):
    video = render(base_plan(assets, subtitles_path=assets["subtitles"]), tmp_path / "subs.mp4").path
    with_subs, without = frame(video, 1.0, tmp_path), frame(plain_video, 1.0, tmp_path)
    bottom = np.abs(with_subs[HEIGHT - 50 :] - without[HEIGHT - 50 :]).mean()
    top = np.abs(with_subs[:50] - without[:50]).mean()
    assert bottom > 10
    assert top < 3


def test_text_with_special_characters_is_drawn_as_written(assets, plain_video, tmp_path):
    texts = [TextBlock("标题: it's 100% \\ done; [ok], {x}", position="top")]
    video = render(base_plan(assets, texts=texts), tmp_path / "texts.mp4").path
    with_text, without = frame(video, 1.0, tmp_path), frame(plain_video, 1.0, tmp_path)
    assert np.abs(with_text[:45] - without[:45]).mean() > 5


def test_music_is_mixed_under_the_voice(assets, plain_video, tmp_path):
    video = render(base_plan(assets, music_path=assets["music"]), tmp_path / "music.mp4").path
    mixed, voice = audio_samples(video, tmp_path), audio_samples(plain_video, tmp_path)
    length = min(len(mixed), len(voice))
    mixed, voice = mixed[:length], voice[:length]
    assert np.abs(mixed - voice).mean() > 50
    # The voice stays the dominant part of the mix.
    assert np.corrcoef(mixed, voice)[0, 1] > 0.8
    assert abs(ffmpeg.duration(video) - NARRATION_S) <= 0.1


# ---------------------------------------------------------------- clips and h2v


def test_short_clip_is_looped_to_fill_its_segment(assets, tmp_path):
    visuals = [Visual(assets["clip"], "clip", 0, 2000)]
    video = render(base_plan(assets, visuals=visuals), tmp_path / "clip.mp4").path
    assert abs(ffmpeg.duration(video) - NARRATION_S) <= 0.1
    first, moved = frame(video, 0.2, tmp_path), frame(video, 0.4, tmp_path)
    looped, looped_again = frame(video, 0.7, tmp_path), frame(video, 1.7, tmp_path)
    motion = np.abs(first - moved).mean()
    assert motion > 2  # the pattern moves...
    assert np.abs(first - looped).mean() < motion / 2  # ...and comes back every 0.5 s
    assert np.abs(first - looped_again).mean() < motion / 2


def detail(area: np.ndarray) -> float:
    """Mean horizontal pixel change: high in the sharp picture, low in the blurred fill."""
    return float(np.abs(np.diff(area, axis=1)).mean())


def test_h2v_puts_the_horizontal_picture_in_a_vertical_frame(assets, tmp_path):
    plan = base_plan(assets, width=180, height=320, picture_size=(320, 180))
    video = render(plan, tmp_path / "h2v.mp4").path
    stream = video_stream(video)
    assert (stream["width"], stream["height"]) == (180, 320)
    picture = frame(video, 1.0, tmp_path)
    # The 16:9 picture is 180x102, centred: rows 109-211; above and below, a blurred fill.
    top_fill, middle, bottom_fill = picture[:100], picture[120:200], picture[220:]
    assert top_fill.mean() > 30 and bottom_fill.mean() > 30  # a blurred copy, not black bars
    assert detail(top_fill) < detail(middle) / 2 and detail(bottom_fill) < detail(middle) / 2


def test_a_vertical_picture_in_a_horizontal_frame_gets_a_fill_at_the_sides(assets, tmp_path):
    plan = base_plan(assets, picture_size=(180, 320))
    picture = frame(render(plan, tmp_path / "v2h.mp4").path, 1.0, tmp_path)
    # The 9:16 picture is 102x180, centred: columns 109-211.
    left, middle, right = picture[:, :100], picture[:, 120:200], picture[:, 220:]
    assert left.mean() > 30 and right.mean() > 30
    assert detail(left) < detail(middle) / 2 and detail(right) < detail(middle) / 2


def test_a_picture_of_the_frames_aspect_fills_the_frame(assets, plain_video, tmp_path):
    video = render(base_plan(assets, picture_size=(1360, 768)), tmp_path / "same.mp4").path
    assert np.abs(frame(video, 1.0, tmp_path) - frame(plain_video, 1.0, tmp_path)).mean() < 2


# ---------------------------------------------------------------- motion


def target_still(path: Path) -> Path:
    """A black square in the middle of a white picture of the frame's aspect."""
    image = Image.new("RGB", (640, 360), "white")
    ImageDraw.Draw(image).rectangle((270, 130, 369, 229), fill="black")
    image.save(path)
    return path


def square_width(picture: np.ndarray) -> int:
    """Width in pixels of the dark square on the frame's middle row."""
    return int((picture[HEIGHT // 2].mean(axis=1) < 100).sum())


def seed_for(motion: str) -> int:
    return next(seed for seed in range(100) if still_motion(seed, 0) == motion)


@pytest.mark.parametrize("motion", ["zoom-in", "zoom-out"])
def test_stills_zoom_in_or_out_about_their_centre(assets, tmp_path, monkeypatch, motion):
    monkeypatch.setattr(compose, "KEN_BURNS_FULL_PAN_S", 1.0)  # the whole zoom within the 2 s
    still = target_still(tmp_path / "target.png")
    plan = base_plan(assets, visuals=[Visual(still, "still", 0, 2000)], transitions=(), seed=seed_for(motion))
    video = render(plan, tmp_path / f"{motion}.mp4").path
    first, last = frame(video, 0.0, tmp_path), frame(video, 1.95, tmp_path)
    # The cover is 1.12x the frame; the frame shows all of it (square ~50 px wide at 320x180) or its
    # central 1/1.12 (the square ~56 px wide).
    small, large = sorted([square_width(first), square_width(last)])
    assert (square_width(first) < square_width(last)) == (motion == "zoom-in")
    assert 48 <= small <= 52 and 54 <= large <= 58, (small, large)
    for picture in (first, last):  # centred: as much white left of the square as right of it
        row = picture[HEIGHT // 2].mean(axis=1) < 100
        left, right = int(np.argmax(row)), int(np.argmax(row[::-1]))
        assert abs(left - right) <= 2


def test_a_pan_keeps_the_scale_and_moves_the_picture(assets, tmp_path, monkeypatch):
    monkeypatch.setattr(compose, "KEN_BURNS_FULL_PAN_S", 1.0)
    still = target_still(tmp_path / "target.png")
    plan = base_plan(assets, visuals=[Visual(still, "still", 0, 2000)], transitions=(), seed=seed_for("pan"))
    video = render(plan, tmp_path / "pan.mp4").path
    first, last = frame(video, 0.0, tmp_path), frame(video, 1.95, tmp_path)
    assert abs(square_width(first) - square_width(last)) <= 2 or square_width(first) == 0
    assert np.abs(first - last).mean() > 3


def test_motions_are_reproducible_and_all_three_are_used():
    assert [still_motion(5, n) for n in range(30)] == [still_motion(5, n) for n in range(30)]
    assert {still_motion(5, n) for n in range(30)} == set(compose.MOTIONS)
    assert [still_motion(5, n) for n in range(30)] != [still_motion(6, n) for n in range(30)]


def test_the_same_plan_renders_the_same_frames(assets, plain_video, tmp_path):
    again = render(base_plan(assets), tmp_path / "again.mp4").path
    for at_s in (0.3, 1.0, 1.7):
        assert np.abs(frame(again, at_s, tmp_path) - frame(plain_video, at_s, tmp_path)).mean() < 1


# ---------------------------------------------------------------- text layout on frames


def flat_plan(assets, tmp_path, width: int, height: int, **changes) -> Plan:
    """One plain grey still that does not move (any motion of a flat picture changes no pixel)."""
    grey = tmp_path / "grey.png"
    Image.new("RGB", (width, height), (90, 90, 90)).save(grey)
    return base_plan(
        assets,
        width=width,
        height=height,
        visuals=[Visual(grey, "still", 0, 2000)],
        transitions=(),
        **changes,
    )


def changed_rows(picture: np.ndarray, background: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.abs(picture - background).max(axis=(1, 2)) > 40)


def changed_columns(picture: np.ndarray, background: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.abs(picture - background).max(axis=(0, 2)) > 40)


SEED_TEXTS = [
    TextBlock("第12集", position="top"),
    TextBlock("老照片里的童年", position="top", large=True),
    TextBlock("每天一个健康小知识", position="bottom"),
]


@pytest.mark.parametrize(("width", "height"), [(640, 360), (360, 640)])
def test_index_and_title_at_the_top_description_above_the_subtitles_inside_the_safe_area(
    assets,
    tmp_path,
    width,
    height,
):
    subtitles_top = round(height * 0.8)
    plain = frame(
        render(flat_plan(assets, tmp_path, width, height), tmp_path / "plain.mp4").path, 1.0, tmp_path
    )
    plan = flat_plan(assets, tmp_path, width, height, texts=SEED_TEXTS, subtitles_top=subtitles_top)
    video = render(plan, tmp_path / "texts.mp4").path
    lines = text_lines(SEED_TEXTS, width=width, height=height, subtitles_top=subtitles_top)
    assert [line.text for line in lines] == ["第12集", "老照片里的童年", "每天一个健康小知识"]
    for at_s in (0.1, 1.9):  # persistent: the whole video
        picture = frame(video, at_s, tmp_path)
        rows, columns = changed_rows(picture, plain), changed_columns(picture, plain)
        left, top, safe_w, safe_h = safe_box(width, height)
        assert rows.min() >= top and rows.max() < min(top + safe_h, subtitles_top)
        assert columns.min() >= left and columns.max() < left + safe_w
        # Three separate lines: index above title in the top quarter, the description right above
        # the subtitle band.
        bands = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
        assert len(bands) == 3, [(band.min(), band.max()) for band in bands]
        index_band, title_band, desc_band = bands
        assert title_band.max() < height * 0.35 and desc_band.min() > height * 0.55
        assert subtitles_top - desc_band.max() < height * 0.08
        assert len(title_band) > len(index_band)  # the title is the larger text


def test_shorts_text_keeps_clear_of_the_buttons_and_the_caption_area(assets, tmp_path):
    width, height = 360, 640
    long_desc = [
        TextBlock(
            "A description long enough to need every pixel of width it can get, twice over", position="bottom"
        )
    ]
    plain = frame(
        render(flat_plan(assets, tmp_path, width, height), tmp_path / "plain.mp4").path, 1.0, tmp_path
    )
    video = render(flat_plan(assets, tmp_path, width, height, texts=long_desc), tmp_path / "desc.mp4").path
    picture = frame(video, 1.0, tmp_path)
    buttons = picture[:, round(width * 0.85) :]  # the like/comment/share column
    caption_area = picture[round(height * 0.75) :]  # channel name, description, subscribe
    assert np.abs(buttons - plain[:, round(width * 0.85) :]).max() < 40
    assert np.abs(caption_area - plain[round(height * 0.75) :]).max() < 40
    assert len(changed_rows(picture, plain)) > 0  # drawn, in two lines, above the caption area


def test_no_text_draws_nothing(assets, tmp_path):
    plain = frame(render(flat_plan(assets, tmp_path, 320, 180), tmp_path / "plain.mp4").path, 1.0, tmp_path)
    empty = [TextBlock("", position="top"), TextBlock("   ", position="bottom", large=True)]
    video = render(flat_plan(assets, tmp_path, 320, 180, texts=empty), tmp_path / "empty.mp4").path
    assert len(changed_rows(frame(video, 1.0, tmp_path), plain)) == 0


# ---------------------------------------------------------------- brand settings on real output


def test_logo_size_and_margin_follow_the_plan(assets, tmp_path):
    grey = flat_plan(assets, tmp_path, 320, 180)
    plan = replace(
        grey, logo_path=assets["logo"], logo_corner="bottom-left", logo_scale=0.25, logo_margin=0.1
    )
    x, y, w, h = logo_box(plan)
    assert (x, y, w, h) == (18, 180 - 40 - 18, 80, 40)
    picture = frame(render(plan, tmp_path / "logo.mp4").path, 1.0, tmp_path)
    plain = frame(render(grey, tmp_path / "plain.mp4").path, 1.0, tmp_path)
    rows, columns = changed_rows(picture, plain), changed_columns(picture, plain)
    assert abs(rows.min() - y) <= 1 and abs(rows.max() - (y + h - 1)) <= 1
    assert abs(columns.min() - x) <= 1 and abs(columns.max() - (x + w - 1)) <= 1


def test_music_volume_sets_the_level_of_the_music(assets, plain_video, tmp_path):
    voice = audio_samples(plain_video, tmp_path)
    levels = []
    for volume in (0.05, 0.5):
        video = render(
            base_plan(assets, music_path=assets["music"], music_volume=volume), tmp_path / f"{volume}.mp4"
        ).path
        mixed = audio_samples(video, tmp_path)
        length = min(len(mixed), len(voice))
        levels.append(np.abs(mixed[:length] - voice[:length]).mean())
    assert levels[1] > levels[0] * 3


def x264_settings(video: Path) -> str:
    """The options x264 writes into the stream it encodes."""
    data = video.read_bytes()
    start = data.index(b"x264 - core")
    return data[start : data.index(b"\0", start)].decode()


def test_crf_and_preset_reach_the_encoder(assets, tmp_path):
    video = render(base_plan(assets, crf=30, preset="veryfast"), tmp_path / "out.mp4").path
    options = x264_settings(video)
    assert "crf=30.0" in options
    assert " ref=1 " in options and " subme=2 " in options  # veryfast's, not ultrafast's subme=0


# ---------------------------------------------------------------- errors, cancel, progress


def test_corrupt_logo_is_reported_by_name(assets, tmp_path):
    broken = tmp_path / "broken_logo.png"
    broken.write_bytes(b"\x89PNG this is not really a png")
    out = tmp_path / "out.mp4"
    with pytest.raises(MediaError, match="broken_logo.png"):
        render(base_plan(assets, logo_path=broken), out)
    assert not out.exists()


def test_missing_visual_is_reported_by_name(assets, tmp_path):
    visuals = [Visual(assets["still0"], "still", 0, 1000), Visual(tmp_path / "gone.png", "still", 1000, 2000)]
    with pytest.raises(MediaError, match="gone.png"):
        render(base_plan(assets, visuals=visuals), tmp_path / "out.mp4")


def test_corrupt_visual_is_reported_by_name(assets, tmp_path):
    corrupt = tmp_path / "corrupt_clip.mp4"
    corrupt.write_bytes(os.urandom(2048))
    visuals = [Visual(corrupt, "clip", 0, 2000)]
    with pytest.raises(MediaError, match="corrupt_clip.mp4"):
        render(base_plan(assets, visuals=visuals), tmp_path / "out.mp4")


def test_visuals_must_tile_the_narration(assets, tmp_path):
    visuals = [Visual(assets["still0"], "still", 0, 900), Visual(assets["still1"], "still", 1000, 2000)]
    with pytest.raises(MediaError, match="tile"):
        render(base_plan(assets, visuals=visuals), tmp_path / "out.mp4")


def test_cancel_raises_and_leaves_no_ffmpeg_behind(assets, tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(Cancelled):
        render(base_plan(assets, subtitles_path=assets["subtitles"]), out, cancel=lambda: True)
    assert ffmpeg_children() == []
    assert not out.exists()


def test_progress_reaches_one(assets, tmp_path):
    seen: list[float] = []
    render(base_plan(assets), tmp_path / "out.mp4", on_progress=seen.append)
    assert seen and seen[-1] == 1.0
    assert all(0.0 <= value <= 1.0 for value in seen)
    assert seen == sorted(seen)


# ---------------------------------------------------------------- covers and frames


def test_make_cover_is_a_jpeg_of_the_given_size_with_the_title(assets, tmp_path):
    cover = make_cover(
        assets["still1"], "老照片里的童年: 回不去的夏天", tmp_path / "cover.jpg", width=360, height=640
    )
    with Image.open(cover) as image:
        assert image.format == "JPEG"
        assert image.size == (360, 640)
        pixels = np.asarray(image.convert("RGB"))
    untitled = make_cover(assets["still1"], "", tmp_path / "plain.jpg", width=360, height=640)
    with Image.open(untitled) as image:
        plain = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert np.abs(pixels.astype(np.int16) - plain).mean() > 5


def test_extract_frame_clamps_into_the_video(plain_video, tmp_path):
    path = extract_frame(plain_video, 99.0, tmp_path / "last.jpg")
    with Image.open(path) as image:
        assert image.size == (WIDTH, HEIGHT)


@pytest.mark.parametrize("corner", ["top-left", "top-right", "bottom-left", "bottom-right"])
def test_a_logo_in_a_shorts_frame_keeps_clear_of_the_buttons_and_captions(assets, corner):
    """In 9:16 the corners hold Shorts' own icons, buttons and caption: the logo moves into the safe area."""
    plan = base_plan(assets, width=360, height=640, logo_path=assets["logo"], logo_corner=corner)
    x, y, w, h = logo_box(plan)
    safe_x, safe_y, safe_w, safe_h = safe_box(360, 640)
    assert safe_x <= x and x + w <= safe_x + safe_w and safe_y <= y and y + h <= safe_y + safe_h
    assert (x < 180) == corner.endswith("left") and (y < 320) == corner.startswith("top")


def test_a_clip_plays_from_its_offset(assets, tmp_path):
    # 1 s of red, then 2 s of blue: from 1000 ms on, the segment shows blue from its first frame.
    clip = tmp_path / "red-blue.mp4"
    ffmpeg.run(
        [
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=320x180:r=30:d=1",
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:s=320x180:r=30:d=2",
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1[v]",
            "-map",
            "[v]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            str(clip),
        ]
    )
    from_start = render(base_plan(assets, visuals=[Visual(clip, "clip", 0, 2000)]), tmp_path / "a.mp4").path
    offset = render(
        base_plan(assets, visuals=[Visual(clip, "clip", 0, 2000, offset_ms=1000)]), tmp_path / "b.mp4"
    ).path
    red, blue = (
        frame(from_start, 0.2, tmp_path).mean(axis=(0, 1)),
        frame(offset, 0.2, tmp_path).mean(axis=(0, 1)),
    )
    assert red[0] > 150 > red[2] and blue[2] > 150 > blue[0]
