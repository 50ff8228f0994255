"""Compose the final video: pictures with motion, transitions, subtitles, texts, logo, music.

One module past 500 lines because it is one ffmpeg plan: the filter graph, the overlays and the
chunk of each piece share the piece timing and frame geometry, and split apart they would pass them
around. What does not depend on the plan (making, finding and joining chunks) is media_engine/chunks.py.

How it is built, and why (measured on a 2-core host, 60 s at 1360x768, 12 stills):
- A still is decoded and scaled once, then repeated with the `loop` filter; Ken Burns is a
  `crop` whose x/y follow the frame number. Crop only moves data pointers, so the motion is
  nearly free (zoompan, or a scale on every frame, costs more than the encoder itself).
- The timeline is cut into pieces: the steady part of each segment and the short windows
  where two segments overlap. `xfade` runs only on those windows and `concat` joins the
  pieces; a chain of full-length xfades costs ~2 ms on every frame that passes through it.
- Each piece is its own chunk: one small ffmpeg process makes its frames (burning the
  subtitles with libass, drawing the texts, overlaying the logo) and encodes them with x264
  from a keyframe, with the same settings for every chunk. A chunk is named by a hash of
  exactly what it shows (the filter graph with each file replaced by its content hash, the
  subtitle events inside it relative to its own start, the encoder settings), so an edit
  re-encodes only the chunks that show it; a segment that only moves in time keeps its
  chunks (the timeline is in whole frames). The audio is encoded once on its own, and the
  video is a stream copy of the chunks (concat demuxer) with the audio. Memory is bounded by
  one piece (two inputs at most) per process, whatever the length; CHUNK_WORKERS chunks are
  made at a time, which also keeps both cores busy while a process starts.
  Benchmarks on a shared 2-core host: `manage.py benchmark compose` 0.8-1.3x a plain re-encode
  (noisy), peak RSS ~247 MB; `benchmark rerender` (10 min, 103 segments): a new picture 0.03x
  and an edited sentence 0.09x the full render, a segment preview 0.4 s.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from PIL import Image, ImageOps

from . import ffmpeg
from .cards import draw_centered_lines, fit_text, font, line_height, wrap_text
from .chunks import AssEvents, ChunkJob, ChunkStore, Composition, assemble, digest, file_digest
from .errors import MediaError
from .fonts import FAMILY, default_font_path

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
# x264's output depends on its thread count: fixed, so a chunk is the same on every host.
CHUNK_THREADS = 2
# Part of every chunk's name: change it when the way chunks are made changes.
CHUNK_FORMAT = 1
# h2v: the horizontal picture keeps 16:9 inside the vertical frame.
H2V_ASPECT = 9 / 16
AUDIO_RATE = 48000
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
class TextOverlay:
    text: str
    position: Literal["top", "center", "bottom"] = "top"
    start_ms: int = 0
    end_ms: int | None = None  # None = to the end
    font_size: int | None = None


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
    music_path: Path | None = None
    music_volume: float = 0.15  # under the voice; ducked further while speaking
    transition: str = "fade"  # any ffmpeg xfade name, or "none"
    transition_s: float = 0.5
    texts: list[TextOverlay] = field(default_factory=list)
    fps: int = 30
    seed: int = 0  # Ken Burns directions vary per still, reproducibly
    h2v: bool = False  # render a horizontal picture inside a vertical frame (blurred fill)
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
) -> Composition:
    """Render `plan` to an MP4 at `out_path` whose duration is the narration's.

    Chunks already in `store` are reused and new ones are kept there; without a store they
    live only as long as the render."""
    if store is not None:
        return _compose(plan, out_path, store, segments=None, on_progress=on_progress, cancel=cancel,
                        timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="chunks-") as folder:
        return _compose(plan, out_path, ChunkStore(Path(folder)), segments=None, on_progress=on_progress,
                        cancel=cancel, timeout=timeout)


def preview(
    plan: Plan, segment: int, out_path: Path, *, store: ChunkStore, cancel: CancelCheck | None = None,
    timeout: float = 600,
) -> Composition:
    """One segment with its transitions, narration, subtitles and motion: the full render's own
    chunks for it (reused when that render made them), joined with the narration under them."""
    return _compose(plan, out_path, store, segments=(segment, segment), on_progress=None, cancel=cancel,
                    timeout=timeout)


def logo_box(plan: Plan) -> tuple[int, int, int, int] | None:
    """x, y, w, h of the logo in the frame, or None without a logo."""
    if plan.logo_path is None:
        return None
    if plan.logo_corner not in LOGO_CORNERS:
        raise MediaError(f"unknown logo corner {plan.logo_corner!r}; use one of {', '.join(LOGO_CORNERS)}")
    logo_w, logo_h = _video_size(plan.logo_path)
    width = _even(plan.width * plan.logo_scale)
    height = _even(width * logo_h / logo_w)
    margin = round(min(plan.width, plan.height) * 0.03)
    x = margin if plan.logo_corner.endswith("left") else plan.width - width - margin
    y = margin if plan.logo_corner.startswith("top") else plan.height - height - margin
    return x, y, width, height


def make_cover(image_path: Path, title: str, out_path: Path, *, width: int, height: int) -> Path:
    """A JPEG cover: the picture filling the frame, the title large over a darkened band."""
    try:
        with Image.open(image_path) as source:
            picture = ImageOps.fit(source.convert("RGB"), (width, height), Image.Resampling.LANCZOS)
    except (OSError, ValueError) as error:
        raise MediaError(f"cover picture {Path(image_path).name} is unreadable: {error}") from error
    if title.strip():
        text_font, lines = fit_text(
            title.strip(), max_width=width * 0.88, max_height=height * 0.45,
            start_size=max(16, round(min(width, height) / 9)), max_lines=4,
        )
        center_y = height * 0.68
        band_half = line_height(text_font) * len(lines) / 2 + text_font.size * 0.6
        _darken_band(picture, center_y - band_half, center_y + band_half)
        draw_centered_lines(picture, lines, text_font, center_y=center_y)
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


def _check_plan(plan: Plan, shown: tuple[int, int] | None = None) -> float:
    """Validate the plan and probe every input (the visuals `shown`, first to last, when given)
    before the long render; the narration's length."""
    if plan.width <= 0 or plan.height <= 0 or plan.width % 2 or plan.height % 2:
        raise MediaError(f"frame size must be positive and even, got {plan.width}x{plan.height}")
    if plan.fps <= 0:
        raise MediaError(f"fps must be positive, got {plan.fps}")
    if plan.transition != "none" and plan.transition not in XFADE_TRANSITIONS:
        raise MediaError(f"unknown transition {plan.transition!r}")
    if not plan.visuals:
        raise MediaError("the plan has no visuals")
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
        list(pool.map(_check_visual, plan.visuals[first:last + 1]))
    if plan.music_path is not None and not _streams(ffmpeg.probe(plan.music_path), "audio"):
        raise MediaError(f"music {Path(plan.music_path).name} has no audio stream")
    if plan.subtitles_path is not None and not Path(plan.subtitles_path).is_file():
        raise MediaError(f"subtitles file not found: {plan.subtitles_path}")
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
    transition = 0
    if plan.transition != "none" and count > 1:
        # A transition may not be longer than the shortest segment it would eat into.
        shortest = min(b - a for a, b in zip(bounds, bounds[1:]))
        transition = min(round(plan.transition_s * plan.fps), shortest)
        transition = transition if transition >= 2 else 0
    before, after = transition // 2, transition - transition // 2
    origins = [0] + [bound - before for bound in bounds[1:-1]]
    ends = [bound + after for bound in bounds[1:-1]] + [frame_count]
    pieces: list[_Piece] = []
    for index in range(count):
        steady_start = origins[index] + (transition if index else 0)
        steady_end = ends[index] - (transition if index < count - 1 else 0)
        if steady_end > steady_start:
            pieces.append(_Piece((index,), steady_start, steady_end))
        if index < count - 1 and transition:
            pieces.append(_Piece((index, index + 1), ends[index] - transition, ends[index]))
    lengths = [end - origin for origin, end in zip(origins, ends)]
    return _Timeline(origins, lengths, pieces)


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
        # Labels count within this graph, so a chunk's graph does not say where it is in the video.
        outputs = [f"[s{input_index}u{use}]" for use in range(len(uses[segment]))]
        split = f"split={len(outputs)}" if len(outputs) > 1 else "null"
        lines.append(f"{source}{chain},{split}{''.join(outputs)}")
        for use, (piece, output) in enumerate(zip(uses[segment], outputs)):
            first, last = piece.start - origin, piece.end - origin
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
        lines.append(f"[{outgoing}][{incoming}]xfade=transition={plan.transition}"
                     f":duration={seconds:.6f}:offset=0[x{number}]")
        joined.append(f"x{number}")
    streams = "".join(f"[{name}]" for name in joined)
    lines.append(f"{streams}concat=n={len(joined)}:v=1:a=0[{label}]" if len(joined) > 1
                 else f"{streams}null[{label}]")
    return inputs, ";\n".join(lines)


