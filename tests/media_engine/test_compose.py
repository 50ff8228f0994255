"""compose.render on tiny real inputs (320x180, 2 s), checked with ffprobe and decoded frames."""

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from media_engine import ffmpeg
from media_engine.compose import Plan, TextOverlay, Visual, extract_frame, logo_box, make_cover, render
from media_engine.errors import Cancelled, MediaError
from media_engine.fonts import FAMILY

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
    ffmpeg.run(["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=24000:duration={NARRATION_S}",
                "-ac", "1", str(files["narration"])])
    ffmpeg.run(["-f", "lavfi", "-i", "sine=frequency=1500:sample_rate=44100:duration=0.7",
                "-ac", "2", str(files["music"])])
    # A 0.5 s moving test pattern: shorter than any segment it is used for.
    ffmpeg.run(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=0.5",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(files["clip"])])
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
    plan = Plan(width=WIDTH, height=HEIGHT, visuals=visuals, narration_path=assets["narration"],
                preset="ultrafast", crf=18)
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
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
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


@pytest.mark.parametrize("transition", ["none", "fade", "wipeleft"])
def test_transitions_keep_the_duration(assets, tmp_path, transition):
    video = render(base_plan(assets, transition=transition), tmp_path / "out.mp4").path
    assert abs(ffmpeg.duration(video) - NARRATION_S) <= 0.1
    assert int(video_stream(video)["nb_frames"]) == round(NARRATION_S * 30)


def test_fade_blends_the_two_segments_at_their_boundary(assets, plain_video, tmp_path):
    cut = render(base_plan(assets, transition="none"), tmp_path / "cut.mp4").path
    # At the boundary (0.7 s) a hard cut already shows segment 2; the fade shows a mix.
    faded, hard = frame(plain_video, 0.7, tmp_path), frame(cut, 0.7, tmp_path)
    assert np.abs(faded - hard).mean() > 10


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
    inside = np.abs(with_logo[y:y + h, x:x + w] - without[y:y + h, x:x + w]).mean()
    opposite = np.abs(with_logo[-h:, :w] - without[-h:, :w]).mean()
    assert inside > 40
    assert opposite < 8
    # Magenta: strong red and blue, little green.
    red, green, blue = with_logo[y + h // 2, x + w // 2]
    assert red > 180 and blue > 180 and green < 90


def test_subtitles_are_burned_into_the_bottom_band(assets, plain_video, tmp_path):
    video = render(base_plan(assets, subtitles_path=assets["subtitles"]), tmp_path / "subs.mp4").path
    with_subs, without = frame(video, 1.0, tmp_path), frame(plain_video, 1.0, tmp_path)
    bottom = np.abs(with_subs[HEIGHT - 50:] - without[HEIGHT - 50:]).mean()
    top = np.abs(with_subs[:50] - without[:50]).mean()
    assert bottom > 10
    assert top < 3


def test_text_overlays_with_special_characters(assets, plain_video, tmp_path):
    texts = [
        TextOverlay("标题: it's 100% \\ done; [ok], {x}", position="top"),
        TextOverlay("结尾", position="bottom", start_ms=1500, font_size=30),
    ]
    video = render(base_plan(assets, texts=texts), tmp_path / "texts.mp4").path
    with_text, without = frame(video, 1.0, tmp_path), frame(plain_video, 1.0, tmp_path)
    assert np.abs(with_text[:45] - without[:45]).mean() > 5
    # The bottom text only starts at 1.5 s.
    assert np.abs(with_text[-60:] - without[-60:]).mean() < 3
    late, late_plain = frame(video, 1.8, tmp_path), frame(plain_video, 1.8, tmp_path)
    assert np.abs(late[-60:] - late_plain[-60:]).mean() > 3


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


def test_h2v_puts_the_horizontal_picture_in_a_vertical_frame(assets, tmp_path):
    plan = base_plan(assets, width=180, height=320, h2v=True)
    video = render(plan, tmp_path / "h2v.mp4").path
    stream = video_stream(video)
    assert (stream["width"], stream["height"]) == (180, 320)
    picture = frame(video, 1.0, tmp_path)
    top_fill, middle = picture[:90], picture[130:190]
    assert top_fill.mean() > 30  # a blurred copy, not black bars
    detail = lambda area: np.abs(np.diff(area, axis=1)).mean()  # noqa: E731
    assert detail(top_fill) < detail(middle) / 2


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
    cover = make_cover(assets["still1"], "老照片里的童年: 回不去的夏天", tmp_path / "cover.jpg",
                       width=360, height=640)
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
