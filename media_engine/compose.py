"""Compose the final video: pictures with motion, transitions, subtitles, texts, logo, music.

One module past 500 lines because it is one ffmpeg plan: the filter graph, the overlays and the
chunk of each piece share the piece timing and frame geometry, and split apart they would pass them
around. What does not depend on the plan (making, finding and joining chunks) is media_engine/chunks.py.

How it is built, and why (measured on a 2-core host, 60 s at 1360x768, 12 stills):
- A still is decoded and scaled once, then repeated with the `loop` filter; Ken Burns is a
  `crop` whose x/y follow the frame number. Crop only moves data pointers, so a pan is
  nearly free. A zoom needs a resample per frame: a bilinear `scale` whose size follows the
  frame number (`eval=frame`), then a centred crop of the frame size. zoompan, or a bicubic
  scale, costs more than the encoder itself; the bilinear one ~2 ms a frame at 1360x768, and
  only a zoomed segment pays it (a segment pans, zooms in or zooms out, chosen by the seed).
- The timeline is cut into pieces: the steady part of each segment and the short windows
  where two segments overlap. `xfade` runs only on those windows and `concat` joins the
  pieces; a chain of full-length xfades costs ~2 ms on every frame that passes through it.
- Each piece is its own chunk: one small ffmpeg process makes its frames (burning the
  subtitles with libass, drawing the texts, overlaying the logo) and encodes them with x264
  from a keyframe, with the same settings for every chunk. A chunk is named by a hash of
  exactly what it shows (the filter graph with each file replaced by its content hash, the
  subtitle events inside it relative to its own start, the encoder settings), so an edit
  re-encodes only the chunks that show it; a segment that only moves in time keeps its
  chunks (the timeline is in whole frames). The video is a stream copy of the chunks (concat
  demuxer) with the audio's. Memory is bounded by
  one piece (two inputs at most) per process, whatever the length; CHUNK_WORKERS chunks are
  made at a time, which also keeps both cores busy while a process starts.
- The audio is the final track of `audio.final_audio` (the mix, music under the voice, with the
  gain to the loudness target), kept in the store named by its inputs, so a re-render with the same
  narration and music, and a preview cutting its slice, skip its measurements. It is encoded in
  ~10 s slices (`audio.slices`), each a chunk named by its samples, made by the chunk workers beside
  the video chunks; their AAC frames are joined in order. After a sentence edit the slices before it
  are reused and the ones after it (moved in time, or under other music) are encoded again.
  Benchmarks on a shared 2-core host: `manage.py benchmark compose` 1.43x a plain re-encode
  (noisy; with main's zoom motions and final-audio track), peak RSS ~253 MB; `benchmark rerender`
  (10 min, 103 segments): see the README's "Re-rendering only what changed".
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from PIL import Image, ImageOps

from . import audio, ffmpeg, presenter
from .cards import draw_centered_lines, fit_text, font, line_boxes, line_height
from .chunks import (
    AssEvents,
    ChunkJob,
    ChunkStore,
    Composition,
    Samples,
    assemble,
    chunk_present,
    digest,
    file_digest,
    time_left,
)
from .errors import MediaError
from .fonts import FAMILY, default_font_path
from .layout import TextBlock, safe_box, text_lines

# Transitions of ffmpeg 5.1's xfade ("custom" needs expressions we do not take from users).
XFADE_TRANSITIONS = frozenset(
    "fade wipeleft wiperight wipeup wipedown slideleft slideright slideup slidedown circlecrop "
    "rectcrop distance fadeblack fadewhite radial smoothleft smoothright smoothup smoothdown "
    "circleopen circleclose vertopen vertclose horzopen horzclose dissolve pixelize diagtl diagtr "
    "diagbl diagbr hlslice hrslice vuslice vdslice hblur fadegrays wipetl wipetr wipebl wipebr "
    "squeezeh squeezev zoomin fadefast fadeslow".split()
)
LOGO_CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
# Stills are scaled this much larger than the frame; the crop window pans across the margin.
KEN_BURNS_MARGIN = 0.12
# A segment this long (or longer) pans across the whole margin; shorter ones pan less, so
# short segments do not whip across the picture.
KEN_BURNS_FULL_PAN_S = 6.0
# Pan directions (dx, dy): horizontal, vertical and diagonal, each both ways.
PAN_DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1))
# What a still does during its segment, chosen per segment from the seed. A zoom travels the
# same margin as a pan: from the whole cover to its central 1 / (1 + margin), or back.
MOTIONS = ("pan", "zoom-in", "zoom-out")
# Aspects this close fill the frame (a few pixels cropped) rather than get a blurred fill:
# 1360x768 and 1920x1080 are both "16:9".
SAME_ASPECT = 0.02
# x264's output depends on its thread count: fixed, so a chunk is the same on every host. One
# thread per chunk, with more chunks made at a time than there are cores (chunks.CHUNK_WORKERS):
# a chunk's filters run mostly in one thread too, and 3 single-threaded chunks at a time kept 2
# cores busier than 2 chunks of 2 x264 threads (benchmark compose 10.5 s against 12.3 s).
CHUNK_THREADS = 1
# Part of every chunk's name: change it when the way chunks are made changes.
CHUNK_FORMAT = 2
PROBE_WORKERS = 4

ProgressCallback = Callable[[float], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class Visual:
    path: Path
    kind: Literal["still", "clip"]
    start_ms: int
    end_ms: int
    offset_ms: int = 0  # a clip plays from here (its best shot, past any fade-in: media_engine.scenes)


@dataclass(frozen=True)
class Plan:
    width: int  # 1360x768 horizontal, 768x1360 vertical
    height: int
    visuals: list[Visual]  # tile the narration: first starts at 0, each ends where the next starts
    narration_path: Path
    subtitles_path: Path | None = None  # an ASS file made for width x height
    logo_path: Path | None = None
    logo_corner: str = "top-right"
    logo_scale: float = 0.12  # logo width as share of frame width
    logo_margin: float = 0.03  # logo to the frame edges, as a share of the frame's shorter side
    music_path: Path | None = None
    music_volume: float = 0.15  # under the voice; ducked further while speaking
    loudness_lufs: float = audio.DEFAULT_LOUDNESS_LUFS  # integrated loudness of the final mix
    # The transition at each join (len(visuals) - 1 names: ffmpeg xfade names or "none"; see
    # `pick_transitions`); empty: hard cuts everywhere.
    transitions: tuple[str, ...] = ()
    transition_s: float = 0.5
    texts: list[TextBlock] = field(default_factory=list)  # laid out by `layout.text_lines`
    subtitles_top: int | None = None  # y of the subtitle band's top: texts stay above it
    fps: int = 30
    seed: int = 0  # Ken Burns motions vary per still, reproducibly
    # The size the pictures were made for. Another aspect than the frame's (a horizontal picture in
    # a vertical frame, h2v) is fitted inside the frame over a blurred, filled copy of itself.
    picture_size: tuple[int, int] | None = None
    # The digital human, over the pictures and under the subtitles, texts and logo.
    presenter: presenter.Placement | None = None
    preset: str = "veryfast"
    crf: int = 23


@dataclass(frozen=True)
class _Piece:
    """A run of output frames [start, end) showing one segment, or a transition between two."""

    segments: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class _Timeline:
    origins: list[int]  # output frame where each segment's own (extended) footage starts
    lengths: list[int]  # frames of each segment's footage, transition overlaps included
    pieces: list[_Piece]


# ---------------------------------------------------------------- public API


def render(
    plan: Plan,
    out_path: Path,
    *,
    store: ChunkStore | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    timeout: float = 3300,
    scratch_dir: Path | None = None,
) -> Composition:
    """Render `plan` to an MP4 at `out_path` whose duration is the narration's.

    Chunks already in `store` are reused and new ones are kept there; without a store they
    live only as long as the render. Temporary files go in `scratch_dir` (default: the system's)."""
    if store is not None:
        return _compose(
            plan,
            out_path,
            store,
            segments=None,
            on_progress=on_progress,
            cancel=cancel,
            timeout=timeout,
            scratch_dir=scratch_dir,
        )
    with tempfile.TemporaryDirectory(prefix="chunks-", dir=scratch_dir) as folder:
        return _compose(
            plan,
            out_path,
            ChunkStore(Path(folder)),
            segments=None,
            on_progress=on_progress,
            cancel=cancel,
            timeout=timeout,
            scratch_dir=scratch_dir,
        )


def preview(
    plan: Plan,
    segment: int,
    out_path: Path,
    *,
    store: ChunkStore,
    last: int | None = None,
    cancel: CancelCheck | None = None,
    timeout: float = 600,
) -> Composition:
    """One segment (to `last`, when given) with its transitions, narration, subtitles and motion:
    the full render's own chunks for it (reused when that render made them), joined with the
    final audio under them."""
    return _compose(
        plan,
        out_path,
        store,
        segments=(segment, segment if last is None else last),
        on_progress=None,
        cancel=cancel,
        timeout=timeout,
    )


def pick_transitions(names: tuple[str, ...] | list[str], joins: int, seed: int) -> tuple[str, ...]:
    """A transition for each of `joins` joins, drawn from `names` reproducibly from `seed`, never
    the same twice in a row when there is a choice; no names: hard cuts ("none")."""
    names = list(dict.fromkeys(names))
    if not names:
        return ("none",) * joins
    rng = random.Random(f"transitions:{seed}")
    picked: list[str] = []
    for _ in range(joins):
        picked.append(rng.choice([name for name in names if not picked or name != picked[-1]] or names))
    return tuple(picked)


def logo_box(plan: Plan) -> tuple[int, int, int, int] | None:
    """x, y, w, h of the logo in the frame, or None without a logo: `logo_margin` from its corner,
    and no closer to the edges than the platform's safe area (Shorts: clear of the buttons)."""
    if plan.logo_path is None:
        return None
    if plan.logo_corner not in LOGO_CORNERS:
        raise MediaError(f"unknown logo corner {plan.logo_corner!r}; use one of {', '.join(LOGO_CORNERS)}")
    logo_w, logo_h = _video_size(plan.logo_path)
    width = _even(plan.width * plan.logo_scale)
    height = _even(width * logo_h / logo_w)
    margin = round(min(plan.width, plan.height) * plan.logo_margin)
    x = margin if plan.logo_corner.endswith("left") else plan.width - width - margin
    y = margin if plan.logo_corner.startswith("top") else plan.height - height - margin
    # Never under the platform's own buttons: inside the frame's safe area (layout.safe_box).
    safe_x, safe_y, safe_w, safe_h = safe_box(plan.width, plan.height)
    x = max(safe_x, x) if plan.logo_corner.endswith("left") else min(safe_x + safe_w - width, x)
    y = max(safe_y, y) if plan.logo_corner.startswith("top") else min(safe_y + safe_h - height, y)
    return x, y, width, height


@dataclass(frozen=True)
class CoverLayout:
    """The title of a cover: its lines, the box each line's glyphs cover, and the darkened band."""

    font_size: int
    lines: list[str]
    boxes: list[tuple[int, int, int, int]]  # x0, y0, x1, y1 per line
    band: tuple[float, float]  # top, bottom
    center_y: float


def cover_layout(title: str, *, width: int, height: int) -> CoverLayout:
    """The title block of a cover, inside the frame's safe area.

    Horizontal: in the lower part of the frame (the picture's subject keeps the upper part), up
    to 3 lines. Vertical: below the middle but above the bottom fifth, which the players' buttons
    and captions cover, up to 4 lines. Lines wrap at word boundaries (CJK between characters).
    """
    vertical = height > width
    max_lines = 4 if vertical else 3
    top_limit, bottom_limit = (0.46, 0.78) if vertical else (0.5, 0.92)
    text_font, lines = fit_text(
        title.strip(),
        max_width=width * 0.86,
        max_height=height * (bottom_limit - top_limit) * 0.8,
        start_size=max(16, round(min(width, height) / 9)),
        max_lines=max_lines,
    )
    block = line_height(text_font) * len(lines)
    padding = text_font.size * 0.6
    # As low as the safe area lets it, so the band covers as little of the picture as it can.
    center_y = height * bottom_limit - padding - block / 2
    center_y = max(center_y, height * top_limit + padding + block / 2)
    boxes = [box for _x, _y, box in line_boxes(width, lines, text_font, center_y=center_y)]
    return CoverLayout(
        font_size=text_font.size,
        lines=lines,
        boxes=boxes,
        band=(center_y - block / 2 - padding, center_y + block / 2 + padding),
        center_y=center_y,
    )


def make_cover(image_path: Path, title: str, out_path: Path, *, width: int, height: int) -> Path:
    """A JPEG cover: the picture filling the frame, the title large over a darkened band.

    The picture should carry no text of its own (the render passes the first segment's picture,
    a card without its phrase): the title is the only text on the cover.
    """
    try:
        with Image.open(image_path) as source:
            picture = ImageOps.fit(source.convert("RGB"), (width, height), Image.Resampling.LANCZOS)
    except (OSError, ValueError) as error:
        raise MediaError(f"cover picture {Path(image_path).name} is unreadable: {error}") from error
    if title.strip():
        layout = cover_layout(title, width=width, height=height)
        _darken_band(picture, *layout.band)
        draw_centered_lines(picture, layout.lines, font(layout.font_size), center_y=layout.center_y)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(out_path, format="JPEG", quality=90)
    return out_path


def extract_frame(video_path: Path, at_s: float, out_path: Path) -> Path:
    """One frame of `video_path` at `at_s` seconds (clamped into the video) as an image file."""
    length = ffmpeg.duration(video_path)
    # The last decodable frame starts a little before the container's end.
    at_s = max(0.0, min(at_s, length - 0.1))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg.run(
        [
            "-ss",
            f"{at_s:.3f}",
            "-i",
            str(video_path),
            "-frames:v",
            "1",
            "-q:v",
            "2",
            "-update",
            "1",
            str(out_path),
        ],
        timeout=120,
    )
    if not out_path.exists() or out_path.stat().st_size == 0:
        raise MediaError(f"no frame at {at_s:.2f} s in {Path(video_path).name}")
    return out_path


# ---------------------------------------------------------------- checks and timing


def _check_plan(plan: Plan, shown: tuple[int, int] | None = None) -> float:
    """Validate the plan and probe every input (the visuals `shown`, first to last, when given)
    before the long render; the narration's length."""
    if plan.width <= 0 or plan.height <= 0 or plan.width % 2 or plan.height % 2:
        raise MediaError(f"frame size must be positive and even, got {plan.width}x{plan.height}")
    if plan.fps <= 0:
        raise MediaError(f"fps must be positive, got {plan.fps}")
    if not plan.visuals:
        raise MediaError("the plan has no visuals")
    if plan.transitions and len(plan.transitions) != len(plan.visuals) - 1:
        raise MediaError(f"{len(plan.transitions)} transitions for {len(plan.visuals) - 1} joins")
    for name in plan.transitions:
        if name != "none" and name not in XFADE_TRANSITIONS:
            raise MediaError(f"unknown transition {name!r}")
    narration = ffmpeg.probe(plan.narration_path)
    if not _streams(narration, "audio"):
        raise MediaError(f"narration {Path(plan.narration_path).name} has no audio stream")
    duration = narration.get("format", {}).get("duration")
    total_s = float(duration) if duration is not None else ffmpeg.duration(plan.narration_path)
    previous_end = 0
    for index, visual in enumerate(plan.visuals):
        if visual.kind not in ("still", "clip"):
            raise MediaError(f"visual {index} has unknown kind {visual.kind!r}")
        if visual.start_ms != previous_end or visual.end_ms <= visual.start_ms:
            raise MediaError(
                f"visual {index} ({visual.start_ms}-{visual.end_ms} ms) does not continue the "
                f"previous one (ends {previous_end} ms): visuals must tile the narration"
            )
        previous_end = visual.end_ms
        if visual.start_ms >= total_s * 1000:
            raise MediaError(f"visual {index} starts after the narration ends ({total_s:.2f} s)")
    # Each probe is a ~70 ms process start; a few at a time keeps the check short.
    first, last = shown or (0, len(plan.visuals) - 1)
    with ThreadPoolExecutor(max_workers=PROBE_WORKERS) as pool:
        list(pool.map(_check_visual, plan.visuals[first : last + 1]))
    if plan.music_path is not None and not _streams(ffmpeg.probe(plan.music_path), "audio"):
        raise MediaError(f"music {Path(plan.music_path).name} has no audio stream")
    if plan.subtitles_path is not None and not Path(plan.subtitles_path).is_file():
        raise MediaError(f"subtitles file not found: {plan.subtitles_path}")
    if plan.presenter is not None:
        plan.presenter.check()
    return total_s


_CHECKED: set[tuple[str, str, int, int]] = set()


def _check_visual(visual: Visual) -> None:
    """Probe a visual once for as long as its file stays the same (a re-render probes only what changed)."""
    try:
        stat = os.stat(visual.path)
    except OSError:
        stat = None
    key = (str(visual.path), visual.kind, stat.st_size, stat.st_mtime_ns) if stat else None
    if key in _CHECKED:
        return
    info = ffmpeg.probe(visual.path)  # raises naming the file when it is missing or unreadable
    video = _streams(info, "video")
    if not video or not video[0].get("width"):
        raise MediaError(f"visual {Path(visual.path).name} has no picture")
    if visual.kind == "clip":
        duration = info.get("format", {}).get("duration") or video[0].get("duration")
        if duration is None or float(duration) <= 0:
            raise MediaError(f"clip {Path(visual.path).name} has no duration")
    if key is not None:
        _CHECKED.add(key)


def _streams(info: dict, codec_type: str) -> list[dict]:
    return [s for s in info.get("streams", []) if s.get("codec_type") == codec_type]


def _video_size(path: Path) -> tuple[int, int]:
    video = _streams(ffmpeg.probe(path), "video")
    if not video or not video[0].get("width") or not video[0].get("height"):
        raise MediaError(f"{Path(path).name} is not a picture")
    return int(video[0]["width"]), int(video[0]["height"])


def _timeline(plan: Plan, total_s: float) -> _Timeline:
    """Frame-exact timing: segment boundaries, each segment's footage and the pieces."""
    frame_count = max(1, round(total_s * plan.fps))
    count = len(plan.visuals)
    bounds = [0]
    for visual in plan.visuals[1:]:
        frame = round(visual.start_ms * plan.fps / 1000)
        # Every segment keeps at least one frame, whatever the rounding did.
        bounds.append(min(max(frame, bounds[-1] + 1), frame_count - (count - len(bounds))))
    bounds.append(frame_count)
    if any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise MediaError(f"{count} visuals do not fit in {frame_count} frames")
    # Frames of the transition at each join; it may not be longer than either segment it eats into.
    lengths = [b - a for a, b in zip(bounds, bounds[1:])]
    wanted = round(plan.transition_s * plan.fps)
    transitions = []
    for join, name in enumerate(plan.transitions or ("none",) * (count - 1)):
        frames = min(wanted, lengths[join], lengths[join + 1]) if name != "none" else 0
        transitions.append(frames if frames >= 2 else 0)
    origins = [0] + [bound - frames // 2 for bound, frames in zip(bounds[1:-1], transitions)]
    ends = [bound + frames - frames // 2 for bound, frames in zip(bounds[1:-1], transitions)] + [frame_count]
    pieces: list[_Piece] = []
    for index in range(count):
        steady_start = origins[index] + (transitions[index - 1] if index else 0)
        steady_end = ends[index] - (transitions[index] if index < count - 1 else 0)
        if steady_end > steady_start:
            pieces.append(_Piece((index,), steady_start, steady_end))
        if index < count - 1 and transitions[index]:
            pieces.append(_Piece((index, index + 1), ends[index] - transitions[index], ends[index]))
    lengths = [end - origin for origin, end in zip(origins, ends)]
    return _Timeline(origins, lengths, pieces)


# ---------------------------------------------------------------- the picture track


def _picture_graph(
    plan: Plan,
    timeline: _Timeline,
    pieces: list[_Piece],
    *,
    label: str,
) -> tuple[list[list[str]], str]:
    """Inputs and filtergraph that produce `pieces` as one stream labelled `label`."""
    width, height = _picture_size(plan)
    segments = sorted({index for piece in pieces for index in piece.segments})
    uses = {index: [piece for piece in pieces if index in piece.segments] for index in segments}
    inputs: list[list[str]] = []
    lines: list[str] = []
    branch: dict[tuple[int, int], str] = {}  # (segment, piece start) -> label of its footage
    for input_index, segment in enumerate(segments):
        visual = plan.visuals[segment]
        origin = timeline.origins[segment]
        # Footage is needed up to the end of its last piece in this graph, not beyond; a still's
        # from its first piece on (the motion is a function of the frame number, so the frames
        # before are not made: the transition out of a segment does not redo the whole segment).
        needed = max(piece.end for piece in uses[segment]) - origin
        skip = 0
        source = f"[{input_index}:v]"
        if visual.kind == "still":
            skip = min(piece.start for piece in uses[segment]) - origin
            inputs.append(["-framerate", str(plan.fps), "-i", str(visual.path)])
            chain = _still_chain(plan, segment, width, height, timeline.lengths[segment], needed, skip)
        else:
            # One decoding thread: frame threads each hold full-size frames (-140 MB measured
            # for 8 clips), and the encoder keeps both cores busy anyway. The clip loops for
            # as long as its segment needs.
            seek = ["-ss", f"{visual.offset_ms / 1000:.3f}"] if visual.offset_ms else []
            inputs.append(
                [
                    "-threads",
                    "1",
                    "-stream_loop",
                    "-1",
                    *seek,
                    "-t",
                    f"{needed / plan.fps + 1:.3f}",
                    "-i",
                    str(visual.path),
                ]
            )
            chain = _clip_chain(plan, width, height, needed)
        # Labels count within this graph, so a chunk's graph does not say where it is in the video.
        outputs = [f"[s{input_index}u{use}]" for use in range(len(uses[segment]))]
        split = f"split={len(outputs)}" if len(outputs) > 1 else "null"
        lines.append(f"{source}{chain},{split}{''.join(outputs)}")
        for use, (piece, output) in enumerate(zip(uses[segment], outputs)):
            first, last = piece.start - origin - skip, piece.end - origin - skip
            trimmed = f"t{input_index}u{use}"
            lines.append(f"{output}trim=start_frame={first}:end_frame={last},setpts=PTS-STARTPTS[{trimmed}]")
            branch[(segment, piece.start)] = trimmed
    joined: list[str] = []
    for number, piece in enumerate(pieces):
        if len(piece.segments) == 1:
            joined.append(branch[(piece.segments[0], piece.start)])
            continue
        outgoing, incoming = (branch[(segment, piece.start)] for segment in piece.segments)
        seconds = (piece.end - piece.start) / plan.fps
        lines.append(
            f"[{outgoing}][{incoming}]xfade=transition={plan.transitions[piece.segments[0]]}"
            f":duration={seconds:.6f}:offset=0[x{number}]"
        )
        joined.append(f"x{number}")
    streams = "".join(f"[{name}]" for name in joined)
    lines.append(
        f"{streams}concat=n={len(joined)}:v=1:a=0[{label}]" if len(joined) > 1 else f"{streams}null[{label}]"
    )
    return inputs, ";\n".join(lines)


def _still_chain(
    plan: Plan,
    segment: int,
    width: int,
    height: int,
    length: int,
    needed: int,
    skip: int = 0,
) -> str:
    """Scale once to a slightly larger cover, repeat the frame, then pan a frame-sized crop over
    it, or zoom: scale it per frame between the frame size and the cover, and crop the centre.
    The footage's frames `skip` to `needed` are made (frame f of them is the segment's frame
    f + skip).

    Timestamps are frame numbers in a 1/fps time base: `setpts=N/FR/TB` truncates float
    results and produced duplicate timestamps (dropped and repeated frames).
    """
    cover_w, cover_h = _even(width * (1 + KEN_BURNS_MARGIN)), _even(height * (1 + KEN_BURNS_MARGIN))
    motion = still_motion(plan.seed, segment)
    span = min(1.0, length / plan.fps / KEN_BURNS_FULL_PAN_S)
    loop = (
        f"scale={cover_w}:{cover_h}:force_original_aspect_ratio=increase,crop={cover_w}:{cover_h},"
        f"setsar=1,format=yuv420p,loop=loop=-1:size=1,trim=end_frame={needed - skip},settb=1/{plan.fps},setpts=N"
    )
    n = f"(n+{skip})" if skip else "n"
    if motion == "pan":
        dx, dy = _pan_direction(plan.seed, segment)
        # n runs over the segment's footage; the crop travels `span` of the margin, centred.
        progress = f"({n}/{max(1, length - 1)}-0.5)"
        x = f"(iw-ow)*(0.5+{dx * span:.4f}*{progress})"
        y = f"(ih-oh)*(0.5+{dy * span:.4f}*{progress})"
        return f"{loop},crop={width}:{height}:{_expr(x)}:{_expr(y)}:exact=1"
    # The scaled width grows (zoom in) or shrinks (zoom out) by `span` of the margin. Sizes are
    # even and at least the frame's; crop's own iw/ih keep the first frame's size, so the centred
    # x/y are computed from the same expressions.
    progress = f"{n}/{max(1, length - 1)}" if motion == "zoom-in" else f"(1-{n}/{max(1, length - 1)})"
    scaled = f"{width}*(1+{KEN_BURNS_MARGIN * span:.4f}*{progress})"
    scaled_w = f"2*ceil({scaled}/2)"
    scaled_h = f"2*ceil({scaled}*{height}/{width}/2)"
    return (
        f"{loop},scale=w={_expr(scaled_w)}:h={_expr(scaled_h)}:eval=frame:flags=bilinear,"
        f"crop={width}:{height}:{_expr(f'({scaled_w}-{width})/2')}:{_expr(f'({scaled_h}-{height})/2')}:exact=1,"
        "setsar=1"  # the per-frame scale leaves a sample aspect ratio that concat and xfade refuse
    )


def _clip_chain(plan: Plan, width: int, height: int, needed: int) -> str:
    """Clips move on their own: resample to the plan's rate, fill the frame, cut to length."""
    return (
        f"fps={plan.fps},scale={width}:{height}:force_original_aspect_ratio=increase,"
        f"crop={width}:{height},setsar=1,format=yuv420p,trim=end_frame={needed},settb=1/{plan.fps},setpts=N"
    )


def still_motion(seed: int, segment: int) -> str:
    """What the still of `segment` does (one of MOTIONS), reproducibly from the seed."""
    return random.Random(f"motion:{seed}:{segment}").choice(MOTIONS)


def _pan_direction(seed: int, segment: int) -> tuple[int, int]:
    """A pan direction per segment, reproducible from the seed, never the same twice in a row."""
    rng = random.Random(seed)
    previous = None
    for _ in range(segment + 1):
        choice = rng.choice([d for d in PAN_DIRECTIONS if d != previous])
        previous = choice
    return previous


def _picture_size(plan: Plan) -> tuple[int, int]:
    """The pictures' area in the frame: the frame, or the largest box of the pictures' aspect in it."""
    if plan.picture_size is None:
        return plan.width, plan.height
    picture_w, picture_h = plan.picture_size
    ratio = (picture_w / picture_h) / (plan.width / plan.height)
    if abs(ratio - 1) <= SAME_ASPECT:
        return plan.width, plan.height
    if ratio > 1:  # wider than the frame
        return plan.width, min(plan.height, _even(plan.width * picture_h / picture_w))
    return min(plan.width, _even(plan.height * picture_w / picture_h)), plan.height


# ---------------------------------------------------------------- chunks


def _compose(
    plan: Plan,
    out_path: Path,
    store: ChunkStore,
    *,
    segments: tuple[int, int] | None,
    on_progress: ProgressCallback | None,
    cancel: CancelCheck | None,
    timeout: float,
    scratch_dir: Path | None = None,
) -> Composition:
    """Every piece as its own chunk (made or reused), the audio as one more, joined by a stream copy.

    `segments` (first, last), inclusive, keeps only the pieces that show those segments and the
    narration under them: a preview made of the very chunks of the full render."""
    out_path = Path(out_path)
    if segments is not None and not 0 <= segments[0] <= segments[1] < len(plan.visuals):
        raise MediaError(
            f"segments {segments[0] + 1}-{segments[1] + 1} are not among the plan's {len(plan.visuals)}"
        )
    # A segment's transitions show its neighbours too.
    shown = None
    if segments is not None:
        shown = (max(0, segments[0] - 1), min(len(plan.visuals) - 1, segments[1] + 1))
    total_s = _check_plan(plan, shown)
    box = logo_box(plan)  # probes the logo: a corrupt one fails here, before any rendering
    timeline = _timeline(plan, total_s)
    pieces = timeline.pieces
    if segments is not None:
        first, last = segments
        pieces = [piece for piece in pieces if any(first <= index <= last for index in piece.segments)]
    start_frame, end_frame = pieces[0].start, pieces[-1].end
    out_path.parent.mkdir(parents=True, exist_ok=True)
    store.folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="compose-", dir=scratch_dir) as tmp:
        work_dir = Path(tmp)
        subtitles = AssEvents.read(plan.subtitles_path) if plan.subtitles_path is not None else None
        jobs = [
            _chunk_job(plan, box, timeline, piece, subtitles, work_dir, number)
            for number, piece in enumerate(pieces)
        ]
        track = _audio_track(plan, store, total_s, cancel, time_left(deadline))
        jobs.extend(
            _audio_jobs(track, _sample(start_frame, plan.fps), _sample(end_frame, plan.fps), work_dir)
        )
        return assemble(
            jobs,
            store,
            out_path,
            work_dir,
            on_progress=on_progress,
            cancel=cancel,
            deadline=deadline,
            sources=[track.path.name, track.info_path.name],
        )


def _sample(frame: int, fps: int) -> int:
    """The audio sample where video frame `frame` starts."""
    return round(frame * audio.AUDIO_RATE / fps)


def _chunk_job(
    plan: Plan,
    box: tuple[int, int, int, int] | None,
    timeline: _Timeline,
    piece: _Piece,
    subtitles: AssEvents | None,
    work_dir: Path,
    number: int,
) -> ChunkJob:
    """One piece with every overlay, encoded on its own (a closed GOP from its first frame).

    The chunk's name hashes exactly what it shows: the filter graph with each file replaced by
    its content hash, the subtitle events inside it (relative to its own start), the encoder
    settings. Nothing in it says where the piece is in the video, so a segment that only moves
    in time keeps its chunks."""
    inputs, graph = _picture_graph(plan, timeline, [piece], label="pic")
    tokens = {str(path): file_digest(path) for path in (plan.visuals[index].path for index in piece.segments)}
    base, ass_text = 0, ""
    overlays = []
    texts: dict[str, str] = {}
    fonts = ""
    if subtitles is not None:
        base, ass_text = subtitles.for_frames(piece.start, piece.end, plan.fps)
        ass_path = work_dir / f"piece{number:04d}.ass"
        texts[str(ass_path)] = ass_text
        fonts = str(work_dir / "fonts")
        overlays.append(_subtitles_filter(ass_path, Path(fonts)))
        tokens[str(ass_path)] = "piece.ass"
        tokens[fonts] = f"fonts:{default_font_path().name}"
    # Frames count from `base` (0 unless a subtitle began before the piece: its animations and
    # karaoke run from the event's own start), so subtitles and texts show at their frames.
    lines = [graph, f"[pic]settb=1/{plan.fps},setpts=N+{base}[timed]"]
    current = "timed"
    if _picture_size(plan) != (plan.width, plan.height):
        lines.append(_fill_filter(plan, current, "framed"))
        current = "framed"
    if shown := _presenter_frames(plan, timeline, piece):
        # The presenter's frames of this piece: its clip from the piece's time on (the clip is timed like
        # the narration), so a piece that shows it is named by the clip and the piece's place.
        clip_path = plan.presenter.clip_path
        seconds = (piece.end - piece.start + 1) / plan.fps
        inputs.append(["-ss", f"{piece.start / plan.fps:.6f}", "-t", f"{seconds:.6f}", "-i", str(clip_path)])
        tokens[str(clip_path)] = file_digest(clip_path)
        chain, position = presenter.layer_filters(
            plan.presenter, width=plan.width, height=plan.height, fps=plan.fps
        )
        lines.append(f"[{len(inputs) - 1}:v]{chain},settb=1/{plan.fps},setpts=N+{base}[presenter]")
        enable = (
            ""
            if shown == [(0, piece.end - piece.start)]
            else "+".join(f"between(n,{first},{end - 1})" for first, end in shown)
        )
        lines.append(
            f"[{current}][presenter]overlay={position}:eof_action=pass"
            + (f":enable='{enable}'" if enable else "")
            + "[presented]"
        )
        current = "presented"
    overlays.extend(_text_filters(plan, box))
    if overlays:
        lines.append(f"[{current}]{','.join(overlays)}[texted]")
        current = "texted"
    if box is not None:
        inputs.append(["-i", str(plan.logo_path)])
        tokens[str(plan.logo_path)] = file_digest(plan.logo_path)
        x, y, logo_w, logo_h = box
        lines.append(f"[{len(inputs) - 1}:v]scale={logo_w}:{logo_h},format=rgba[logo]")
        # overlay's default output is yuv420: `format=auto` would pick rgba for an rgba logo
        # and convert every full frame twice.
        lines.append(f"[{current}][logo]overlay=x={x}:y={y}[logoed]")
        current = "logoed"
    lines.append(f"[{current}]setpts=N,format=yuv420p[vout]")
    script = work_dir / f"piece{number:04d}.filtergraph"
    texts[str(script)] = ";\n".join(lines)
    encoder = _video_encoder(plan)
    flat_inputs = [arg for group in inputs for arg in group]
    identity = {
        "format": CHUNK_FORMAT,
        "ffmpeg": ffmpeg.version(),
        "size": [plan.width, plan.height],
        "fps": plan.fps,
        "inputs": _tokenized(" ".join(flat_inputs), tokens),
        "graph": _tokenized(texts[str(script)], tokens),
        "subtitles": ass_text,
        "encoder": encoder,
    }
    # Several chunks run at a time: filter threads of their own only contend for the same cores.
    args = [
        "-filter_complex_threads",
        "1",
        *flat_inputs,
        "-filter_complex_script",
        str(script),
        "-map",
        "[vout]",
        "-an",
        *encoder,
    ]
    return ChunkJob(
        f"{digest(identity)}.mp4",
        args,
        (piece.end - piece.start) / plan.fps,
        inputs={path: content for path, content in tokens.items() if path not in texts and path != fonts},
        texts=texts,
        fonts=fonts,
    )


def _presenter_frames(plan: Plan, timeline: _Timeline, piece: _Piece) -> list[tuple[int, int]]:
    """The frames [first, end) of `piece`, counted from its start, that show the presenter."""
    if plan.presenter is None:
        return []
    frame_count = timeline.pieces[-1].end
    return [
        (max(first, piece.start) - piece.start, min(end, piece.end) - piece.start)
        for first, end in presenter.shown_frames(plan.presenter, fps=plan.fps, frame_count=frame_count)
        if first < piece.end and end > piece.start
    ]


def _video_encoder(plan: Plan) -> list[str]:
    """The same for every chunk, so their streams join by a plain copy. x264's threads are fixed:
    its output depends on them, and a chunk must be the same whichever host made it."""
    return [
        "-c:v",
        "libx264",
        "-preset",
        plan.preset,
        "-crf",
        str(plan.crf),
        "-pix_fmt",
        "yuv420p",
        "-profile:v",
        "high",
        "-threads",
        str(CHUNK_THREADS),
        "-fps_mode",
        "passthrough",
        "-video_track_timescale",
        str(plan.fps * 512),
    ]


def _audio_track(
    plan: Plan, store: ChunkStore, total_s: float, cancel: CancelCheck | None, timeout: float
) -> audio.Track:
    """The final audio track (`audio.final_audio`): the mix and its gain, kept in the store named by
    what it is made of (narration, music, its volume, the loudness target, the length), made only
    when missing: its loudness passes are paid once for every render and preview of the same sound."""
    identity = {
        "format": CHUNK_FORMAT,
        "ffmpeg": ffmpeg.version(),
        "narration": file_digest(plan.narration_path),
        "music": file_digest(plan.music_path) if plan.music_path is not None else None,
        "music_volume": plan.music_volume,
        "loudness": plan.loudness_lufs,
        "true_peak": audio.DEFAULT_TRUE_PEAK_DB,
        "duration": round(total_s, 6),
    }
    track_path = store.folder / f"audio-{digest(identity)}.f32"
    info_path = audio.info_path(track_path)
    if chunk_present(store, info_path.name) and chunk_present(store, track_path.name):
        return audio.Track.read(track_path)
    part = store.folder / f".{track_path.name}.{os.getpid()}-{threading.get_ident()}.part"
    try:
        made = audio.final_audio(
            plan.narration_path,
            part,
            duration_s=total_s,
            music_path=plan.music_path,
            music_volume=plan.music_volume,
            loudness_lufs=plan.loudness_lufs,
            cancel=cancel,
            timeout=timeout,
        )
        os.replace(part, track_path)  # the samples, then what says they are whole
        os.replace(made.info_path, info_path)
    finally:
        part.unlink(missing_ok=True)
        audio.info_path(part).unlink(missing_ok=True)
    if store.keep is not None:
        store.keep(track_path)
        store.keep(info_path)
    return audio.Track.read(track_path)


def _audio_jobs(track: audio.Track, first: int, last: int, work_dir: Path) -> list[ChunkJob]:
    """Samples [first, last) of the track as AAC slices (`audio.slices`), each named by its samples,
    the gain and limiter, and the encoder: an edit re-encodes only the slices whose sound changed."""
    level = track.level_filter()
    jobs = []
    for number, piece in enumerate(audio.slices(track, first, last)):
        identity = {
            "format": CHUNK_FORMAT,
            "ffmpeg": ffmpeg.version(),
            "samples": piece.digest,
            "channels": track.channels,
            "frames": piece.frames,
            "roll": [audio.PREROLL_FRAMES, audio.POSTROLL_FRAMES],
            "level": level,
            "encoder": audio.AAC_ENCODER,
        }
        source = work_dir / f"audio{number:04d}.f32"
        # The encoder's first frame primes it: the first slice keeps it, to start the stream.
        kept = (audio.PREROLL_FRAMES + (0 if number == 0 else 1), audio.PREROLL_FRAMES + 1 + piece.frames)
        jobs.append(
            ChunkJob(
                f"audio-{digest(identity)}.aac",
                [*track.input_args(source), "-af", level, *audio.AAC_ENCODER, "-vn"],
                piece.frames * audio.AAC_FRAME / audio.AUDIO_RATE,
                samples=Samples(track.path.name, piece, str(source)),
                audio_frames=kept,
            )
        )
    return jobs


def _tokenized(text: str, tokens: dict[str, str]) -> str:
    """`text` with every path in `tokens` (as written in an argument or in a filter option)
    replaced by its token; longest paths first, so no path replaces part of another."""
    for path in sorted(tokens, key=len, reverse=True):
        text = text.replace(_option(path), tokens[path]).replace(path, tokens[path])
    return text


def _fill_filter(plan: Plan, source: str, label: str) -> str:
    """The picture centred in the frame over a blurred copy that fills it (a horizontal picture
    in a vertical frame, or the other way round).

    The blur runs on a 1/8-size copy: the same look for a fraction of the cost.
    """
    small_w, small_h = _even(plan.width / 8), _even(plan.height / 8)
    return (
        f"[{source}]split=2[h2vfg][h2vbg];"
        f"[h2vbg]scale={small_w}:{small_h}:force_original_aspect_ratio=increase,"
        f"crop={small_w}:{small_h},boxblur=4:2,scale={plan.width}:{plan.height},setsar=1[h2vblur];"
        f"[h2vblur][h2vfg]overlay=x=(W-w)/2:y=(H-h)/2[{label}]"
    )


def _subtitles_filter(subtitles_path: Path, fonts_dir: Path) -> str:
    """libass with a fonts folder holding only the project's CJK font (`chunks.fonts_folder`, made
    when the chunk is)."""
    return f"ass=filename={_option(str(subtitles_path))}:fontsdir={_option(str(fonts_dir))}"


def _text_filters(plan: Plan, box: tuple[int, int, int, int] | None) -> list[str]:
    """One drawtext per line of the job's texts, as `layout.text_lines` places them."""
    filters = []
    lines = text_lines(
        plan.texts, width=plan.width, height=plan.height, subtitles_top=plan.subtitles_top, logo_box=box
    )
    for line in lines:
        size = line.font_size
        filters.append(
            f"drawtext={_font_option()}:text={_option(line.text)}:expansion=none"
            f":fontsize={size}:fontcolor=white:borderw={max(1, size // 16)}:bordercolor=black@0.7"
            f":shadowx={max(1, size // 20)}:shadowy={max(1, size // 20)}:shadowcolor=black@0.5"
            f":x={line.center_x}-text_w/2:y={round(line.top + (line.line_height - size) / 2)}"
        )
    return filters


def _font_option() -> str:
    """drawtext's font: by file, except for a collection, whose first face is Japanese.

    drawtext (ffmpeg 5.1) cannot pick a face inside a .ttc; asking fontconfig for the family
    gets the Simplified Chinese face (Regular: drawtext takes `font` as a bare family name).
    """
    path = default_font_path()
    if path.suffix.lower() == ".ttc":
        return f"font={_option(FAMILY)}"
    return f"fontfile={_option(str(path))}"


# ---------------------------------------------------------------- small helpers


def _darken_band(picture: Image.Image, top: float, bottom: float) -> None:
    """Darken a horizontal band with soft edges, so white text reads on any picture."""
    mask = Image.new("L", (1, picture.height), 0)
    feather = max(1.0, (bottom - top) * 0.35)
    for y in range(picture.height):
        distance = max(top - y, y - bottom, 0)
        mask.putpixel((0, y), int(150 * max(0.0, 1 - distance / feather)))
    mask = mask.resize(picture.size)
    picture.paste(Image.new("RGB", picture.size, "black"), (0, 0), mask)


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _option(value: str) -> str:
    """Escape a string for a filter option inside a filtergraph (both escaping levels)."""
    for special in ("\\", "'", ":"):
        value = value.replace(special, "\\" + special)
    return _expr(value)


def _expr(value: str) -> str:
    """Escape an expression for the filtergraph level only (its commas, brackets, quotes)."""
    return "".join("\\" + char if char in "\\'[],;" else char for char in value)
