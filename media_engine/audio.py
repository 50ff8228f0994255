"""The final audio track: the narration with music under it, brought to a loudness target, and
encoded in slices that join into one AAC stream.

Platforms play videos at about -14 LUFS; a mix left at the narration's own level (about -21 LUFS)
sounds quiet next to everything else. The track is the mix (narration, music ducked under it) as
raw 32-bit float samples, with the gain that brings it to the target: ffmpeg's `ebur128` measures
the mix while it is made, and where one gain would push a peak over the limit a look-ahead
limiter (`alimiter`) holds the peaks and a second measurement of the limited track corrects the
gain. The gain is kept in steps of LEVEL_STEP_DB, so an edit that changes the loudness by a
hundredth of a dB keeps it, and with it every unchanged slice.

The gain and the limiter run where the track is encoded: in slices of SLICE_FRAMES AAC frames,
each encoded on its own with PREROLL_FRAMES frames of the track before it and POSTROLL_FRAMES
after it, of which only its own frames are kept. An AAC frame depends on the one before it; with
the same samples on either side, the frames of two slices join as the frames of one encode do
(measured: the error at the joins is the codec's own, 52 dB under the signal). A slice is named
by a hash of its samples, so after an edit only the slices whose sound changed are encoded again.
"""

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from . import ffmpeg
from .errors import MediaError

AUDIO_RATE = 48000
SAMPLE_BYTES = 4  # float32
DEFAULT_LOUDNESS_LUFS = -14.0
DEFAULT_TRUE_PEAK_DB = -1.0
# Within what the platforms take (EBU R128 broadcast is -23, mobile -16 .. -14).
MIN_LOUDNESS_LUFS, MAX_LOUDNESS_LUFS = -30.0, -9.0
# Lossy encoding (AAC) and the samples between samples let peaks rise over a sample limit:
# measured up to +0.6 dB on speech, so the limiter holds this much lower than the true-peak limit.
CODEC_PEAK_MARGIN_DB = 1.5
# The gain is a multiple of this: under half of it off the target, and the same after a small edit.
LEVEL_STEP_DB = 0.25
# How close to the target a limited track must measure, and how many times the gain is corrected.
LEVEL_TOLERANCE_LU, LEVEL_PASSES = 0.5, 3
# ebur128's floor: what it reports for silence.
EBUR128_SILENCE_LUFS = -70.0
AAC_FRAME = 1024  # samples in one AAC frame
SLICE_FRAMES = 469  # ~10 s a slice
PREROLL_FRAMES = 8  # ~170 ms before a slice: the limiter's release and the encoder's window
POSTROLL_FRAMES = 2  # the encoder's look-ahead past the slice's last frame
AAC_ENCODER = ["-c:a", "aac", "-aac_coder", "fast", "-b:a", "160k", "-ar", str(AUDIO_RATE)]
_EBUR128_I = re.compile(r"I:\s+(-?[\d.]+) LUFS")
_EBUR128_PEAK = re.compile(r"Sample peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS")


@dataclass(frozen=True)
class Track:
    """The mix as raw float samples at AUDIO_RATE (`channels` interleaved), and its gain."""

    path: Path
    channels: int
    samples: int
    gain_db: float
    true_peak_db: float = DEFAULT_TRUE_PEAK_DB

    @property
    def info_path(self) -> Path:
        return info_path(self.path)

    def level_filter(self) -> str:
        """The gain, the peak limiter and the upmix to stereo, as the encode applies them."""
        limit = 10 ** ((self.true_peak_db - CODEC_PEAK_MARGIN_DB) / 20)
        upmix = "pan=stereo|c0=c0|c1=c0," if self.channels == 1 else ""
        return (
            f"volume={self.gain_db:.2f}dB,alimiter=limit={limit:.4f}:attack=5:release=50:level=0:latency=1,"
            f"{upmix}aformat=sample_fmts=fltp:channel_layouts=stereo"
        )

    def input_args(self, path: Path | None = None) -> list[str]:
        """ffmpeg's input arguments for the track's samples (or a slice of them in `path`)."""
        return [
            "-f",
            "f32le",
            "-ar",
            str(AUDIO_RATE),
            "-ac",
            str(self.channels),
            "-i",
            str(path or self.path),
        ]

    def save_info(self) -> None:
        self.info_path.write_text(
            json.dumps(
                {
                    "channels": self.channels,
                    "samples": self.samples,
                    "gain_db": self.gain_db,
                    "true_peak_db": self.true_peak_db,
                }
            )
        )

    @classmethod
    def read(cls, path: Path) -> "Track":
        info = json.loads(info_path(path).read_text())
        return cls(Path(path), info["channels"], info["samples"], info["gain_db"], info["true_peak_db"])


