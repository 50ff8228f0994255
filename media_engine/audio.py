"""The final audio track: the narration with music under it, brought to a loudness target.

Platforms play videos at about -14 LUFS; a mix left at the narration's own level (about -21 LUFS)
sounds quiet next to everything else. The track is normalized with ffmpeg's `loudnorm` (EBU R128)
in two passes: the first measures the mix (`print_format=json`), the second applies the gain
with those measurements (`linear=true`, one gain for the whole track, so the voice keeps its
dynamics; loudnorm itself falls back to its limiter where one gain would push the true peak over
the limit). Most tracks need neither: `ebur128` measures the integrated loudness and true peak at
a fifth of loudnorm's cost, and when the true peak plus the one gain to the target stays under the
limit, the gain is a plain `volume` change; loudnorm's two passes run only when it does not. The
result is a 48 kHz stereo WAV: compose keeps it as the source of its audio chunk (encoded to AAC
once, beside the picture chunks).
"""

import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import ffmpeg
from .errors import MediaError

AUDIO_RATE = 48000
DEFAULT_LOUDNESS_LUFS = -14.0
DEFAULT_TRUE_PEAK_DB = -1.0
# Within what loudnorm and the platforms take (EBU R128 broadcast is -23, mobile -16 .. -14).
MIN_LOUDNESS_LUFS, MAX_LOUDNESS_LUFS = -30.0, -9.0
# The loudness range loudnorm may leave: wide, so that speech with pauses is normalized by one gain.
LOUDNESS_RANGE_LU = 20.0
# Lossy encoding (AAC) lets inter-sample peaks rise over the limit given to loudnorm: measured up to
# +0.6 dB on speech, so loudnorm aims this much lower.
CODEC_PEAK_MARGIN_DB = 1.0
# ebur128's floor: what it reports for silence.
EBUR128_SILENCE_LUFS = -70.0
_EBUR128_I = re.compile(r"I:\s+(-?[\d.]+) LUFS")
_EBUR128_PEAK = re.compile(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS")
_JSON_BLOCK = re.compile(r"\{[^{}]*\"input_i\"[^{}]*\}", re.S)


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
) -> Path:
    """The narration (with `music_path` looped under it at `music_volume`, ducked while the voice
    speaks) as `duration_s` seconds of stereo WAV at `loudness_lufs` integrated, its true peak at
    most `true_peak_db` once encoded."""
    if not MIN_LOUDNESS_LUFS <= loudness_lufs <= MAX_LOUDNESS_LUFS:
        raise MediaError(f"loudness target {loudness_lufs} LUFS is outside {MIN_LOUDNESS_LUFS:g} to "
                         f"{MAX_LOUDNESS_LUFS:g}")
    if not -9.0 <= true_peak_db <= 0.0:
        raise MediaError(f"true peak limit {true_peak_db} dBTP is outside -9 to 0")
    if duration_s <= 0:
        raise MediaError(f"the audio track needs a positive duration, got {duration_s}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="audio-", dir=out_path.parent) as tmp:
        mix_path = Path(tmp) / "mix.wav"
        _mix(narration_path, mix_path, duration_s=duration_s, music_path=music_path,
             music_volume=music_volume, cancel=cancel, timeout=timeout)
        target = f"I={loudness_lufs:.1f}:TP={true_peak_db - CODEC_PEAK_MARGIN_DB:.1f}:LRA={LOUDNESS_RANGE_LU:.1f}"
        ceiling = true_peak_db - CODEC_PEAK_MARGIN_DB
        integrated, peak = measure_ebur128(mix_path, cancel=cancel, timeout=timeout)
        gain = loudness_lufs - integrated
        if peak + gain <= ceiling:
            # One gain reaches the target without passing the peak limit: a plain volume change,
            # what loudnorm's linear mode would apply, without its two 192 kHz passes.
            level = f"volume={gain:.2f}dB"
        else:
            measured = measure_loudness(mix_path, target=target, cancel=cancel, timeout=timeout)
            level = (
                f"loudnorm={target}:linear=true:print_format=none"
                f":measured_I={measured['input_i']}:measured_TP={measured['input_tp']}"
                f":measured_LRA={measured['input_lra']}:measured_thresh={measured['input_thresh']}"
                f":offset={measured['target_offset']}"
            )
        apply = f"{level},aresample={AUDIO_RATE},aformat=channel_layouts=stereo"
        ffmpeg.run(["-i", mix_path, "-af", apply, "-c:a", "pcm_s16le", "-f", "wav", out_path],
                   timeout=timeout, cancel=cancel)
    return out_path


def measure_ebur128(audio_path: Path, *, cancel: Callable[[], bool] | None = None,
                    timeout: float = 600) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) as ffmpeg's `ebur128` measures them: the
    same figures as loudnorm's first pass (0.1 precision) at a fifth of its cost."""
    output = ffmpeg.run(["-i", audio_path, "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-"],
                        timeout=timeout, cancel=cancel, loglevel="info")
    summary = output[output.rfind("Summary:"):]
    integrated = _EBUR128_I.search(summary)
    peak = _EBUR128_PEAK.search(summary)
    if "Summary:" not in output or integrated is None or peak is None:
        raise MediaError("ebur128 printed no measurement")
    if peak.group(1) == "-inf" or float(integrated.group(1)) <= EBUR128_SILENCE_LUFS:
        raise MediaError(f"the audio of {Path(audio_path).name} is silent: there is no loudness to normalize")
    return float(integrated.group(1)), float(peak.group(1))


