"""The final audio track: music under the voice, brought to a loudness target (a gain, and a limiter where
the peaks need one), encoded as the composition encodes it."""

import re
import subprocess
from pathlib import Path

import pytest

from media_engine import audio, ffmpeg, tts
from media_engine.errors import MediaError
from media_engine.sentences import split_sentences

# A narration and music measured and encoded by ffmpeg.
pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parents[1] / "data"


def ebur128(path: Path) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) of a file's audio, as ffmpeg's ebur128 measures them."""
    result = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-i",
            str(path),
            "-map",
            "0:a",
            "-af",
            "ebur128=peak=true",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = result.stderr[result.stderr.rindex("Summary:") :]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))
    return integrated, peak


@pytest.fixture(scope="module")
def narration(tmp_path_factory) -> tts.Narration:
    text = (DATA / "health_article_zh.txt").read_text(encoding="utf-8")
    return tts.synthesize(
        split_sentences(text)[:4],
        platform="espeak",
        voice=tts.VoiceSpec(name="", language="zh-CN"),
        speed=1.0,
        out_dir=tmp_path_factory.mktemp("narration"),
    )


@pytest.fixture(scope="module")
def music(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("music") / "music.mp3"
    ffmpeg.run(
        [
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=330:sample_rate=44100:duration=7",
            "-f",
            "lavfi",
            "-i",
            "anoisesrc=color=pink:amplitude=0.2:sample_rate=44100:duration=7",
            "-filter_complex",
            "amix=inputs=2",
            "-ac",
            "2",
            str(path),
        ]
    )
    return path


def encoded(track: audio.Track, out_path: Path) -> Path:
    """The track as the composition's encoder writes it (gain, limiter, AAC), where true peaks can grow."""
    ffmpeg.run([*track.input_args(), "-af", track.level_filter(), *audio.AAC_ENCODER, str(out_path)])
    return out_path


@pytest.mark.parametrize("target", [-14.0, -20.0])
def test_final_audio_with_music_meets_the_loudness_target_and_true_peak(narration, music, tmp_path, target):
    voice_only, _ = ebur128(narration.path)
    assert voice_only < -17  # the narration alone is quiet: there is something to fix
    track = audio.final_audio(
        narration.path,
        tmp_path / "audio.f32",
        duration_s=narration.duration_ms / 1000,
        music_path=music,
        music_volume=0.15,
        loudness_lufs=target,
    )
    integrated, peak = ebur128(encoded(track, tmp_path / "audio.m4a"))
    assert abs(integrated - target) <= 1.0
    assert peak <= -1.0
    assert track.channels == 2  # the music's stereo kept
    assert abs(track.samples / audio.AUDIO_RATE - narration.duration_ms / 1000) < 0.001
    assert track.samples * 4 * 2 == track.path.stat().st_size
    assert audio.Track.read(track.path) == track  # its gain is kept beside it


def test_music_loops_under_the_voice_for_the_whole_narration(narration, music, tmp_path):
    """The 7 s music runs to the end; the voice is not lowered by the mix."""
    with_music = audio.final_audio(
        narration.path,
        tmp_path / "music.f32",
        duration_s=narration.duration_ms / 1000,
        music_path=music,
        music_volume=0.3,
    )
    tail = tmp_path / "tail.wav"
    # The last pause between sentences: music only.
    last = narration.sentences[-1].start_ms / 1000
    ffmpeg.run(
        [
            "-ss",
            f"{last - 0.2:.3f}",
            "-t",
            "0.15",
            *with_music.input_args(),
            "-af",
            with_music.level_filter(),
            tail,
        ]
    )
    loudness = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-i", str(tail), "-af", "volumedetect", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    assert float(re.search(r"mean_volume: (-?[\d.]+) dB", loudness).group(1)) > -50


def test_bad_targets_and_silence_are_refused(narration, tmp_path):
    with pytest.raises(MediaError, match="loudness target -5"):
        audio.final_audio(narration.path, tmp_path / "a.f32", duration_s=1, loudness_lufs=-5)
    silent = tmp_path / "silent.wav"
    ffmpeg.run(["-f", "lavfi", "-i", "anullsrc=r=24000:cl=mono", "-t", "2", silent])
    with pytest.raises(MediaError, match="silent"):
        audio.final_audio(silent, tmp_path / "b.f32", duration_s=2)


@pytest.mark.parametrize(("target", "limited"), [(-20.0, False), (-14.0, True)])
def test_a_gain_under_the_peak_limit_is_measured_once_and_one_over_it_is_limited_and_measured_again(
    narration, tmp_path, monkeypatch, target, limited
):
    """The speech's true peak sits 12-18 dB over its loudness: to -20 LUFS one gain stays under the
    limit (the mix's own measurement is enough), to -14 the limiter holds the peaks and the limited
    track is measured to make up what it took; both meet the target and the limit once encoded."""
    measurements = []
    run = ffmpeg.run

    def spy(args, **kwargs):
        measurements.extend(arg for arg in map(str, args) if "ebur128" in arg)
        return run(args, **kwargs)

    monkeypatch.setattr(audio.ffmpeg, "run", spy)
    track = audio.final_audio(
        narration.path, tmp_path / "audio.f32", duration_s=narration.duration_ms / 1000, loudness_lufs=target
    )
    assert (len(measurements) > 1) == limited
    assert track.gain_db % audio.LEVEL_STEP_DB == 0
    integrated, peak = ebur128(encoded(track, tmp_path / "audio.m4a"))
    assert abs(integrated - target) <= 1.0
    assert peak <= -1.0


def test_a_small_edit_keeps_the_gain(narration, tmp_path):
    """A tenth of a second more silence at the end barely moves the loudness: the gain, a multiple
    of LEVEL_STEP_DB, stays, so the slices before an edit keep their encoded frames."""
    seconds = narration.duration_ms / 1000
    first = audio.final_audio(narration.path, tmp_path / "a.f32", duration_s=seconds)
    longer = audio.final_audio(narration.path, tmp_path / "b.f32", duration_s=seconds + 0.1)
    assert first.gain_db == longer.gain_db
    assert [piece.digest for piece in audio.slices(first, 0, first.samples - audio.AAC_FRAME * 10)] == [
        piece.digest for piece in audio.slices(longer, 0, first.samples - audio.AAC_FRAME * 10)
    ]
