"""Compose the final video: pictures with motion, transitions, subtitles, texts, logo, music.

One module past 500 lines because it is one ffmpeg plan: the filter graph, the picture processes
and the encoder share the piece timing and frame geometry, and split apart they would pass them around.

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
- One ffmpeg process keeps every input's buffers until it exits (~6 MB per still plus
  ~13 MB per transition at this size), so the frames are made by a series of small
  "picture processes" of at most `SEGMENTS_PER_PASS` segments each, which also burn the
  subtitles (libass), draw the texts and overlay the logo. They write raw frames into one
  FIFO; a single encoder process reads it as one stream, takes the final audio track
  (`audio.final_audio`: music under the voice, loudness-normalized, made first) and encodes
  once. Memory stays bounded whatever the length, nothing is encoded twice, and the overlay
  work runs beside x264 instead of in front of it.
  Benchmark (`manage.py benchmark compose`): ~1.35x a plain re-encode (the two loudnorm passes of
  the audio track cost ~2 CPU-s a minute of it), peak RSS ~250 MB.
"""

import contextlib
import fcntl
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from PIL import Image, ImageOps

from . import audio, ffmpeg
from .cards import draw_centered_lines, fit_text, font, line_boxes, line_height
from .errors import Cancelled, MediaError
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
# What one picture process may open (see the module docstring): a still counts 1, a clip
# counts CLIP_WEIGHT, as its decoder keeps several full-size frames (8 stills ~250 MB,
# 8 clips from 1080p sources ~315 MB measured, subtitles and logo included).
SEGMENTS_PER_PASS = 8
CLIP_WEIGHT = 2
# Larger FIFO buffer (Linux caps it at /proc/sys/fs/pipe-max-size, 1 MiB by default):
# fewer wake-ups per 1.5 MB frame.
FIFO_BYTES = 1 << 20
# Aspects this close fill the frame (a few pixels cropped) rather than get a blurred fill:
# 1360x768 and 1920x1080 are both "16:9".
SAME_ASPECT = 0.02
PROBE_WORKERS = 4

ProgressCallback = Callable[[float], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class Visual:
    path: Path
    kind: Literal["still", "clip"]
    start_ms: int
    end_ms: int


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
    on_progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    timeout: float = 3300,
) -> Path:
    """Render `plan` to an MP4 at `out_path` whose duration is the narration's."""
    out_path = Path(out_path)
    total_s = _check_plan(plan)
    box = logo_box(plan)  # probes the logo: a corrupt one fails here, before any rendering
    timeline = _timeline(plan, total_s)
    weights = [CLIP_WEIGHT if visual.kind == "clip" else 1 for visual in plan.visuals]
    chunks = _chunks(timeline, weights, SEGMENTS_PER_PASS)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="compose-") as tmp:
        work_dir = Path(tmp)
        try:
            audio_path = audio.final_audio(
                plan.narration_path, work_dir / "audio.wav", duration_s=total_s, music_path=plan.music_path,
                music_volume=plan.music_volume, loudness_lufs=plan.loudness_lufs, cancel=cancel,
                timeout=_remaining(deadline),
            )
            _render_streaming(plan, box, timeline, chunks, total_s, audio_path, out_path, work_dir,
                              on_progress=on_progress, cancel=cancel, deadline=deadline)
        except BaseException:
            out_path.unlink(missing_ok=True)
            raise
    return out_path


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
        title.strip(), max_width=width * 0.86, max_height=height * (bottom_limit - top_limit) * 0.8,
        start_size=max(16, round(min(width, height) / 9)), max_lines=max_lines,
    )
    block = line_height(text_font) * len(lines)
    padding = text_font.size * 0.6
    # As low as the safe area lets it, so the band covers as little of the picture as it can.
    center_y = height * bottom_limit - padding - block / 2
    center_y = max(center_y, height * top_limit + padding + block / 2)
    boxes = [box for _x, _y, box in line_boxes(width, lines, text_font, center_y=center_y)]
    return CoverLayout(font_size=text_font.size, lines=lines, boxes=boxes,
                       band=(center_y - block / 2 - padding, center_y + block / 2 + padding), center_y=center_y)


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
    ffmpeg.run(["-ss", f"{at_s:.3f}", "-i", str(video_path), "-frames:v", "1", "-q:v", "2",
                "-update", "1", str(out_path)], timeout=120)
    if not out_path.exists() or out_path.stat().st_size == 0:
        raise MediaError(f"no frame at {at_s:.2f} s in {Path(video_path).name}")
    return out_path


# ---------------------------------------------------------------- checks and timing