def measure_loudness(audio_path: Path, *, target: str, cancel: Callable[[], bool] | None = None,
                     timeout: float = 600) -> dict[str, str]:
    """loudnorm's first pass: the measured input_i, input_tp, input_lra, input_thresh, target_offset."""
    output = ffmpeg.run(["-i", audio_path, "-af", f"loudnorm={target}:print_format=json", "-f", "null", "-"],
                        timeout=timeout, cancel=cancel, loglevel="info")
    match = _JSON_BLOCK.search(output)
    if match is None:
        raise MediaError("loudnorm printed no measurement")
    measured = json.loads(match.group(0))
    if measured["input_i"] in ("-inf", "inf") or measured["input_thresh"] in ("-inf", "inf"):
        raise MediaError(f"the audio of {Path(audio_path).name} is silent: there is no loudness to normalize")
    return measured


def _mix(
    narration_path: Path, mix_path: Path, *, duration_s: float, music_path: Path | None, music_volume: float,
    cancel: Callable[[], bool] | None, timeout: float,
) -> None:
    """The voice on both channels at full level (an automatic upmix would lower it by 3 dB), the music
    at `music_volume` pressed down further by a compressor keyed on the voice; 32-bit float, so
    nothing clips before the loudness pass."""
    audio_format = f"aformat=sample_fmts=fltp:sample_rates={AUDIO_RATE}:channel_layouts=stereo"
    args = ["-i", narration_path]
    if music_path is None:
        graph = f"[0:a]pan=stereo|c0=c0|c1=c0,{audio_format}[aout]"
    else:
        args += ["-stream_loop", "-1", "-i", music_path]
        graph = (
            f"[0:a]pan=stereo|c0=c0|c1=c0,{audio_format},asplit=2[voice][voicekey];"
            f"[1:a]{audio_format},volume={music_volume:.4f}[bed];"
            f"[bed][voicekey]sidechaincompress=threshold=0.02:ratio=8:attack=20:release=400[ducked];"
            f"[voice][ducked]amix=inputs=2:duration=first:dropout_transition=0:normalize=0[aout]"
        )
    # apad then -t: exactly `duration_s` seconds, whatever the narration file's own length.
    args += ["-filter_complex", f"{graph};[aout]apad[padded]", "-map", "[padded]", "-t", f"{duration_s:.3f}",
             "-c:a", "pcm_f32le", mix_path]
    ffmpeg.run(args, timeout=timeout, cancel=cancel)
