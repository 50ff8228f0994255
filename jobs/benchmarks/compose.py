"""The standard compose benchmark: is rendering close to the cost of the encode itself?

The case: 60 s of narration, 12 picture cards at 1360x768 (each pans, zooms in or zooms out as
the seed picks), 0.5 s fades, 12 Chinese subtitle cues, a logo, H.264 veryfast at 30 fps. The "floor" is a plain re-encode of the
rendered video with the same x264 settings (audio copied): what any render must pay at least.
"""

import resource
import time
from pathlib import Path

from PIL import Image, ImageDraw

from media_engine import compose, ffmpeg
from media_engine.cards import render_card
from media_engine.fonts import FAMILY

WIDTH, HEIGHT, FPS = 1360, 768, 30
PALETTE = ["#14365d", "#3a7ca5", "#f2c14e"]
CUE_TEXTS = [
    "每天早上喝一杯温水，可以帮助身体排毒",
    "散步三十分钟，心情会变得更好",
    "老照片里，藏着我们回不去的童年",
    "奶奶的手擀面，是记忆里最香的味道",
    "睡前少看手机，睡眠质量会明显提高",
    "多吃蔬菜水果，身体更健康",
    "那年夏天，我们在河边捉蜻蜓",
    "学会感恩，生活处处是温暖",
    "适当晒太阳，有助于补充维生素D",
    "小时候的零食，五毛钱就能买一大把",
    "坚持锻炼，年纪大了也能很精神",
    "谢谢观看，我们下期再见",
]


def compose_benchmark(work_dir: Path, *, seconds: int = 60, stills: int = 12) -> dict:
    """Build the standard case in `work_dir`, render it, re-encode it; timings and peak memory."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    plan = _standard_plan(work_dir, seconds=seconds, stills=stills)
    output = work_dir / "composed.mp4"

    started = time.perf_counter()
    compose.render(plan, output)
    compose_s = time.perf_counter() - started
    # ru_maxrss is in KiB on Linux. RUSAGE_CHILDREN is the largest finished child (each
    # ffmpeg and ffprobe), so it is read before the floor's own ffmpeg runs.
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    )

    started = time.perf_counter()
    ffmpeg.run(
        [
            "-i",
            str(output),
            "-map",
            "0:v",
            "-map",
            "0:a",
            "-c:v",
            "libx264",
            "-preset",
            plan.preset,
            "-crf",
            str(plan.crf),
            "-pix_fmt",
            "yuv420p",
            "-r",
            str(plan.fps),
            "-c:a",
            "copy",
            str(work_dir / "floor.mp4"),
        ]
    )
    floor_s = time.perf_counter() - started
    return {
        "compose_s": compose_s,
        "floor_s": floor_s,
        "ratio": compose_s / floor_s,
        "realtime": seconds / compose_s,
        "peak_rss_mb": peak_kib / 1024,
    }


def format_compose_line(result: dict) -> str:
    return (
        "compose_s={compose_s:.2f} floor_s={floor_s:.2f} ratio={ratio:.2f} "
        "realtime={realtime:.2f} peak_rss_mb={peak_rss_mb:.2f}"
    ).format(**result)


def _standard_plan(work_dir: Path, *, seconds: int, stills: int) -> compose.Plan:
    narration = work_dir / "narration.wav"
    # A tone with pink noise: audio that neither compresses to nothing nor takes long to make.
    ffmpeg.run(
        [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=220:sample_rate=24000:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"anoisesrc=color=pink:amplitude=0.05:sample_rate=24000:duration={seconds}",
            "-filter_complex",
            "amix=inputs=2:duration=first",
            "-ac",
            "1",
            str(narration),
        ]
    )
    bounds = [round(i * seconds * 1000 / stills) for i in range(stills + 1)]
    visuals = []
    for index in range(stills):
        card = render_card(
            CUE_TEXTS[index % len(CUE_TEXTS)],
            width=WIDTH,
            height=HEIGHT,
            palette=PALETTE,
            out_path=work_dir / f"still{index:02d}.png",
            seed=index,
        )
        visuals.append(compose.Visual(card, "still", bounds[index], bounds[index + 1]))
    return compose.Plan(
        width=WIDTH,
        height=HEIGHT,
        visuals=visuals,
        narration_path=narration,
        subtitles_path=_write_subtitles(work_dir / "subtitles.ass", bounds),
        logo_path=_write_logo(work_dir / "logo.png"),
        transitions=("fade",) * (stills - 1),
        transition_s=0.5,
        fps=FPS,
        preset="veryfast",
        crf=23,
    )


def _write_subtitles(path: Path, bounds: list[int]) -> Path:
    """A minimal ASS file: one cue per segment, Chinese text, the project's font family."""
    header = (
        f"[Script Info]\nScriptType: v4.00+\nPlayResX: {WIDTH}\nPlayResY: {HEIGHT}\nWrapStyle: 0\n\n"
        "[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, "
        "Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"Style: Default,{FAMILY},46,&H00FFFFFF,&H000000FF,&H00000000,&H80000000,"
        "0,0,0,0,100,100,0,0,1,3,1,2,40,40,40,1\n\n"
        "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )
    # Each cue ends 100 ms before the next segment starts, like real sentence timing.
    events = [
        f"Dialogue: 0,{_ass_time(start)},{_ass_time(end - 100)},Default,,0,0,0,,{text}\n"
        for (start, end), text in zip(zip(bounds, bounds[1:]), _cycle(CUE_TEXTS, len(bounds) - 1))
    ]
    path.write_text(header + "".join(events), encoding="utf-8")
    return path


def _cycle(texts: list[str], count: int) -> list[str]:
    return [texts[i % len(texts)] for i in range(count)]


def _ass_time(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000 // 10:02d}"


def _write_logo(path: Path) -> Path:
    logo = Image.new("RGBA", (320, 120), (0, 0, 0, 0))
    draw = ImageDraw.Draw(logo)
    draw.rounded_rectangle((0, 0, 319, 119), radius=28, fill=(255, 255, 255, 210))
    draw.ellipse((20, 20, 100, 100), fill=(220, 60, 60, 255))
    draw.rectangle((120, 45, 290, 75), fill=(40, 40, 40, 255))
    logo.save(path)
    return path
