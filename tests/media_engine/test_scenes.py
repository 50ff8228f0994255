"""Where a stock clip plays from: its shots by ffmpeg's scene score, fade-ins from black left out."""

import subprocess
from pathlib import Path

from media_engine import scenes


def make(path: Path, graph: str, *inputs: str) -> Path:
    args = [arg for source in inputs for arg in ("-f", "lavfi", "-i", source)]
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            *args,
            "-filter_complex",
            graph,
            "-map",
            "[v]",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )
    return path


def test_the_longest_shot_is_found_between_cuts(tmp_path):
    # 1 s fading in from black, a cut to 3 s of bars, a cut to 1.5 s of a fractal.
    clip = make(
        tmp_path / "cuts.mp4",
        "[0:v]fade=in:0:15[a];[2:v]trim=duration=1.5,setpts=PTS-STARTPTS[c];[a][1:v][c]concat=n=3:v=1[v]",
        "testsrc2=s=320x180:r=30:d=1",
        "smptebars=s=320x180:r=30:d=3",
        "mandelbrot=s=320x180:r=30",
    )
    shots = scenes.find_shots(clip)
    assert [(round(s.start_ms, -2), round(s.end_ms, -2)) for s in shots[1:]] == [(1000, 4000), (4000, 5500)]
    assert shots[0].start_ms >= 200  # the fade-in is not part of the first shot
    assert scenes.clip_start_ms(shots, duration_ms=5500, needed_ms=2000) == shots[1].start_ms
    # A segment longer than the best shot starts early enough not to run out, never inside the fade.
    assert scenes.clip_start_ms(shots, duration_ms=5500, needed_ms=5400) == shots[0].start_ms


def test_a_single_shot_fading_in_never_plays_from_zero(tmp_path):
    clip = make(tmp_path / "fade.mp4", "[0:v]fade=in:0:30[v]", "testsrc2=s=320x180:r=30:d=3")
    [shot] = scenes.find_shots(clip)
    assert 300 <= shot.start_ms <= 1000 and shot.end_ms == 3000
    assert scenes.clip_start_ms([shot], duration_ms=3000, needed_ms=10_000) == shot.start_ms


def test_no_shots_plays_from_the_start():
    assert scenes.clip_start_ms([], duration_ms=3000, needed_ms=1000) == 0
    black = [(n / 30, 0.0, 16.0) for n in range(30)]
    assert scenes.shots_from_frames(black, duration_ms=1000) == []
