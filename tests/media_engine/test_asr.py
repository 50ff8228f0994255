"""Sentence times of an uploaded narration: the alignment on synthetic times, and the real
FunASR AutoModel path on tiny random Paraformer / FSMN-VAD / CT-punc folders."""

import random
import subprocess
from pathlib import Path

import pytest

from media_engine import asr
from media_engine.errors import MediaError
from media_engine.sentences import TimedSentence
from tests.media_engine.tiny_models import build_tiny_ct_punc, build_tiny_fsmn_vad, build_tiny_paraformer

SCRIPT_ZH = [
    "今天我们来聊一聊睡眠。",
    "很多人每天只睡五个小时，这其实远远不够！",
    "专家建议，成年人每晚应该睡七到八个小时。",
    "睡前一小时最好放下手机。",
    "你今晚会早点睡吗？",
]


def narrate(script: list[str], *, char_ms: int, pause_ms: int, lead_ms: int = 300):
    """Truth: each letter/digit takes `char_ms`, sentences are separated by `pause_ms`."""
    char_times: list[tuple[str, int, int]] = []
    truth: list[TimedSentence] = []
    position = lead_ms
    for sentence in script:
        start = position
        for char in sentence:
            if asr._normalise(char):
                char_times.append((char, position, position + char_ms))
                position += char_ms
        truth.append(TimedSentence(sentence, start, position))
        position += pause_ms
    return char_times, truth, position + lead_ms


def recognise(char_times: list[tuple[str, int, int]], *, every: int, errors: dict[int, str]):
    """What an ASR would return: other boundaries (every `every` characters, blind to the
    script's sentences), no punctuation, and characters misheard, dropped ("") or added."""
    sentences = []
    for first in range(0, len(char_times), every):
        chunk = char_times[first : first + every]
        text = "".join(errors.get(first + offset, char) for offset, (char, _, _) in enumerate(chunk))
        sentences.append(TimedSentence(text, chunk[0][1], chunk[-1][2]))
    return sentences


def assert_close(aligned: list[TimedSentence], truth: list[TimedSentence], tolerance_ms: int) -> None:
    assert [sentence.text for sentence in aligned] == [sentence.text for sentence in truth]
    for got, want in zip(aligned, truth, strict=True):
        assert abs(got.start_ms - want.start_ms) <= tolerance_ms, (got, want)
        assert abs(got.end_ms - want.end_ms) <= tolerance_ms, (got, want)


def assert_well_formed(aligned: list[TimedSentence], duration_ms: int) -> None:
    previous_end = 0
    for sentence in aligned:
        assert isinstance(sentence.start_ms, int) and isinstance(sentence.end_ms, int)
        assert previous_end <= sentence.start_ms < sentence.end_ms <= duration_ms
        previous_end = sentence.end_ms


def test_script_sentences_get_the_times_they_were_spoken_at() -> None:
    char_times, truth, duration_ms = narrate(SCRIPT_ZH, char_ms=220, pause_ms=400)
    # misheard homophones, one dropped and one extra character
    heard = recognise(char_times, every=13, errors={3: "门", 20: "事", 31: "", 45: "吧吧", 60: "谁"})

    aligned = asr.align(SCRIPT_ZH, heard, duration_ms=duration_ms)

    # Inside one recognised chunk the times are interpolated evenly, so a pause inside a
    # chunk blurs a boundary by at most a pause's worth.
    assert_close(aligned, truth, tolerance_ms=400)
    assert_well_formed(aligned, duration_ms)


def test_token_times_make_the_alignment_exact() -> None:
    char_times, truth, duration_ms = narrate(SCRIPT_ZH, char_ms=220, pause_ms=400)
    errors = {3: "门", 20: "事", 45: "吧"}
    heard = [
        TimedSentence(errors.get(index, char), start, end)
        for index, (char, start, end) in enumerate(char_times)
    ]
    assert_close(asr.align(SCRIPT_ZH, heard, duration_ms=duration_ms), truth, tolerance_ms=1)


def test_exact_when_recognised_sentences_match_the_script() -> None:
    char_times, truth, duration_ms = narrate(SCRIPT_ZH, char_ms=200, pause_ms=500)
    heard = [TimedSentence(s.text.replace("，", " ").rstrip("。！？"), s.start_ms, s.end_ms) for s in truth]
    assert_close(asr.align(SCRIPT_ZH, heard, duration_ms=duration_ms), truth, tolerance_ms=1)


def test_english_words_with_other_case_and_punctuation() -> None:
    script = [
        "Sleep is the best medicine.",
        "Most adults need seven to eight hours!",
        "Put the phone away at 10 pm.",
    ]
    char_times, truth, duration_ms = narrate(script, char_ms=70, pause_ms=350)
    heard = recognise(char_times, every=17, errors={0: "S", 30: "a", 52: "x"})
    heard = [TimedSentence(sentence.text.upper(), sentence.start_ms, sentence.end_ms) for sentence in heard]
    assert_close(asr.align(script, heard, duration_ms=duration_ms), truth, tolerance_ms=350)