def _still_chain(plan: Plan, segment: int, width: int, height: int, length: int, needed: int) -> str:
    """Scale once to a slightly larger cover, repeat the frame, pan a frame-sized crop over it.

    Timestamps are frame numbers in a 1/fps time base: `setpts=N/FR/TB` truncates float
    results and produced duplicate timestamps (dropped and repeated frames).
    """
    cover_w, cover_h = _even(width * (1 + KEN_BURNS_MARGIN)), _even(height * (1 + KEN_BURNS_MARGIN))
    dx, dy = _pan_direction(plan.seed, segment)
    span = min(1.0, length / plan.fps / KEN_BURNS_FULL_PAN_S)
    # n runs over the segment's footage; the crop travels `span` of the margin, centred.
    progress = f"(n/{max(1, length - 1)}-0.5)"
    x = f"(iw-ow)*(0.5+{dx * span:.4f}*{progress})"
    y = f"(ih-oh)*(0.5+{dy * span:.4f}*{progress})"
    return (
        f"scale={cover_w}:{cover_h}:force_original_aspect_ratio=increase,crop={cover_w}:{cover_h},"
        f"setsar=1,format=yuv420p,loop=loop=-1:size=1,trim=end_frame={needed},"
        f"settb=1/{plan.fps},setpts=N,crop={width}:{height}:{_expr(x)}:{_expr(y)}:exact=1"
    )


