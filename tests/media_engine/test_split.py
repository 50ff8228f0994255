import pytest

from media_engine.errors import MediaError
from media_engine.sentences import TimedSentence
from media_engine.split import Segment, group_segments


def narration_of(lengths_ms: list[int], *, pause_ms: int = 250, lead_ms: int = 0, tail_ms: int = 0):
    """Sentences of the given lengths separated by pauses, and the narration's duration."""
    sentences = []
    position = lead_ms
    for number, length in enumerate(lengths_ms):
        sentences.append(TimedSentence(f"第{number}句。", position, position + length))
        position += length + pause_ms
    return sentences, sentences[-1].end_ms + tail_ms


def assert_tiles(segments: list[Segment], duration_ms: int, sentence_count: int) -> None:
    assert segments[0].start_ms == 0
    assert segments[-1].end_ms == duration_ms
    for current, following in zip(segments, segments[1:]):
        assert current.end_ms == following.start_ms
    assert [segment.index for segment in segments] == list(range(len(segments)))
    assert [i for segment in segments for i in segment.sentence_indexes] == list(range(sentence_count))


def test_segments_tile_the_narration_from_zero_to_its_end():
    sentences, duration = narration_of([1800, 2100, 1500, 2600, 900, 3000, 1200], lead_ms=120, tail_ms=300)
    segments = group_segments(sentences, duration_ms=duration, target_ms=5000)
    assert len(segments) > 1
    assert_tiles(segments, duration, len(sentences))


def test_boundaries_fall_in_the_middle_of_the_pause():
    sentences, duration = narration_of([2400, 2400, 2400, 2400], pause_ms=300)
    segments = group_segments(sentences, duration_ms=duration, target_ms=5000)
    for segment in segments[:-1]:
        before = sentences[segment.sentence_indexes[-1]]
        after = sentences[segment.sentence_indexes[-1] + 1]
        assert segment.end_ms == (before.end_ms + after.start_ms) // 2


def test_segment_lengths_stay_near_the_target():
    lengths = [1200, 800, 1500, 1000, 1300, 700, 1600, 900, 1100, 1400, 1000, 1200, 800, 1500]
    sentences, duration = narration_of(lengths)
    segments = group_segments(sentences, duration_ms=duration, target_ms=4000)
    assert_tiles(segments, duration, len(sentences))
    assert len(segments) >= 3
    for segment in segments:
        assert 2000 <= segment.end_ms - segment.start_ms <= 6000


def test_a_single_long_sentence_is_one_whole_segment():
    sentences, duration = narration_of([14_000], tail_ms=200)
    assert group_segments(sentences, duration_ms=duration, target_ms=5000) == [
        Segment(index=0, start_ms=0, end_ms=14_200, text="第0句。", sentence_indexes=[0])
    ]


def test_a_long_sentence_among_short_ones_is_never_split():
    sentences, duration = narration_of([1000, 12_000, 1000, 1000])
    segments = group_segments(sentences, duration_ms=duration, target_ms=5000)
    assert_tiles(segments, duration, len(sentences))
    assert any(1 in segment.sentence_indexes for segment in segments)


def test_a_short_remainder_joins_the_last_segment():
    sentences, duration = narration_of([2300, 2300, 500])
    segments = group_segments(sentences, duration_ms=duration, target_ms=5000)
    assert [segment.sentence_indexes for segment in segments] == [[0, 1, 2]]


def test_segment_text_joins_chinese_without_and_english_with_spaces():
    chinese = [TimedSentence("你好。", 0, 1000), TimedSentence("再见。", 1200, 2000)]
    english = [TimedSentence("Hello there.", 0, 1000), TimedSentence("Good night.", 1200, 2000)]
    assert group_segments(chinese, duration_ms=2000)[0].text == "你好。再见。"
    assert group_segments(english, duration_ms=2000)[0].text == "Hello there. Good night."


def test_no_sentences_give_no_segments():
    assert group_segments([], duration_ms=0) == []


def test_a_duration_shorter_than_the_sentences_is_an_error():
    sentences, duration = narration_of([1000, 1000])
    with pytest.raises(MediaError, match="ends before"):
        group_segments(sentences, duration_ms=duration - 1)