def test_unheard_sentence_gets_interpolated_times() -> None:
    script = ["第一句话在这里。", "这句完全没有被识别出来。", "第三句话也在这里。"]
    char_times, truth, duration_ms = narrate(script, char_ms=200, pause_ms=300)
    heard = [
        TimedSentence("第一句话在这里", truth[0].start_ms, truth[0].end_ms),
        TimedSentence("第三句话也在这里", truth[2].start_ms, truth[2].end_ms),
    ]

    aligned = asr.align(script, heard, duration_ms=duration_ms)

    assert aligned[0] == truth[0] and aligned[2] == truth[2]
    assert (aligned[1].start_ms, aligned[1].end_ms) == (truth[0].end_ms, truth[2].start_ms)


def test_nothing_recognised_spreads_the_script_by_length() -> None:
    aligned = asr.align(["一二三", "四五六七八九"], [], duration_ms=9000)
    assert [(s.start_ms, s.end_ms) for s in aligned] == [(0, 3000), (3000, 9000)]


def test_recognition_longer_than_the_audio_is_clamped() -> None:
    aligned = asr.align(["一二三四", "五六"], [TimedSentence("一二三四五六", 500, 12000)], duration_ms=10000)
    assert_well_formed(aligned, 10000)
    assert aligned[-1].end_ms == 10000


def test_sentence_info_is_read_as_it_is() -> None:
    result = {
        "text": "你好。再见。",
        "sentence_info": [
            {"text": "你好。", "start": 120, "end": 800.0, "timestamp": [[120, 400], [400, 800]]},
            {"text": "再见。", "start": 1200, "end": 1900, "timestamp": [[1200, 1500], [1500, 1900]]},
        ],
    }
    assert asr.sentences_from_result(result) == [
        TimedSentence("你好。", 120, 800),
        TimedSentence("再见。", 1200, 1900),
    ]


def test_sentence_info_tokens_with_words() -> None:
    result = {
        "text": "你好，world。",
        "sentence_info": [
            {
                "text": "你好，world。",
                "start": 0,
                "end": 900,
                "timestamp": [[0, 200], [200, 400], [500, 900]],
            },
            {"text": "再见。", "start": 1200, "end": 1900, "timestamp": [[1200, 1500]]},  # count mismatch
        ],
    }
    assert asr.sentences_from_result(result, words=True) == [
        TimedSentence("你", 0, 200),
        TimedSentence("好", 200, 400),
        TimedSentence("world", 500, 900),
        TimedSentence("再见。", 1200, 1900),
    ]


def test_token_timestamps_are_grouped_at_pauses_and_sentence_ends() -> None:
    result = {
        "text": "今 天 好 。 我 们 走",
        "timestamp": [[0, 100], [100, 200], [200, 300], [300, 310], [400, 500], [500, 600], [1300, 1400]],
    }
    assert asr.sentences_from_result(result) == [
        TimedSentence("今天好。", 0, 310),
        TimedSentence("我们", 400, 600),
        TimedSentence("走", 1300, 1400),
    ]
    english = {"text": "hello there friend", "timestamp": [[0, 300], [300, 600], [700, 900]]}
    assert asr.sentences_from_result(english) == [TimedSentence("hello there friend", 0, 900)]
    assert asr.sentences_from_result({"text": "", "timestamp": []}) == []


# --- the real FunASR path on tiny random models ----------------------------------------------


@pytest.fixture(scope="module")
def funasr_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("funasr")
    return {
        "model": build_tiny_paraformer(root / "paraformer"),
        "vad": build_tiny_fsmn_vad(root / "fsmn-vad"),
        "punc": build_tiny_ct_punc(root / "ct-punc"),
    }


