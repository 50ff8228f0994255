"""The one way this project runs ffmpeg and ffprobe.

Every call gets `-nostdin`, a wall-clock timeout, a process that dies with its worker
(`processes.bound_to_parent`) and `-progress pipe:1`, whose
`out_time_us` lines feed an optional progress callback. A `cancel` callable is
checked at every progress line; when it returns True the ffmpeg process is
terminated and `Cancelled` is raised.
"""

import functools
import json
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import Cancelled, MediaError
from .processes import bound_to_parent

FFMPEG = os.environ.get("FFMPEG_BINARY", "ffmpeg")
FFPROBE = os.environ.get("FFPROBE_BINARY", "ffprobe")
DEFAULT_TIMEOUT_S = 3300.0

ProgressCallback = Callable[[float], None]
CancelCheck = Callable[[], bool]


def run(
    args: Sequence[str | os.PathLike],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    duration_s: float | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    loglevel: str = "error",
) -> str:
    """Run `ffmpeg <args>`; report progress as a fraction 0..1 of `duration_s`.

    Returns the last lines ffmpeg logged: with `loglevel="info"`, what a measuring filter printed."""
    command = [
        FFMPEG,
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        loglevel,
        "-y",
        "-progress",
        "pipe:1",
        "-nostats",
        *map(str, args),
    ]
    process = subprocess.Popen(
        bound_to_parent(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so a terminate reaches ffmpeg and only ffmpeg
    )
    stderr_tail: deque[str] = deque(maxlen=40)
    reader = threading.Thread(target=_drain, args=(process.stderr, stderr_tail), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    timer = threading.Timer(timeout, _kill, args=(process,))
    timer.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if cancel is not None and cancel():
                _kill(process)
                process.wait()
                raise Cancelled("cancelled while ffmpeg was running")
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and on_progress and duration_s:
                try:
                    seconds = int(value) / 1_000_000
                except ValueError:
                    continue
                on_progress(max(0.0, min(1.0, seconds / duration_s)))
        returncode = process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:
            _kill(process)
            process.wait()
        reader.join(timeout=5)
    if time.monotonic() >= deadline and returncode != 0:
        raise MediaError(f"ffmpeg took longer than {timeout:.0f} s and was stopped", permanent=False)
    if returncode != 0:
        message = " | ".join(line.strip() for line in stderr_tail if line.strip())[-1500:]
        raise MediaError(f"ffmpeg failed (exit {returncode}): {message or 'no message'}")
    if on_progress:
        on_progress(1.0)
    return "".join(stderr_tail)


def probe(path: str | os.PathLike, *, timeout: float = 60.0, formats: Sequence[str] = ()) -> dict:
    """ffprobe's JSON description of a file's format and streams.

    For a file from outside (an upload), `formats` names the demuxers ffprobe may use: it then opens
    nothing but this local file, and refuses any other format before reading it, above all the HLS
    and concat playlists that would make it open the files or addresses they list.
    """
    if not Path(path).exists():
        raise MediaError(f"file not found: {path}")
    limits = ["-protocol_whitelist", "file", "-format_whitelist", ",".join(formats)] if formats else []
    try:
        completed = subprocess.run(
            bound_to_parent(
                [FFPROBE, "-v", "error", *limits, "-of", "json", "-show_format", "-show_streams", str(path)]
            ),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as error:
        raise MediaError(f"ffprobe timed out on {Path(path).name}", permanent=False) from error
    if completed.returncode != 0:
        reason = completed.stderr.strip().splitlines()[-1:] or ["unreadable"]
        raise MediaError(f"{Path(path).name} is not a readable media file: {reason[0]}")
    return json.loads(completed.stdout)


def duration(path: str | os.PathLike) -> float:
    """Duration in seconds, from the container (or the first stream that knows it)."""
    info = probe(path)
    value = info.get("format", {}).get("duration")
    if value is None:
        value = next((s["duration"] for s in info.get("streams", []) if "duration" in s), None)
    if value is None:
        raise MediaError(f"{Path(path).name} has no duration")
    return float(value)


def _drain(stream, tail: deque[str]) -> None:
    for line in stream:
        tail.append(line)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@functools.cache
def version() -> str:
    """The first line of `ffmpeg -version`: what a cached encode was made with."""
    completed = subprocess.run(
        [FFMPEG, "-version"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    return completed.stdout.splitlines()[0] if completed.stdout else "unknown"
