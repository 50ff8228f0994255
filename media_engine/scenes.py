"""Where a stock clip is worth showing: its shots (cut by ffmpeg's scene score) without a fade from
black, and where a segment of a given length starts playing it.

One decoding pass at 160 px wide: `select` scores every frame against the previous one
(`lavfi.scene_score`, 0..1) and `signalstats` gives its mean luma (`YAVG`); `metadata=print` writes
both per frame to a file read back here.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import ffmpeg

# A frame this different from the previous one starts a new shot (ffmpeg's own examples use 0.3-0.4).
CUT_SCORE = 0.3
# Mean luma (0-255, video range starts at 16) below this is black; a shot's opening frames darker
# than FADE_SHARE of its typical brightness are a fade-in.
BLACK_YAVG = 32.0
FADE_SHARE = 0.6
FRAME_LINE = re.compile(r"pts_time:([0-9.]+)")


@dataclass(frozen=True)
class Shot:
    start_ms: int
    end_ms: int

    @property
    def length_ms(self) -> int:
        return self.end_ms - self.start_ms


def find_shots(path: Path, *, timeout: float = 300.0, scratch_dir: Path | None = None) -> list[Shot]:
    """The clip's shots in order, each without its fade-in from black; a clip that is black
    throughout has none."""
    with tempfile.TemporaryDirectory(dir=scratch_dir) as folder:
        frames_path = Path(folder) / "frames.txt"
        # The file name goes into a filter graph: a plain temporary name needs no escaping.
        ffmpeg.run(
            [
                "-i",
                path,
                "-an",
                "-sn",
                "-vf",
                f"scale=160:-2,select='gte(scene\\,0)',signalstats,metadata=print:file={frames_path}",
                "-f",
                "null",
                "-",
            ],
            timeout=timeout,
        )
        frames = _read_frames(frames_path.read_text(encoding="utf-8", errors="replace"))
    if not frames:
        return []
    duration_ms = int(ffmpeg.duration(path) * 1000)
    return shots_from_frames(frames, duration_ms=duration_ms)


def shots_from_frames(frames: list[tuple[float, float, float]], *, duration_ms: int) -> list[Shot]:
    """Shots from (time s, scene score, mean luma) per frame."""
    starts = [0] + [number for number, (_t, score, _y) in enumerate(frames) if number and score >= CUT_SCORE]
    ends = starts[1:] + [len(frames)]
    shots = []
    for first, end in zip(starts, ends):
        lumas = sorted(luma for _t, _s, luma in frames[first:end])
        typical = lumas[len(lumas) // 2]
        if typical < BLACK_YAVG:
            continue  # a black (or nearly black) shot: nothing to show
        threshold = max(BLACK_YAVG, FADE_SHARE * typical)
        opening = first
        while opening < end and frames[opening][2] < threshold:
            opening += 1
        start_ms = int(frames[opening][0] * 1000)
        end_ms = int(frames[end][0] * 1000) if end < len(frames) else duration_ms
        if end_ms > start_ms:
            shots.append(Shot(start_ms, end_ms))
    return shots


def clip_start_ms(shots: list[Shot], *, duration_ms: int, needed_ms: int) -> int:
    """Where a segment `needed_ms` long starts playing the clip: at its longest shot; where that shot
    is shorter than the segment, early enough that the clip does not run out (and loop back to
    its opening) before the segment ends, though never inside a fade-in."""
    if not shots:
        return 0
    best = max(shots, key=lambda shot: (shot.length_ms, -shot.start_ms))
    if best.length_ms >= needed_ms:
        return best.start_ms
    earliest = shots[0].start_ms  # the first frame after the clip's own fade-in
    return max(earliest, min(best.start_ms, duration_ms - needed_ms))


def _read_frames(text: str) -> list[tuple[float, float, float]]:
    frames: list[tuple[float, float, float]] = []
    time_s = score = luma = None
    for line in text.splitlines():
        if match := FRAME_LINE.search(line):
            if time_s is not None:
                frames.append((time_s, score or 0.0, luma if luma is not None else 255.0))
            time_s, score, luma = float(match.group(1)), None, None
        elif line.startswith("lavfi.scene_score="):
            score = float(line.partition("=")[2])
        elif line.startswith("lavfi.signalstats.YAVG="):
            luma = float(line.partition("=")[2])
    if time_s is not None:
        frames.append((time_s, score or 0.0, luma if luma is not None else 255.0))
    return frames