@pytest.fixture(scope="module")
def narration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s of a tone switched on and off over light noise, as 44.1 kHz stereo AAC: transcribe
    must convert it (and the random tiny model hears a dozen or more tokens in it)."""
    path = tmp_path_factory.mktemp("audio") / "narration.m4a"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "aevalsrc=0.3*sin(2*PI*220*t)*gt(sin(2*PI*1.5*t)\\,0)+0.02*(random(0)-0.5):s=44100:d=3",
            "-ac",
            "2",
            "-c:a",
            "aac",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


def test_tiny_paraformer_runs_through_automodel(funasr_dirs: dict[str, Path], narration: Path) -> None:
    sentences = asr.transcribe(narration, model_dir=funasr_dirs["model"], vad_dir=None, punc_dir=None)
    assert isinstance(sentences, list) and sentences  # random weights: content is noise, but there is some
    for sentence in sentences:
        assert isinstance(sentence, TimedSentence) and sentence.text
        assert isinstance(sentence.start_ms, int) and isinstance(sentence.end_ms, int)
        assert 0 <= sentence.start_ms <= sentence.end_ms <= 3100


def test_tiny_models_with_vad_and_punctuation_give_sentence_info(
    funasr_dirs: dict[str, Path],
    narration: Path,
) -> None:
    sentences = asr.transcribe(
        narration, model_dir=funasr_dirs["model"], vad_dir=funasr_dirs["vad"], punc_dir=funasr_dirs["punc"]
    )
    assert sentences
    assert all(
        isinstance(s.start_ms, int) and isinstance(s.end_ms, int) and "<unk>" not in s.text for s in sentences
    )
    assert [s.start_ms for s in sentences] == sorted(s.start_ms for s in sentences)
    # and the script can be aligned on whatever was recognised
    aligned = asr.align(SCRIPT_ZH, sentences, duration_ms=3000)
    assert_well_formed(aligned, 3000)

    tokens = asr.transcribe(
        narration,
        model_dir=funasr_dirs["model"],
        vad_dir=funasr_dirs["vad"],
        punc_dir=funasr_dirs["punc"],
        words=True,
    )
    assert len(tokens) > len(sentences) > 1
    # CJK: one character each
    assert all(len(token.text) == 1 and token.start_ms < token.end_ms for token in tokens)
    # and the script's words get those tokens' times, inside their aligned sentences
    assert asr.has_token_times(tokens)
    aligned = asr.align(SCRIPT_ZH, tokens, duration_ms=3000)
    spoken = asr.align_words(SCRIPT_ZH, tokens, aligned)
    assert spoken
    previous_end = 0
    for word in spoken:
        assert previous_end <= word.start_ms <= word.end_ms
        assert (
            aligned[word.sentence].start_ms <= word.start_ms and word.end_ms <= aligned[word.sentence].end_ms
        )
        previous_end = word.end_ms


def test_token_times_give_each_script_word_its_time() -> None:
    script = ["今天我们来聊一聊睡眠。", "Most adults need seven hours!"]
    char_times, truth, duration_ms = narrate(script, char_ms=100, pause_ms=400)
    # Per-token recognition, as transcribe(words=True) returns it: CJK characters, Latin words,
    # one character misheard.
    chars = iter(char_times)
    heard: list[TimedSentence] = []
    for sentence in script:
        for token in asr._tokens(sentence):
            timed = [next(chars) for _ in token]
            heard.append(TimedSentence(token.replace("睡", "水"), timed[0][1], timed[-1][2]))
    assert asr.has_token_times(heard)
    sentences = asr.align(script, heard, duration_ms=duration_ms)

    spoken = asr.align_words(script, heard, sentences)

    assert [word.text for word in spoken] == list("今天我们来聊一聊睡眠") + [
        "Most",
        "adults",
        "need",
        "seven",
        "hours",
    ]
    # Every character took 100 ms: a word's time is its characters' time, the misheard one's too.
    lengths = [word.end_ms - word.start_ms for word in spoken]
    assert lengths == [100] * 10 + [400, 600, 400, 500, 500]
    assert spoken[8].start_ms == truth[0].start_ms + 800
    for word in spoken:
        assert (
            sentences[word.sentence].start_ms
            <= word.start_ms
            < word.end_ms
            <= sentences[word.sentence].end_ms
        )


def test_sentence_times_alone_are_no_word_times() -> None:
    assert not asr.has_token_times([TimedSentence("今天我们来聊一聊睡眠", 0, 2000)])
    assert not asr.has_token_times([])


def test_model_is_loaded_once_per_process(funasr_dirs: dict[str, Path]) -> None:
    assert asr.load_model(funasr_dirs["model"]) is asr.load_model(funasr_dirs["model"])


def test_missing_model_folder_is_an_error_naming_it(tmp_path: Path, narration: Path) -> None:
    with pytest.raises(MediaError, match="paraformer-zh"):
        asr.transcribe(narration, model_dir=tmp_path / "paraformer-zh", vad_dir=None, punc_dir=None)


def test_folder_without_weights_is_refused(
    funasr_dirs: dict[str, Path],
    tmp_path: Path,
    narration: Path,
) -> None:
    broken = tmp_path / "no-weights"
    broken.mkdir()
    (broken / "config.yaml").write_text((funasr_dirs["vad"] / "config.yaml").read_text())
    with pytest.raises(MediaError, match="model.pt"):
        asr.transcribe(narration, model_dir=funasr_dirs["model"], vad_dir=broken, punc_dir=None)


def test_unreadable_audio_is_a_permanent_error(funasr_dirs: dict[str, Path], tmp_path: Path) -> None:
    bogus = tmp_path / "narration.mp3"
    bogus.write_bytes(bytes(random.Random(1).randrange(256) for _ in range(2000)))
    with pytest.raises(MediaError) as caught:
        asr.transcribe(bogus, model_dir=funasr_dirs["model"], vad_dir=None, punc_dir=None)
    assert caught.value.permanent
