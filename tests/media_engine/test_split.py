import pytest

from media_engine.errors import MediaError
from media_engine.sentences import TimedSentence
from media_engine.split import Segment, carry_over, group_segments, resplit


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


# ---------------------------------------------------------------- a storyboard carried over


def timed(texts: list[str], *, length_ms: int = 1000, pause_ms: int = 200):
    sentences = [
        TimedSentence(text, n * (length_ms + pause_ms), n * (length_ms + pause_ms) + length_ms)
        for n, text in enumerate(texts)
    ]
    return sentences, sentences[-1].end_ms


def runs(segments: list[Segment], sentences) -> list[tuple[int | None, list[str]]]:
    return [(segment.origin, [sentences[i].text for i in segment.sentence_indexes]) for segment in segments]


PREVIOUS = [["A。"], ["B。", "C。"], ["D。"]]


def test_an_unchanged_script_keeps_every_segment_and_moves_only_times():
    sentences, duration = timed(["A。", "B。", "C。", "D。"], length_ms=700)
    segments = carry_over(PREVIOUS, sentences, duration_ms=duration, target_ms=100_000)
    assert runs(segments, sentences) == [(0, ["A。"]), (1, ["B。", "C。"]), (2, ["D。"])]
    assert_tiles(segments, duration, len(sentences))
    assert segments[1].start_ms == (sentences[0].end_ms + sentences[1].start_ms) // 2


def test_a_sentence_edited_in_place_stays_in_its_segment():
    sentences, duration = timed(["A。", "B!", "C。", "D。"])
    assert runs(carry_over(PREVIOUS, sentences, duration_ms=duration), sentences) == [
        (0, ["A。"]),
        (1, ["B!", "C。"]),
        (2, ["D。"]),
    ]


def test_a_sentence_added_inside_a_segment_joins_it_and_between_segments_makes_new_ones():
    sentences, duration = timed(["X。", "A。", "Y。", "B。", "Z。", "C。", "D。", "W。"])
    assert runs(carry_over(PREVIOUS, sentences, duration_ms=duration, target_ms=1000), sentences) == [
        (None, ["X。"]),
        (0, ["A。"]),
        (None, ["Y。"]),
        (1, ["B。", "Z。", "C。"]),
        (2, ["D。"]),
        (None, ["W。"]),
    ]


def test_new_sentences_between_segments_are_grouped_to_the_target():
    sentences, duration = timed(["A。", "N1。", "N2。", "N3。", "N4。", "B。", "C。", "D。"])
    segments = carry_over(PREVIOUS, sentences, duration_ms=duration, target_ms=2400)
    assert runs(segments, sentences) == [
        (0, ["A。"]),
        (None, ["N1。", "N2。"]),
        (None, ["N3。", "N4。"]),
        (1, ["B。", "C。"]),
        (2, ["D。"]),
    ]
    assert_tiles(segments, duration, len(sentences))


def test_removed_sentences_shrink_their_segment_and_an_emptied_segment_goes():
    sentences, duration = timed(["A。", "C。"])
    assert runs(carry_over(PREVIOUS, sentences, duration_ms=duration), sentences) == [
        (0, ["A。"]),
        (1, ["C。"]),
    ]
    sentences, duration = timed(["B。", "C。", "D。"])
    assert runs(carry_over(PREVIOUS, sentences, duration_ms=duration), sentences) == [
        (1, ["B。", "C。"]),
        (2, ["D。"]),
    ]


def test_sentences_moved_out_of_order_become_new_segments():
    sentences, duration = timed(["D。", "A。", "B。", "C。"])
    segments = carry_over(PREVIOUS, sentences, duration_ms=duration, target_ms=1000)
    origins = [origin for origin, _texts in runs(segments, sentences) if origin is not None]
    assert origins == sorted(set(origins))  # each earlier segment continues at most once, in order
    assert_tiles(segments, duration, len(sentences))


def test_resplit_keeps_only_segments_whose_exact_sentences_survive():
    sentences, duration = timed(["A。", "B。", "C。", "D。"])
    segments = resplit(PREVIOUS, sentences, duration_ms=duration, target_ms=1000)
    assert runs(segments, sentences) == [(0, ["A。"]), (None, ["B。"]), (None, ["C。"]), (2, ["D。"])]