def _check_plan(plan: Plan) -> float:
    """Validate the plan and probe every input before the long render; the narration's length."""
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
    with ThreadPoolExecutor(max_workers=PROBE_WORKERS) as pool:
        list(pool.map(_check_visual, plan.visuals))
    if plan.music_path is not None and not _streams(ffmpeg.probe(plan.music_path), "audio"):
        raise MediaError(f"music {Path(plan.music_path).name} has no audio stream")
    if plan.subtitles_path is not None and not Path(plan.subtitles_path).is_file():
        raise MediaError(f"subtitles file not found: {plan.subtitles_path}")
    return total_s


def _check_visual(visual: Visual) -> None:
    info = ffmpeg.probe(visual.path)  # raises naming the file when it is missing or unreadable
    video = _streams(info, "video")
    if not video or not video[0].get("width"):
        raise MediaError(f"visual {Path(visual.path).name} has no picture")
    if visual.kind == "clip":
        duration = info.get("format", {}).get("duration") or video[0].get("duration")
        if duration is None or float(duration) <= 0:
            raise MediaError(f"clip {Path(visual.path).name} has no duration")


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


def _chunks(timeline: _Timeline, weights: list[int], budget: int) -> list[list[_Piece]]:
    """Group pieces so that the segments each group shows weigh at most `budget`.

    A group ends in the middle of a steady piece, never inside a transition, so each group
    is complete on its own and the groups simply play one after the other.
    """
    chunks: list[list[_Piece]] = [[]]
    seen: set[int] = set()
    for piece in timeline.pieces:
        fresh = set(piece.segments) - seen
        if fresh and seen and sum(weights[i] for i in seen | fresh) > budget:
            previous = chunks[-1][-1]
            if len(piece.segments) == 1:
                # No transitions: a segment boundary is a clean cut.
                chunks.append([])
                seen = set()
            elif previous.segments == piece.segments[:1] and previous.end - previous.start >= 2:
                # Cut the steady piece before this transition in two; the new group starts
                # with its second half, so no transition is split.
                middle = (previous.start + previous.end) // 2
                chunks[-1][-1] = _Piece(previous.segments, previous.start, middle)
                chunks.append([_Piece(previous.segments, middle, previous.end)])
                seen = set(previous.segments)
            # Otherwise there is no clean cut here (a segment no longer than a transition):
            # this group takes one more segment.
        chunks[-1].append(piece)
        seen |= set(piece.segments)
    return chunks


# ---------------------------------------------------------------- the picture track


