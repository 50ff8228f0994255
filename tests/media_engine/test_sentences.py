import pytest

from media_engine.errors import MediaError
from media_engine.sentences import split_sentences


def test_chinese_text_splits_after_each_mark_keeping_the_mark():
    text = "今天天气很好。我们去公园散步！你来吗？好的；走吧"
    assert split_sentences(text) == ["今天天气很好。", "我们去公园散步！", "你来吗？", "好的；", "走吧"]


def test_closing_quote_stays_with_its_sentence():
    assert split_sentences("“你好！”他说。") == ["“你好！”", "他说。"]


def test_english_splits_at_full_stops_but_not_inside_numbers_or_names():
    text = 'It costs 3.14 dollars. Visit example.com today! He said "go away." Why?'
    assert split_sentences(text) == [
        "It costs 3.14 dollars.",
        "Visit example.com today!",
        'He said "go away."',
        "Why?",
    ]


def test_newline_ends_a_sentence_without_punctuation():
    assert split_sentences("第一行没有标点\n\n  第二行也没有  \nLast line") == [
        "第一行没有标点",
        "第二行也没有",
        "Last line",
    ]


def test_overlong_chinese_sentence_is_cut_at_commas():
    text = "春天来了，花都开了，小鸟在树上唱歌，孩子们在草地上奔跑。"
    pieces = split_sentences(text, max_chars=12)
    assert pieces == ["春天来了，花都开了，", "小鸟在树上唱歌，", "孩子们在草地上奔跑。"]
    assert "".join(pieces) == text


def test_overlong_english_sentence_is_cut_at_commas_but_not_inside_numbers():
    text = "We walked 1,000 steps, then we rested by the lake, and finally we went home."
    pieces = split_sentences(text, max_chars=30)
    assert pieces == ["We walked 1,000 steps,", "then we rested by the lake,", "and finally we went home."]


def test_overlong_clause_without_commas_is_hard_cut_within_the_limit():
    text = "一二三四五六七八九十一二三四五六七八九十一二三四五。"
    pieces = split_sentences(text, max_chars=10)
    assert all(len(piece) <= 10 for piece in pieces)
    assert "".join(pieces) == text
    assert pieces == ["一二三四五六七八九十", "一二三四五六七八九十", "一二三四五。"]


def test_hard_cut_never_starts_a_piece_with_punctuation():
    pieces = split_sentences("一二三四五六七八九十一，二三四五", max_chars=11)
    assert all(piece[0] not in "，。" for piece in pieces)
    assert all(len(piece) <= 11 for piece in pieces)


def test_english_hard_cut_falls_on_a_space():
    text = "a very long sentence without any commas that goes on and on"
    pieces = split_sentences(text, max_chars=20)
    assert all(len(piece) <= 20 for piece in pieces)
    assert " ".join(pieces) == text


def test_punctuation_only_pieces_are_dropped():
    assert split_sentences("你好。。。！！\n……\n——\n再见！") == ["你好。。。！！", "再见！"]


@pytest.mark.parametrize("text", ["", "   \n\n", "。！？……", "... !!! ——"])
def test_content_without_speakable_text_is_an_error(text):
    with pytest.raises(MediaError, match="content has no speakable text"):
        split_sentences(text)