@dataclass(frozen=True)
class Slice:
    """Samples [first, first + frames * AAC_FRAME) of a track: the encoder's input is those with
    their pre- and post-roll (silence past the track's ends), `digest` their sha256."""

    first: int
    frames: int
    digest: str


def info_path(track_path: Path) -> Path:
    return Path(track_path).with_suffix(".json")


def final_audio(
    narration_path: Path,
    out_path: Path,
    *,
    duration_s: float,
    music_path: Path | None = None,
    music_volume: float = 0.15,
    loudness_lufs: float = DEFAULT_LOUDNESS_LUFS,
    true_peak_db: float = DEFAULT_TRUE_PEAK_DB,
    cancel: Callable[[], bool] | None = None,
    timeout: float = 600,
) -> Track:
    """The narration (with `music_path` looped under it at `music_volume`, ducked while the voice
    speaks) as `duration_s` seconds of raw float samples at `out_path` (mono without music), with
    the gain that brings it to `loudness_lufs` integrated, its peaks at most `true_peak_db` once
    encoded. The gain is also written beside it (`info_path`)."""
    if not MIN_LOUDNESS_LUFS <= loudness_lufs <= MAX_LOUDNESS_LUFS:
        raise MediaError(
            f"loudness target {loudness_lufs} LUFS is outside {MIN_LOUDNESS_LUFS:g} to {MAX_LOUDNESS_LUFS:g}"
        )
    if not -9.0 <= true_peak_db <= 0.0:
        raise MediaError(f"true peak limit {true_peak_db} dBTP is outside -9 to 0")
    if duration_s <= 0:
        raise MediaError(f"the audio track needs a positive duration, got {duration_s}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    channels = 1 if music_path is None else 2
    integrated, peak = _mix(
        narration_path,
        out_path,
        duration_s=duration_s,
        music_path=music_path,
        music_volume=music_volume,
        cancel=cancel,
        timeout=timeout,
    )
    samples = out_path.stat().st_size // (SAMPLE_BYTES * channels)
    track = Track(out_path, channels, samples, _step(loudness_lufs - integrated), true_peak_db)
    if peak + track.gain_db > true_peak_db - CODEC_PEAK_MARGIN_DB:
        # The limiter holds the peaks and takes some loudness with them: measured, and made up
        # (as far as the peaks allow: a gain pushes them into the limiter rather than up).
        for _ in range(LEVEL_PASSES):
            limited = measure(track, cancel=cancel, timeout=timeout)
            if abs(limited - loudness_lufs) <= LEVEL_TOLERANCE_LU:
                break
            track = replace(track, gain_db=_step(track.gain_db + loudness_lufs - limited))
    track.save_info()
    return track


def measure(track: Track, *, cancel: Callable[[], bool] | None = None, timeout: float = 600) -> float:
    """The integrated loudness (LUFS) of `track` as encoded: its gain and limiter applied."""
    output = ffmpeg.run(
        [*track.input_args(), "-af", f"{track.level_filter()},ebur128=framelog=verbose", "-f", "null", "-"],
        timeout=timeout,
        cancel=cancel,
        loglevel="info",
    )
    return _summary(output, track.path)[0]


def slices(track: Track, first: int, last: int) -> list[Slice]:
    """Samples [first, last) of `track` in slices of SLICE_FRAMES AAC frames (the last shorter);
    together they cover [first, last) rounded up to a whole frame."""
    found = []
    for start in range(first, last, SLICE_FRAMES * AAC_FRAME):
        frames = min(SLICE_FRAMES, -(-(last - start) // AAC_FRAME))
        found.append(Slice(start, frames, hashlib.sha256(_rolled(track, start, frames)).hexdigest()))
    return found


def write_slice(track: Track, piece: Slice, path: Path) -> None:
    """The encoder's input for `piece`: its samples with their pre- and post-roll, raw like the track's."""
    Path(path).write_bytes(_rolled(track, piece.first, piece.frames))


def _rolled(track: Track, start: int, frames: int) -> bytes:
    sample_bytes = SAMPLE_BYTES * track.channels
    low = start - PREROLL_FRAMES * AAC_FRAME
    high = start + (frames + POSTROLL_FRAMES) * AAC_FRAME
    with open(track.path, "rb") as handle:
        handle.seek(max(low, 0) * sample_bytes)
        inside = handle.read(max(0, min(high, track.samples) - max(low, 0)) * sample_bytes)
    before = max(0, -low) * sample_bytes
    return bytes(before) + inside + bytes((high - low) * sample_bytes - before - len(inside))


def adts_frames(data: bytes) -> list[bytes]:
    """The frames of an ADTS stream (AAC as ffmpeg's `adts` muxer writes it), in order."""
    frames, at = [], 0
    while at < len(data):
        if len(data) - at < 7 or data[at] != 0xFF or data[at + 1] & 0xF0 != 0xF0:
            raise MediaError(f"not an ADTS frame at byte {at}")
        length = ((data[at + 3] & 0x03) << 11) | (data[at + 4] << 3) | (data[at + 5] >> 5)
        if length < 7:
            raise MediaError(f"ADTS frame at byte {at} says its length is {length}")
        frames.append(data[at : at + length])
        at += length
    return frames


def _step(gain_db: float) -> float:
    return round(gain_db / LEVEL_STEP_DB) * LEVEL_STEP_DB


def _summary(output: str, path: Path) -> tuple[float, float]:
    """(integrated LUFS, sample peak dBFS) from ebur128's summary."""
    summary = output[output.rfind("Summary:") :]
    integrated = _EBUR128_I.search(summary)
    if "Summary:" not in output or integrated is None:
        raise MediaError("ebur128 printed no measurement")
    if float(integrated.group(1)) <= EBUR128_SILENCE_LUFS:
        raise MediaError(f"the audio of {Path(path).name} is silent: there is no loudness to normalize")
    peak = _EBUR128_PEAK.search(summary)
    return float(integrated.group(1)), float(peak.group(1)) if peak and peak.group(1) != "-inf" else 0.0


def _mix(
    narration_path: Path,
    out_path: Path,
    *,
    duration_s: float,
    music_path: Path | None,
    music_volume: float,
    cancel: Callable[[], bool] | None,
    timeout: float,
) -> tuple[float, float]:
    """Write the mix and measure it: the voice at full level (on both channels with music: an
    automatic upmix would lower it by 3 dB), the music at `music_volume` pressed down further by a
    compressor keyed on the voice; 32-bit float, so nothing clips before the gain. Returns its
    integrated loudness and sample peak."""
    args = ["-i", narration_path]
    # Measured as it will play: on two channels.
    measured = "ebur128=peak=sample:framelog=verbose,anullsink"
    if music_path is None:
        graph = (
            f"[0:a]aformat=sample_fmts=flt:sample_rates={AUDIO_RATE}:channel_layouts=mono,asplit=2[aout][m];"
            f"[m]pan=stereo|c0=c0|c1=c0,{measured}"
        )
    else:
        audio_format = f"aformat=sample_fmts=fltp:sample_rates={AUDIO_RATE}:channel_layouts=stereo"
        args += ["-stream_loop", "-1", "-i", music_path]
        graph = (
            f"[0:a]pan=stereo|c0=c0|c1=c0,{audio_format},asplit=2[voice][voicekey];"
            f"[1:a]{audio_format},volume={music_volume:.4f}[bed];"
            f"[bed][voicekey]sidechaincompress=threshold=0.02:ratio=8:attack=20:release=400[ducked];"
            f"[voice][ducked]amix=inputs=2:duration=first:dropout_transition=0:normalize=0,asplit=2[aout][m];"
            f"[m]{measured}"
        )
    # apad then -t: exactly `duration_s` seconds, whatever the narration file's own length; the
    # padding is silence, which the loudness gate leaves out.
    args += [
        "-filter_complex",
        f"{graph};[aout]apad[padded]",
        "-map",
        "[padded]",
        "-t",
        f"{duration_s:.6f}",
        "-c:a",
        "pcm_f32le",
        "-f",
        "f32le",
        out_path,
    ]
    output = ffmpeg.run(args, timeout=timeout, cancel=cancel, loglevel="info")
    return _summary(output, narration_path)