def _clip_chain(plan: Plan, width: int, height: int, needed: int) -> str:
    """Clips move on their own: resample to the plan's rate, fill the frame, cut to length."""
    return (
        f"fps={plan.fps},scale={width}:{height}:force_original_aspect_ratio=increase,"
        f"crop={width}:{height},setsar=1,format=yuv420p,trim=end_frame={needed},settb=1/{plan.fps},setpts=N"
    )


def _pan_direction(seed: int, segment: int) -> tuple[int, int]:
    """A pan direction per segment, reproducible from the seed, never the same twice in a row."""
    rng = random.Random(seed)
    previous = None
    for _ in range(segment + 1):
        choice = rng.choice([d for d in PAN_DIRECTIONS if d != previous])
        previous = choice
    return previous


def _picture_size(plan: Plan) -> tuple[int, int]:
    if plan.h2v:
        return plan.width, min(plan.height, _even(plan.width * H2V_ASPECT))
    return plan.width, plan.height


# ---------------------------------------------------------------- chunks


def _compose(
    plan: Plan, out_path: Path, store: ChunkStore, *, segments: tuple[int, int] | None,
    on_progress: ProgressCallback | None, cancel: CancelCheck | None, timeout: float,
) -> Composition:
    """Every piece as its own chunk (made or reused), the audio as one more, joined by a stream copy.

    `segments` (first, last), inclusive, keeps only the pieces that show those segments and the
    narration under them: a preview made of the very chunks of the full render."""
    out_path = Path(out_path)
    if segments is not None and not 0 <= segments[0] <= segments[1] < len(plan.visuals):
        raise MediaError(f"segments {segments[0] + 1}-{segments[1] + 1} are not among the plan's "
                         f"{len(plan.visuals)}")
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
    with tempfile.TemporaryDirectory(prefix="compose-") as tmp:
        work_dir = Path(tmp)
        subtitles = AssEvents.read(plan.subtitles_path) if plan.subtitles_path is not None else None
        jobs = [_chunk_job(plan, box, timeline, piece, subtitles, work_dir, number)
                for number, piece in enumerate(pieces)]
        jobs.append(_audio_job(plan, work_dir, start_frame / plan.fps, (end_frame - start_frame) / plan.fps))
        return assemble(jobs, store, out_path, work_dir, on_progress=on_progress, cancel=cancel,
                        deadline=deadline)