def _picture_graph(
    plan: Plan, timeline: _Timeline, pieces: list[_Piece], *, label: str,
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
        # Footage is needed up to the end of its last piece in this graph, not beyond.
        needed = max(piece.end for piece in uses[segment]) - origin
        source = f"[{input_index}:v]"
        if visual.kind == "still":
            inputs.append(["-framerate", str(plan.fps), "-i", str(visual.path)])
            chain = _still_chain(plan, segment, width, height, timeline.lengths[segment], needed)
        else:
            # One decoding thread: frame threads each hold full-size frames (-140 MB measured
            # for 8 clips), and the encoder keeps both cores busy anyway. The clip loops for
            # as long as its segment needs.
            inputs.append(["-threads", "1", "-stream_loop", "-1", "-t", f"{needed / plan.fps + 1:.3f}",
                           "-i", str(visual.path)])
            chain = _clip_chain(plan, width, height, needed)
        outputs = [f"[s{segment}p{piece.start}]" for piece in uses[segment]]
        split = f"split={len(outputs)}" if len(outputs) > 1 else "null"
        lines.append(f"{source}{chain},{split}{''.join(outputs)}")
        for piece, output in zip(uses[segment], outputs):
            first, last = piece.start - origin, piece.end - origin
            trimmed = f"t{segment}p{piece.start}"
            lines.append(f"{output}trim=start_frame={first}:end_frame={last},setpts=PTS-STARTPTS[{trimmed}]")
            branch[(segment, piece.start)] = trimmed
    joined: list[str] = []
    for number, piece in enumerate(pieces):
        if len(piece.segments) == 1:
            joined.append(branch[(piece.segments[0], piece.start)])
            continue
        outgoing, incoming = (branch[(segment, piece.start)] for segment in piece.segments)
        seconds = (piece.end - piece.start) / plan.fps
        lines.append(f"[{outgoing}][{incoming}]xfade=transition={plan.transitions[piece.segments[0]]}"
                     f":duration={seconds:.6f}:offset=0[x{number}]")
        joined.append(f"x{number}")
    streams = "".join(f"[{name}]" for name in joined)
    lines.append(f"{streams}concat=n={len(joined)}:v=1:a=0[{label}]" if len(joined) > 1
                 else f"{streams}null[{label}]")
    return inputs, ";\n".join(lines)


def _still_chain(plan: Plan, segment: int, width: int, height: int, length: int, needed: int) -> str:
    """Scale once to a slightly larger cover, repeat the frame, then pan a frame-sized crop over
    it, or zoom: scale it per frame between the frame size and the cover, and crop the centre.

    Timestamps are frame numbers in a 1/fps time base: `setpts=N/FR/TB` truncates float
    results and produced duplicate timestamps (dropped and repeated frames).
    """
    cover_w, cover_h = _even(width * (1 + KEN_BURNS_MARGIN)), _even(height * (1 + KEN_BURNS_MARGIN))
    motion = still_motion(plan.seed, segment)
    span = min(1.0, length / plan.fps / KEN_BURNS_FULL_PAN_S)
    loop = (
        f"scale={cover_w}:{cover_h}:force_original_aspect_ratio=increase,crop={cover_w}:{cover_h},"
        f"setsar=1,format=yuv420p,loop=loop=-1:size=1,trim=end_frame={needed},settb=1/{plan.fps},setpts=N"
    )
    if motion == "pan":
        dx, dy = _pan_direction(plan.seed, segment)
        # n runs over the segment's footage; the crop travels `span` of the margin, centred.
        progress = f"(n/{max(1, length - 1)}-0.5)"
        x = f"(iw-ow)*(0.5+{dx * span:.4f}*{progress})"
        y = f"(ih-oh)*(0.5+{dy * span:.4f}*{progress})"
        return f"{loop},crop={width}:{height}:{_expr(x)}:{_expr(y)}:exact=1"
    # The scaled width grows (zoom in) or shrinks (zoom out) by `span` of the margin. Sizes are
    # even and at least the frame's; crop's own iw/ih keep the first frame's size, so the centred
    # x/y are computed from the same expressions.
    progress = f"n/{max(1, length - 1)}" if motion == "zoom-in" else f"(1-n/{max(1, length - 1)})"
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


class _FramePipe:
    """A FIFO that picture processes fill one after another and the encoder process reads.

    We hold it open read-write ourselves: no open() of the FIFO ever blocks, and the encoder
    sees one continuous stream across the writers until `close()` gives it end of stream.
    """

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self._fd = os.open(path, os.O_RDWR)
        self._lock = threading.Lock()
        self._closed = False
        with contextlib.suppress(OSError):  # a smaller buffer only costs a little speed
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, FIFO_BYTES)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)

    def discard_until(self, finished: Callable[[], bool]) -> None:
        """Read and drop frames, so a writer whose reader is gone cannot block on a full
        pipe: it keeps printing progress and so notices that it was cancelled."""
        os.set_blocking(self._fd, False)
        while not finished():
            with self._lock:
                if not self._closed:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self._fd, FIFO_BYTES):
                            pass
            time.sleep(0.05)


def _render_streaming(
    plan: Plan, box: tuple[int, int, int, int] | None, timeline: _Timeline,
    chunks: list[list[_Piece]], total_s: float, audio_path: Path, out_path: Path, work_dir: Path, *,
    on_progress: ProgressCallback | None, cancel: CancelCheck | None, deadline: float,
) -> None:
    """Picture processes write finished raw frames into a FIFO; the encoder process reads it."""
    pipe = _FramePipe(work_dir / "frames.yuv")
    stop = threading.Event()
    picture_errors: list[BaseException] = []

    def write_pictures() -> None:
        try:
            for number, pieces in enumerate(chunks):
                if stop.is_set():
                    raise Cancelled("cancelled between picture processes")
                _write_frames(plan, box, timeline, pieces, pipe.path, work_dir, number,
                              cancel=stop.is_set, timeout=_remaining(deadline))
        except BaseException as error:  # handed to the calling thread below
            picture_errors.append(error)
        finally:
            pipe.close()  # end of stream for the encoder, after the last frame or a failure

    # The encoder runs in the calling thread, so on_progress and cancel are only ever
    # called from there; the picture processes are driven from a helper thread.
    pictures = threading.Thread(target=write_pictures, name="compose-pictures", daemon=True)
    pictures.start()
    try:
        _encode(plan, pipe.path, audio_path, total_s, out_path, on_progress=on_progress,
                cancel=lambda: bool(picture_errors) or (cancel is not None and cancel()),
                timeout=_remaining(deadline))
    except BaseException:
        # Picture errors recorded before the encoder stopped are the cause of its stop.
        pictures_failed_first = bool(picture_errors)
        stop.set()
        pipe.discard_until(lambda: not pictures.is_alive())
        if pictures_failed_first:
            raise picture_errors[0] from None
        raise
    pictures.join()
    if picture_errors:
        # The encoder saw an early end of stream and finished a short video: not a result.
        raise picture_errors[0]


