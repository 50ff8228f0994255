import wave
from pathlib import Path

import numpy as np
import pytest

from media_engine import ffmpeg, fonts, subtitles, tts
from media_engine.chunks import AssEvents
from media_engine.errors import Cancelled, MediaError
from media_engine.subtitles import KaraokeStyle
from media_engine.tts import EspeakBackend, TTSBackend, VoiceSpec

CHINESE = VoiceSpec(name="", language="zh-CN")
SENTENCES = ["今天天气很好。", "我们去公园散步。", "晚上回家吃饭。"]


class CountingBackend(EspeakBackend):
    """espeak-ng that records every sentence it is asked to synthesize."""

    calls: list[str] = []

    def synthesize_sentence(self, text, *, voice, speed, out_path):
        CountingBackend.calls.append(text)
        return super().synthesize_sentence(text, voice=voice, speed=speed, out_path=out_path)


class CloningBackend(CountingBackend):
    """Stands in for a voice-cloning backend: needs a reference, speaks (and counts) with espeak-ng."""

    needs_reference = True


@pytest.fixture
def counting(monkeypatch):
    # Registered by dotted path, the way real backends are, so get_backend's import runs.
    monkeypatch.setitem(tts.BACKENDS, "counting", f"{__name__}.CountingBackend")
    monkeypatch.setitem(tts.BACKENDS, "cloning", f"{__name__}.CloningBackend")
    monkeypatch.setattr(CountingBackend, "calls", [])
    return CountingBackend.calls


