"""The digital human: fetch a presenter clip lip-synced to the narration from a service,
and place it over the rendered video, full screen at the start and end or as a keyed
picture-in-picture in a corner.

The presenter clip is generated from the whole narration, so its time t matches the
video's time t: it is overlaid in sync, never re-timed.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable
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


def place_presenter(
    video_path: Path,
    presenter_path: Path,
    out_path: Path,
    *,
    mode: Literal["fullscreen", "pip"],
    start_s: float,
    end_s: float,
    corner: Corner,
    scale: float,
    chroma_key: str | None,
    crf: int,
    preset: str,
    on_progress: Callable[[float], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Path:
    """The video with the presenter on top; audio (the narration) and duration unchanged.

    Every placement argument is required: their defaults live in one place, the brand profile
    (`accounts.brand.Presenter`, the seed's: full screen for the first and last 120 s, keyed).
    The video is encoded again with `crf` and `preset` (the brand's video_crf / video_preset).

    The presenter shows during the first `start_s` and the last `end_s` seconds, or all the
    time when both are 0. "fullscreen" scales it to cover the frame; "pip" scales it to
    `scale` of the frame width in `corner`. With `chroma_key` (a "#RRGGBB" colour) that
    background colour is keyed out, so the video shows through around the presenter.
    """
    if mode not in ("fullscreen", "pip"):
        raise MediaError(f"unknown presenter mode {mode!r}: use 'fullscreen' or 'pip'")
    if corner not in ("top-left", "top-right", "bottom-left", "bottom-right"):
        raise MediaError(f"unknown corner {corner!r}")
    if not 0 < scale <= 1:
        raise MediaError(f"presenter scale must be in (0, 1], got {scale}")
    if start_s < 0 or end_s < 0:
        raise MediaError("presenter start and end durations must not be negative")
    width, height, duration_s, has_audio = _video_facts(Path(video_path))
    _video_facts(Path(presenter_path))  # a clear error now rather than an ffmpeg one later

    steps = ["setpts=PTS-STARTPTS"]
    if mode == "fullscreen":
        steps.append(f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height}")
    else:
        steps.append(f"scale={_even(width * scale)}:-2")
    if chroma_key:
        steps.append(
            f"format=yuva420p,chromakey=color={_ffmpeg_colour(chroma_key)}:"
            f"similarity={KEY_SIMILARITY}:blend={KEY_BLEND}"
        )
    overlay = f"overlay={_position(mode, corner, width)}:eof_action=pass"
    enable = _enable_expression(start_s, end_s, duration_s)
    if enable:
        overlay += f":enable='{enable}'"
    graph = f"[1:v]{','.join(steps)}[presenter];[0:v][presenter]{overlay},format=yuv420p[video]"

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    args: list[str | Path] = [
        "-i",
        video_path,
        "-i",
        presenter_path,
        "-filter_complex",
        graph,
        "-map",
        "[video]",
    ]
    if has_audio:
        args += ["-map", "0:a:0", "-c:a", "copy"]  # the narration, untouched
    args += [
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        str(crf),
        "-movflags",
        "+faststart",
        "-t",
        f"{duration_s:.3f}",
        out_path,
    ]
    ffmpeg.run(args, duration_s=duration_s, on_progress=on_progress, cancel=cancel)
    return out_path


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


def _enable_expression(start_s: float, end_s: float, duration_s: float) -> str:
    """The times the presenter shows, as an ffmpeg `enable` expression ("" = always)."""
    if (start_s == 0 and end_s == 0) or start_s + end_s >= duration_s:
        return ""
    windows = []
    if start_s > 0:
        windows.append(f"lt(t,{start_s:.3f})")
    if end_s > 0:
        windows.append(f"gte(t,{duration_s - end_s:.3f})")
    return "+".join(windows)


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
