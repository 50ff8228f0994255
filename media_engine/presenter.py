"""The digital human: fetch a presenter clip lip-synced to the narration from a service, and
describe how compose lays it over the pictures (under the subtitles, texts and logo): full screen
at the start and end or as a keyed picture-in-picture in a corner.

The presenter clip is generated from the whole narration, so its time t matches the
video's time t: it is overlaid in sync, never re-timed.
"""

from __future__ import annotations

import math
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import requests

from . import ffmpeg
from .errors import MediaError, with_retries

Corner = Literal["top-left", "top-right", "bottom-left", "bottom-right"]
CORNER_MARGIN = 0.03  # share of the frame width kept free between the picture-in-picture and the edges
# chromakey: how close to the key colour a pixel must be to vanish, and how soft the edge is.
KEY_SIMILARITY = 0.15
KEY_BLEND = 0.05
CHUNK_BYTES = 1 << 20


def fetch_presenter_clip(
    narration_path: Path,
    *,
    url: str,
    out_path: Path,
    timeout: float = 300,
    retries: int = 3,
    backoff: float = 2.0,
) -> Path:
    """POST the narration (multipart field `audio`) to the presenter service and save the MP4
    it answers. `retries` is attempts in all for timeouts, connection errors, 429 and 5xx;
    4xx answers and replies without a video stream are permanent errors."""
    narration_path, out_path = Path(narration_path), Path(out_path)
    if not narration_path.is_file():
        raise MediaError(f"narration not found: {narration_path}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    audio = narration_path.read_bytes()  # bytes, so that every retry sends the whole file

    def attempt() -> Path:
        return _download_clip(url, audio, narration_path.name, out_path, timeout)

    return with_retries(attempt, attempts=max(1, retries), backoff_s=backoff, service="the presenter service")


@dataclass(frozen=True)
class Placement:
    """The presenter clip and where and when it shows. Every field is required: their defaults live
    in one place, the brand profile (`accounts.brand.Presenter`, the seed's: full screen for the first
    and last 120 s, keyed).

    The presenter shows during the first `start_s` and the last `end_s` seconds, or all the time
    when both are 0. "fullscreen" scales it to cover the frame; "pip" scales it to `scale` of the
    frame width in `corner`. With `chroma_key` (a "#RRGGBB" colour) that background colour is keyed
    out, so the pictures show through around the presenter. compose lays it over the pictures and
    under the subtitles, texts and logo (`Plan.presenter`)."""

    clip_path: Path
    mode: Literal["fullscreen", "pip"]
    start_s: float
    end_s: float
    corner: Corner
    scale: float
    chroma_key: str | None

    def check(self) -> None:
        """Refuse a bad placement, or a clip without a picture, before rendering."""
        if self.mode not in ("fullscreen", "pip"):
            raise MediaError(f"unknown presenter mode {self.mode!r}: use 'fullscreen' or 'pip'")
        if self.corner not in ("top-left", "top-right", "bottom-left", "bottom-right"):
            raise MediaError(f"unknown corner {self.corner!r}")
        if not 0 < self.scale <= 1:
            raise MediaError(f"presenter scale must be in (0, 1], got {self.scale}")
        if self.start_s < 0 or self.end_s < 0:
            raise MediaError("presenter start and end durations must not be negative")
        if self.chroma_key:
            _ffmpeg_colour(self.chroma_key)
        _video_facts(Path(self.clip_path))


def shown_frames(placement: Placement, *, fps: int, frame_count: int) -> list[tuple[int, int]]:
    """The frames [first, end) of a video of `frame_count` frames in which the presenter shows."""
    if (
        placement.start_s == 0 and placement.end_s == 0
    ) or placement.start_s + placement.end_s >= frame_count / fps:
        return [(0, frame_count)]
    shown = []
    if placement.start_s > 0:
        shown.append((0, math.ceil(placement.start_s * fps)))
    if placement.end_s > 0:
        shown.append((math.ceil(frame_count - placement.end_s * fps), frame_count))
    return shown


def layer_filters(placement: Placement, *, width: int, height: int, fps: int) -> tuple[str, str]:
    """(the clip's filters: on the video's frames, fitted and keyed; the overlay's x and y options).
    The clip is generated from the whole narration, so its time t is the video's time t."""
    steps = ["setpts=PTS-STARTPTS", f"fps={fps}"]
    if placement.mode == "fullscreen":
        steps.append(f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height}")
    else:
        steps.append(f"scale={_even(width * placement.scale)}:-2")
    if placement.chroma_key:
        steps.append(
            f"format=yuva420p,chromakey=color={_ffmpeg_colour(placement.chroma_key)}:"
            f"similarity={KEY_SIMILARITY}:blend={KEY_BLEND}"
        )
    return ",".join(steps), _position(placement.mode, placement.corner, width)


def _download_clip(url: str, audio: bytes, filename: str, out_path: Path, timeout: float) -> Path:
    partial = out_path.with_name(out_path.name + ".part")
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    try:
        with requests.post(
            url, files={"audio": (filename, audio, content_type)}, timeout=timeout, stream=True
        ) as response:
            status = response.status_code
            if status == 429 or status >= 500:
                raise MediaError(f"the presenter service is unavailable (HTTP {status})", permanent=False)
            if status >= 400:
                raise MediaError(
                    f"the presenter service rejected the narration (HTTP {status}): {response.text[:200]}"
                )
            with partial.open("wb") as file:
                for chunk in response.iter_content(CHUNK_BYTES):
                    file.write(chunk)
    except requests.Timeout as error:
        partial.unlink(missing_ok=True)
        message = f"the presenter service did not answer within {timeout:.0f} s"
        raise MediaError(message, permanent=False) from error
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
    ) as error:
        raise MediaError(f"bad presenter service URL {url!r}: {error}") from error
    except requests.RequestException as error:  # refused, reset, or cut off mid-download
        partial.unlink(missing_ok=True)
        raise MediaError(f"cannot reach the presenter service at {url}: {error}", permanent=False) from error
    try:
        _video_facts(partial)
    except MediaError as error:
        partial.unlink(missing_ok=True)
        raise MediaError(f"the presenter service did not return a video: {error}") from error
    partial.replace(out_path)
    return out_path


def _video_facts(path: Path) -> tuple[int, int, float, bool]:
    """Width, height, duration in seconds and whether there is an audio stream."""
    info = ffmpeg.probe(path)
    streams = info.get("streams", [])
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
        ),
        None,
    )
    if video is None:
        raise MediaError(f"{path.name} has no video stream")
    duration = info.get("format", {}).get("duration") or video.get("duration")
    if duration is None:
        raise MediaError(f"{path.name} has no duration")
    has_audio = any(s.get("codec_type") == "audio" for s in streams)
    return int(video["width"]), int(video["height"]), float(duration), has_audio


def _position(mode: str, corner: str, width: int) -> str:
    if mode == "fullscreen":
        return "x=0:y=0"
    margin = round(width * CORNER_MARGIN)
    vertical, horizontal = corner.split("-")
    x = f"{margin}" if horizontal == "left" else f"main_w-overlay_w-{margin}"
    y = f"{margin}" if vertical == "top" else f"main_h-overlay_h-{margin}"
    return f"x={x}:y={y}"


def _ffmpeg_colour(colour: str) -> str:
    if not re.fullmatch(r"#?[0-9A-Fa-f]{6}", colour.strip()):
        raise MediaError(f"chroma key colour must look like #00FF00, got {colour!r}")
    return "0x" + colour.strip().lstrip("#").upper()


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)