def _chunk_job(
    plan: Plan, box: tuple[int, int, int, int] | None, timeline: _Timeline, piece: _Piece,
    subtitles: "AssEvents | None", work_dir: Path, number: int,
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
    if subtitles is not None:
        base, ass_text = subtitles.for_frames(piece.start, piece.end, plan.fps)
        ass_path = work_dir / f"piece{number:04d}.ass"
        ass_path.write_text(ass_text, encoding="utf-8")
        overlays.append(_subtitles_filter(ass_path, work_dir))
        tokens[str(ass_path)] = "piece.ass"
        tokens[str(work_dir / "fonts")] = f"fonts:{default_font_path().name}"
    # Frames count from `base` (0 unless a subtitle began before the piece: its animations and
    # karaoke run from the event's own start), so subtitles and texts show at their frames.
    lines = [graph, f"[pic]settb=1/{plan.fps},setpts=N+{base}[timed]"]
    current = "timed"
    if plan.h2v:
        lines.append(_h2v_filter(plan, current, "framed"))
        current = "framed"
    overlays.extend(_text_filters(replace(plan, texts=_piece_texts(plan, piece, base))))
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
    script.write_text(";\n".join(lines))
    encoder = _video_encoder(plan)
    flat_inputs = [arg for group in inputs for arg in group]
    identity = {
        "format": CHUNK_FORMAT, "ffmpeg": ffmpeg.version(), "size": [plan.width, plan.height],
        "fps": plan.fps,
        "inputs": _tokenized(" ".join(flat_inputs), tokens), "graph": _tokenized(script.read_text(), tokens),
        "subtitles": ass_text, "encoder": encoder,
    }
    args = [*flat_inputs, "-filter_complex_script", str(script), "-map", "[vout]", "-an", *encoder]
    return ChunkJob(f"{digest(identity)}.mp4", args, (piece.end - piece.start) / plan.fps)


def _video_encoder(plan: Plan) -> list[str]:
    """The same for every chunk, so their streams join by a plain copy. x264's threads are fixed:
    its output depends on them, and a chunk must be the same whichever host made it."""
    return ["-c:v", "libx264", "-preset", plan.preset, "-crf", str(plan.crf), "-pix_fmt", "yuv420p",
            "-profile:v", "high", "-threads", str(CHUNK_THREADS), "-fps_mode", "passthrough",
            "-video_track_timescale", str(plan.fps * 512)]


def _audio_job(plan: Plan, work_dir: Path, start_s: float, length_s: float) -> ChunkJob:
    """The narration (with the music under it) from `start_s` for `length_s`, encoded once."""
    seek = ["-ss", f"{start_s:.6f}"] if start_s > 0 else []
    args = [*seek, "-t", f"{length_s:.6f}", "-i", str(plan.narration_path)]
    tokens = {str(plan.narration_path): file_digest(plan.narration_path)}
    if plan.music_path is not None:
        # The music plays on from where the full render would be at `start_s`.
        music_seek = start_s % ffmpeg.duration(plan.music_path) if start_s > 0 else 0.0
        args += ["-stream_loop", "-1", "-ss", f"{music_seek:.6f}", "-i", str(plan.music_path)]
        tokens[str(plan.music_path)] = file_digest(plan.music_path)
        script = work_dir / "audio.filtergraph"
        script.write_text(_music_filter(plan, "0:a", "1:a"))
        tokens[str(script)] = "audio.filtergraph"
        args += ["-filter_complex_script", str(script), "-map", "[aout]"]
        graph = script.read_text()
    else:
        args += ["-map", "0:a"]
        graph = ""
    encoder = ["-c:a", "aac", "-b:a", "160k", "-ar", str(AUDIO_RATE), "-vn"]
    identity = {"format": CHUNK_FORMAT, "ffmpeg": ffmpeg.version(), "graph": graph, "encoder": encoder,
                "args": _tokenized(" ".join(args), tokens)}
    return ChunkJob(f"audio-{digest(identity)}.m4a", [*args, *encoder], length_s)


def _piece_texts(plan: Plan, piece: _Piece, base: int) -> list[TextOverlay]:
    """The text overlays seen in `piece`, timed on its own frames (which count from `base`).

    drawtext shows a text on the frames whose time lies in [start, end] (both included); each
    time here sits half a millisecond off a frame's, so rounding never adds or drops a frame."""
    texts = []
    fps = plan.fps
    for overlay in plan.texts:
        first = -(-overlay.start_ms * fps // 1000)  # the first frame whose time is >= start
        last = None if overlay.end_ms is None else overlay.end_ms * fps // 1000
        if first >= piece.end or (last is not None and last < piece.start):
            continue
        start_ms = 0 if first <= piece.start else (2000 * (first - piece.start + base) - fps) // (2 * fps)
        end_ms = None
        if last is not None and last < piece.end - 1:
            end_ms = -(-(2000 * (last - piece.start + base) + fps) // (2 * fps))
        texts.append(replace(overlay, start_ms=start_ms, end_ms=end_ms))
    return texts


def _tokenized(text: str, tokens: dict[str, str]) -> str:
    """`text` with every path in `tokens` (as written in an argument or in a filter option)
    replaced by its token; longest paths first, so no path replaces part of another."""
    for path in sorted(tokens, key=len, reverse=True):
        text = text.replace(_option(path), tokens[path]).replace(path, tokens[path])
    return text


def _h2v_filter(plan: Plan, source: str, label: str) -> str:
    """The horizontal picture centred in the vertical frame over a blurred, filled copy.

    The blur runs on a 1/8-size copy: the same look for a fraction of the cost.
    """
    small_w, small_h = _even(plan.width / 8), _even(plan.height / 8)
    return (
        f"[{source}]split=2[h2vfg][h2vbg];"
        f"[h2vbg]scale={small_w}:{small_h}:force_original_aspect_ratio=increase,"
        f"crop={small_w}:{small_h},boxblur=4:2,scale={plan.width}:{plan.height},setsar=1[h2vblur];"
        f"[h2vblur][h2vfg]overlay=x=0:y=(H-h)/2[{label}]"
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


def _text_filters(plan: Plan) -> list[str]:
    """One drawtext per line of each overlay, wrapped by measured width and centred."""
    filters = []
    for overlay in plan.texts:
        if not overlay.text.strip():
            continue
        size = overlay.font_size or max(12, round(min(plan.width, plan.height) / 14))
        text_font = font(size, bold=False)  # the face drawtext draws with, for measuring
        lines = wrap_text(overlay.text.strip(), text_font, plan.width * 0.9)
        step = line_height(text_font)
        block = step * len(lines)
        top = {"top": plan.height * 0.06, "center": (plan.height - block) / 2,
               "bottom": plan.height * 0.82 - block}.get(overlay.position)
        if top is None:
            raise MediaError(f"unknown text position {overlay.position!r}")
        start_s = overlay.start_ms / 1000
        end_s = overlay.end_ms / 1000 if overlay.end_ms is not None else math.inf
        enable = f"gte(t,{start_s:.3f})" if end_s == math.inf else f"between(t,{start_s:.3f},{end_s:.3f})"
        for number, line in enumerate(lines):
            filters.append(
                f"drawtext={_font_option()}:text={_option(line)}:expansion=none"
                f":fontsize={size}:fontcolor=white:borderw={max(1, size // 16)}:bordercolor=black@0.7"
                f":shadowx={max(1, size // 20)}:shadowy={max(1, size // 20)}:shadowcolor=black@0.5"
                f":x=(w-text_w)/2:y={round(top + number * step + (step - size) / 2)}"
                f":enable={_expr(enable)}"
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


def _music_filter(plan: Plan, voice: str, music: str) -> str:
    """Music at `music_volume`, pressed down further by a compressor keyed on the voice.

    The (mono) voice goes to both channels at full level: an automatic upmix would lower it by
    3 dB, and the narration would be quieter in the videos that have music."""
    audio_format = f"aformat=sample_fmts=fltp:sample_rates={AUDIO_RATE}:channel_layouts=stereo"
    return (
        f"[{voice}]pan=stereo|c0=c0|c1=c0,{audio_format},asplit=2[voice][voicekey];"
        f"[{music}]{audio_format},volume={plan.music_volume:.4f}[bed];"
        f"[bed][voicekey]sidechaincompress=threshold=0.02:ratio=8:attack=20:release=400[ducked];"
        f"[voice][ducked]amix=inputs=2:duration=first:dropout_transition=0:normalize=0[aout]"
    )


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