def _write_frames(
    plan: Plan, box: tuple[int, int, int, int] | None, timeline: _Timeline, pieces: list[_Piece],
    fifo: Path, work_dir: Path, number: int, *, cancel: CancelCheck, timeout: float,
) -> None:
    """One picture process: `pieces` with every overlay, as raw yuv420p frames into the FIFO.

    The overlays run here rather than in the encoder so that their cost runs beside x264
    instead of in front of it.
    """
    inputs, graph = _picture_graph(plan, timeline, pieces, label="pic")
    # Absolute frame numbers again, so subtitles and texts appear at their times.
    lines = [graph, f"[pic]settb=1/{plan.fps},setpts=N+{pieces[0].start}[timed]"]
    current = "timed"
    if _picture_size(plan) != (plan.width, plan.height):
        lines.append(_fill_filter(plan, current, "framed"))
        current = "framed"
    overlays = []
    if plan.subtitles_path is not None:
        overlays.append(_subtitles_filter(plan.subtitles_path, work_dir))
    overlays.extend(_text_filters(plan, box))
    if overlays:
        lines.append(f"[{current}]{','.join(overlays)}[texted]")
        current = "texted"
    if box is not None:
        inputs.append(["-i", str(plan.logo_path)])
        x, y, logo_w, logo_h = box
        lines.append(f"[{len(inputs) - 1}:v]scale={logo_w}:{logo_h},format=rgba[logo]")
        # overlay's default output is yuv420: `format=auto` would pick rgba for an rgba logo
        # and convert every full frame twice.
        lines.append(f"[{current}][logo]overlay=x={x}:y={y}[logoed]")
        current = "logoed"
    lines.append(f"[{current}]format=yuv420p[vout]")
    script = work_dir / f"frames{number:03d}.filtergraph"
    script.write_text(";\n".join(lines))
    ffmpeg.run(
        [*(arg for group in inputs for arg in group), "-filter_complex_script", str(script),
         "-map", "[vout]", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", str(fifo)],
        timeout=timeout, cancel=cancel,
    )


def _encode(
    plan: Plan, fifo: Path, audio_path: Path, total_s: float, out_path: Path, *,
    on_progress: ProgressCallback | None, cancel: CancelCheck, timeout: float,
) -> None:
    """The encoder process: frames from the FIFO, the final audio track, one H.264 and one AAC encode."""
    args = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", f"{plan.width}x{plan.height}",
            "-framerate", str(plan.fps), "-i", str(fifo), "-i", str(audio_path), "-map", "0:v", "-map", "1:a",
            "-c:v", "libx264", "-preset", plan.preset, "-crf", str(plan.crf), "-pix_fmt", "yuv420p",
            "-r", str(plan.fps), "-c:a", "aac", "-b:a", "160k", "-ar", str(audio.AUDIO_RATE),
            "-movflags", "+faststart", str(out_path)]
    ffmpeg.run(args, timeout=timeout, duration_s=total_s, on_progress=on_progress, cancel=cancel)


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise MediaError("the render ran out of time", permanent=False)
    return remaining


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


def _subtitles_filter(subtitles_path: Path, work_dir: Path) -> str:
    """libass with a fonts folder holding only the project's CJK font.

    Pointing fontsdir at the whole Noto CJK folder makes libass load all four ~20 MB
    collections into memory (+130 MB measured); fontconfig still supplies the other faces.
    """
    fonts_dir = work_dir / "fonts"
    fonts_dir.mkdir(exist_ok=True)
    font_path = default_font_path()
    link = fonts_dir / font_path.name
    if not link.exists():
        try:
            link.symlink_to(font_path)
        except OSError:
            shutil.copyfile(font_path, link)
    return f"ass=filename={_option(str(subtitles_path))}:fontsdir={_option(str(fonts_dir))}"


def _text_filters(plan: Plan, box: tuple[int, int, int, int] | None) -> list[str]:
    """One drawtext per line of the job's texts, as `layout.text_lines` places them."""
    filters = []
    lines = text_lines(plan.texts, width=plan.width, height=plan.height,
                       subtitles_top=plan.subtitles_top, logo_box=box)
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