@pytest.fixture(scope="module")
def narration(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("narration")
    return tts.synthesize(
        SENTENCES, platform="espeak", voice=CHINESE, speed=1.0, out_dir=out_dir, pause_ms=250
    )


def read_samples(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as reader:
        rate = reader.getframerate()
        frames = reader.readframes(reader.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768
    return samples, rate


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def test_narration_duration_matches_the_file_and_the_sentences(narration):
    assert narration.path.is_file()
    assert abs(ffmpeg.duration(narration.path) * 1000 - narration.duration_ms) <= 20
    spoken = sum(s.end_ms - s.start_ms for s in narration.sentences)
    assert spoken + 250 * (len(SENTENCES) - 1) == narration.duration_ms


def test_sentence_times_are_monotonic_without_overlap(narration):
    assert [s.text for s in narration.sentences] == SENTENCES
    assert narration.sentences[0].start_ms == 0
    assert narration.sentences[-1].end_ms == narration.duration_ms
    for sentence in narration.sentences:
        assert sentence.start_ms < sentence.end_ms
    for current, following in zip(narration.sentences, narration.sentences[1:]):
        assert following.start_ms - current.end_ms == 250


def test_each_sentence_span_holds_speech_and_each_pause_is_silent(narration):
    samples, rate = read_samples(narration.path)
    per_ms = rate // 1000
    loudness = []
    for sentence in narration.sentences:
        loudness.append(rms(samples[sentence.start_ms * per_ms : sentence.end_ms * per_ms]))
    assert min(loudness) > 0.02  # about -34 dBFS: clearly speech
    for current, following in zip(narration.sentences, narration.sentences[1:]):
        assert rms(samples[current.end_ms * per_ms : following.start_ms * per_ms]) == 0
    # Normalised per sentence: no sentence much louder than another.
    assert max(loudness) / min(loudness) < 1.6


def test_output_is_mono_24khz_16bit(narration):
    stream = ffmpeg.probe(narration.path)["streams"][0]
    assert (stream["channels"], stream["sample_rate"], stream["codec_name"]) == (1, "24000", "pcm_s16le")


def test_rerun_synthesizes_only_the_changed_sentence(counting, tmp_path):
    first = tts.synthesize(SENTENCES, platform="counting", voice=CHINESE, speed=1.0, out_dir=tmp_path)
    assert counting == SENTENCES

    counting.clear()
    again = tts.synthesize(SENTENCES, platform="counting", voice=CHINESE, speed=1.0, out_dir=tmp_path)
    assert counting == []
    assert again == first

    counting.clear()
    edited = [SENTENCES[0], "我们去海边游泳。", SENTENCES[2]]
    changed = tts.synthesize(edited, platform="counting", voice=CHINESE, speed=1.0, out_dir=tmp_path)
    assert counting == ["我们去海边游泳。"]
    assert changed.sentences[0] == first.sentences[0]
    assert [s.text for s in changed.sentences] == edited


def test_a_second_attempt_narrates_from_the_shared_cache_into_a_folder_of_its_own(counting, tmp_path):
    cache = tmp_path / "cache" / "sentences"
    first = tts.synthesize(
        SENTENCES,
        platform="counting",
        voice=CHINESE,
        speed=1.0,
        out_dir=tmp_path / "attempt-1",
        cache_dir=cache,
    )
    counting.clear()
    again = tts.synthesize(
        SENTENCES,
        platform="counting",
        voice=CHINESE,
        speed=1.0,
        out_dir=tmp_path / "attempt-2" / "narration",
        cache_dir=cache,
    )
    assert counting == []  # every sentence came from the cache
    assert again.path == tmp_path / "attempt-2" / "narration" / "narration.wav"
    assert again.path.read_bytes() == first.path.read_bytes()


def _narrated_before_and_after_an_edit(sentences: list[str], tmp_path, fps: int):
    """The sentences narrated on `fps` frames, then again with the first one a sentence longer."""
    first = tts.synthesize(
        sentences, platform="counting", voice=CHINESE, speed=1.0, out_dir=tmp_path, frame_rate=fps
    )
    edited = [sentences[0] + "今天天气很好。", *sentences[1:]]
    changed = tts.synthesize(
        edited, platform="counting", voice=CHINESE, speed=1.0, out_dir=tmp_path, frame_rate=fps
    )
    return first, changed


@pytest.mark.parametrize("fps", [30, 25])
def test_with_a_frame_rate_sentences_lie_on_frames_and_an_edit_moves_the_rest_by_whole_frames(
    counting, tmp_path, fps
):
    sentences = [
        "今天早上天气很好，阳光非常明媚，我们一家人一起去公园散步，然后在湖边坐了很久。",
        *SENTENCES[1:],
    ]  # the first has several clauses
    first, changed = _narrated_before_and_after_an_edit(sentences, tmp_path, fps)

    def frames(ms: int) -> float:
        return ms * fps / 1000

    for sentence in first.sentences + changed.sentences:
        for ms in (sentence.start_ms, sentence.end_ms):
            assert abs(frames(ms) - round(frames(ms))) < 0.05, (sentence, ms)
    # The pause is an even number of frames, so the cut halfway through it is on a frame too.
    for before, after in zip(first.sentences, first.sentences[1:]):
        assert round(frames(after.start_ms - before.end_ms)) % 2 == 0
    shifts = {
        round(frames(new.start_ms - old.start_ms))
        for old, new in zip(first.sentences[1:], changed.sentences[1:])
    }
    assert len(shifts) == 1 and shifts.pop() > 0
    # The later sentences keep their lengths in frames.
    assert [round(frames(s.end_ms - s.start_ms)) for s in first.sentences[1:]] == [
        round(frames(s.end_ms - s.start_ms)) for s in changed.sentences[1:]
    ]
    # Clause cues stay where their audio is: a sentence's first clause starts it, its last one (padded
    # to the frame) ends it, and the clauses inside are apart by the even number of frames nearest
    # to CLAUSE_PAUSE_MS.
    clause_pause = 2 * round(tts.CLAUSE_PAUSE_MS * fps / 2000)
    for narration in (first, changed):
        for sentence in narration.sentences:
            inside = [c for c in narration.clauses if sentence.start_ms <= c.start_ms < sentence.end_ms]
            assert inside[0].start_ms == sentence.start_ms and inside[-1].end_ms == sentence.end_ms
            assert all(
                round(frames(b.start_ms - a.end_ms)) == clause_pause for a, b in zip(inside, inside[1:])
            )
        assert len(narration.clauses) > len(narration.sentences)  # some sentence has several clauses
        # Word times move with their clause: each word lies inside its sentence's span.
        for word in narration.words:
            sentence = narration.sentences[word.sentence]
            assert sentence.start_ms <= word.start_ms <= word.end_ms <= sentence.end_ms
    samples, rate = read_samples(changed.path)
    assert abs(len(samples) / rate * 1000 - changed.duration_ms) <= 1


@pytest.mark.parametrize("fps", [30, 25])
def test_with_a_frame_rate_every_clause_cue_lies_on_frames_so_an_edit_moves_later_cues_by_whole_frames(
    counting, tmp_path, fps
):
    """A cue that ended between two frames was snapped to the nearest one from its centiseconds in
    the subtitles; moved by whole frames after an edit, its rounding changed and it could snap one
    frame the other way, so a later segment showed its cue a frame longer and its chunk was made
    again (and its frames differed). On frames, a cue keeps its frames wherever it moves."""
    sentences = [
        "今天早上天气很好，阳光非常明媚，我们一家人一起去公园散步，然后在湖边坐了很久。",
        "晚上我们早点回家，好好休息，明天还要早起上班。",
        *SENTENCES[1:],
    ]
    first, changed = _narrated_before_and_after_an_edit(sentences, tmp_path, fps)

    def frames(ms: int) -> float:
        return ms * fps / 1000

    for narration in (first, changed):
        assert len(narration.clauses) > len(narration.sentences) + 2  # clauses inside sentences
        for clause in narration.clauses:
            for ms in (clause.start_ms, clause.end_ms):
                assert abs(frames(ms) - round(frames(ms))) < 0.05, (clause, ms)
    # The clauses of the sentences after the edited one.
    old = [clause for clause in first.clauses if clause.start_ms >= first.sentences[1].start_ms]
    new = [clause for clause in changed.clauses if clause.start_ms >= changed.sentences[1].start_ms]
    assert [clause.text for clause in old] == [clause.text for clause in new] and len(old) >= 3
    shifts = {round(frames(b.start_ms - a.start_ms)) for a, b in zip(old, new)}
    shifts |= {round(frames(b.end_ms - a.end_ms)) for a, b in zip(old, new)}
    assert len(shifts) == 1 and shifts.pop() > 0


@pytest.mark.parametrize("fps", [30, 25])
def test_with_a_frame_rate_word_times_lie_on_frames_so_karaoke_captions_move_by_whole_frames(
    counting, tmp_path, fps
):
    """Karaoke events start and end at word times: off the frames, a whole-frame shift changed
    their centiseconds by a few ms, each snapped to another frame here and there, and most later
    chunks were made again after a one-character edit. On frames, the later captions of an edit
    show on the same frames of their chunk, event for event."""
    sentences = [
        "今天早上天气很好，阳光非常明媚，我们一家人一起去公园散步。",
        "晚上我们早点回家，好好休息，明天还要早起上班。",
        *SENTENCES[1:],
    ]
    first, changed = _narrated_before_and_after_an_edit(sentences, tmp_path, fps)

    def frames(ms: int) -> float:
        return ms * fps / 1000

    for narration in (first, changed):
        assert len(narration.words) > 20
        for word in narration.words:
            for ms in (word.start_ms, word.end_ms):
                assert abs(frames(ms) - round(frames(ms))) < 0.05, (word, ms)
    old = [word for word in first.words if word.sentence >= 1]
    new = [word for word in changed.words if word.sentence >= 1]
    assert [word.text for word in old] == [word.text for word in new]
    shift = round(frames(changed.sentences[1].start_ms - first.sentences[1].start_ms))
    assert shift > 0
    assert {round(frames(b.start_ms - a.start_ms)) for a, b in zip(old, new)} == {shift}
    assert {round(frames(b.end_ms - a.end_ms)) for a, b in zip(old, new)} == {shift}

    # The burned karaoke captions of the later sentences, as each chunk sees them.
    def events(narration, path: Path) -> AssEvents:
        style = subtitles.SubtitleStyle(font_size=24, margin_v=20, margin_h=20)
        cues = subtitles.make_cues(
            narration.clauses, font_path=fonts.default_font_path(), font_size=24, max_width_px=400
        )
        subtitles.write_ass(
            cues, path, width=480, height=270, style=style, karaoke=KaraokeStyle(), words=narration.words
        )
        return AssEvents.read(path)

    before, after = events(first, tmp_path / "before.ass"), events(changed, tmp_path / "after.ass")
    assert "\\1c" in after.header + "".join(fields[-1] for _, _, fields in after.events)
    for sentence in first.sentences[1:]:
        start, end = round(frames(sentence.start_ms)), round(frames(sentence.end_ms))
        assert before.for_frames(start, end, fps) == after.for_frames(start + shift, end + shift, fps)


def test_a_different_speed_is_synthesized_anew_and_speaks_faster(counting, tmp_path):
    normal = tts.synthesize(SENTENCES[:1], platform="counting", voice=CHINESE, speed=1.0, out_dir=tmp_path)
    fast = tts.synthesize(SENTENCES[:1], platform="counting", voice=CHINESE, speed=2.0, out_dir=tmp_path)
    assert len(counting) == 2
    assert fast.duration_ms < normal.duration_ms * 0.75


def test_progress_is_reported_after_each_sentence(tmp_path):
    fractions = []
    tts.synthesize(
        SENTENCES[:2],
        platform="espeak",
        voice=CHINESE,
        speed=1.0,
        out_dir=tmp_path,
        on_progress=fractions.append,
    )
    assert fractions == [0.5, 1.0]


def test_cancel_is_checked_before_each_sentence(counting, tmp_path):
    checks = []

    def cancel():
        checks.append(1)
        return len(checks) > 1  # let the first sentence through, stop before the second

    with pytest.raises(Cancelled):
        tts.synthesize(
            SENTENCES, platform="counting", voice=CHINESE, speed=1.0, out_dir=tmp_path, cancel=cancel
        )
    assert counting == SENTENCES[:1]
    assert not (tmp_path / "narration.wav").exists()


def test_unknown_platform_error_names_it_and_the_known_ones(tmp_path):
    with pytest.raises(MediaError, match="'nosuch'.*espeak") as caught:
        tts.synthesize(SENTENCES, platform="nosuch", voice=CHINESE, speed=1.0, out_dir=tmp_path)
    assert caught.value.permanent


def test_corrupt_reference_audio_error_names_the_file(counting, tmp_path):
    reference = tmp_path / "my-voice.wav"
    reference.write_bytes(b"RIFF this is not audio at all" * 10)
    voice = VoiceSpec(name="", language="zh-CN", reference_path=reference)
    with pytest.raises(MediaError, match="my-voice.wav"):
        tts.synthesize(SENTENCES, platform="cloning", voice=voice, speed=1.0, out_dir=tmp_path / "out")


def test_missing_reference_audio_error_names_the_file(counting, tmp_path):
    voice = VoiceSpec(name="", language="zh-CN", reference_path=tmp_path / "gone.wav")
    with pytest.raises(MediaError, match="gone.wav"):
        tts.synthesize(SENTENCES, platform="cloning", voice=voice, speed=1.0, out_dir=tmp_path / "out")


def test_a_new_reference_recording_resynthesizes(counting, tmp_path):
    reference = tmp_path / "reference.wav"
    ffmpeg.run(["-f", "lavfi", "-i", "sine=frequency=220:duration=0.3", reference])
    voice = VoiceSpec(name="", language="zh-CN", reference_path=reference)
    tts.synthesize(SENTENCES[:1], platform="cloning", voice=voice, speed=1.0, out_dir=tmp_path / "out")
    tts.synthesize(SENTENCES[:1], platform="cloning", voice=voice, speed=1.0, out_dir=tmp_path / "out")
    assert len(counting) == 1
    ffmpeg.run(["-f", "lavfi", "-i", "sine=frequency=330:duration=0.3", reference])
    tts.synthesize(SENTENCES[:1], platform="cloning", voice=voice, speed=1.0, out_dir=tmp_path / "out")
    assert len(counting) == 2


@pytest.mark.parametrize("speed", [0.4, 2.1])
def test_speed_outside_half_to_double_is_rejected(speed, tmp_path):
    with pytest.raises(MediaError, match="speed"):
        tts.synthesize(SENTENCES, platform="espeak", voice=CHINESE, speed=speed, out_dir=tmp_path)


def test_empty_sentence_list_is_rejected(tmp_path):
    with pytest.raises(MediaError, match="empty"):
        tts.synthesize([], platform="espeak", voice=CHINESE, speed=1.0, out_dir=tmp_path)


def test_unknown_espeak_voice_fails_with_the_espeak_message(tmp_path):
    voice = VoiceSpec(name="zzvoice", language="xx")
    with pytest.raises(MediaError, match="sentence 1.*espeak-ng failed.*voice"):
        tts.synthesize(["hello."], platform="espeak", voice=voice, speed=1.0, out_dir=tmp_path)


@pytest.mark.parametrize(
    ("language", "espeak_voice"),
    [
        ("zh-CN", "cmn"),
        ("zh-TW", "cmn"),
        ("en-US", "en-us"),
        ("en-GB", "en-gb"),
        ("ja-JP", "ja"),
        ("de-DE", "de"),
    ],
)
def test_languages_map_to_espeak_voices(language, espeak_voice):
    assert EspeakBackend.voice_for(language) == espeak_voice


def test_english_narration_works_with_the_language_default_voice(tmp_path):
    narration = tts.synthesize(
        ["Hello there.", "Good night."],
        platform="espeak",
        voice=VoiceSpec(name="", language="en-US"),
        speed=1.2,
        out_dir=tmp_path,
    )
    assert len(narration.sentences) == 2
    assert narration.duration_ms > 500


class SilentBackend(TTSBackend):
    def synthesize_sentence(self, text, *, voice, speed, out_path):
        ffmpeg.run(["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "0.5", out_path])


def test_silence_from_a_backend_is_an_error_and_is_not_cached(monkeypatch, tmp_path):
    monkeypatch.setitem(tts.BACKENDS, "silent", f"{__name__}.SilentBackend")
    with pytest.raises(MediaError, match="sentence 1 .*silence"):
        tts.synthesize(["你好。"], platform="silent", voice=CHINESE, speed=1.0, out_dir=tmp_path)
    assert list((tmp_path / "sentences").iterdir()) == []
