"""Readable cues of real long articles: narrated clause by clause, each cue one clause's exact audio."""

import re
import subprocess
from pathlib import Path

import pytest

from accounts.brand import Brand
from media_engine import fonts, subtitles, tts
from media_engine.sentences import is_cjk_text, split_sentences
from media_engine.tts import VoiceSpec

# Two long articles narrated by espeak-ng.
pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parents[1] / "data"
# About 7 s: the clause cut aims at MAX_CLAUSE_MS and keeps what cannot be cut (no break in it) whole.
MAX_CUE_MS = 7500


def narrate(name: str, language: str, out_dir: Path) -> tts.Narration:
    text = (DATA / name).read_text(encoding="utf-8")
    return tts.synthesize(
        split_sentences(text),
        platform="espeak",
        voice=VoiceSpec(name="", language=language),
        speed=1.0,
        out_dir=out_dir,
    )


@pytest.fixture(scope="module")
def chinese(tmp_path_factory):
    return narrate("health_article_zh.txt", "zh-CN", tmp_path_factory.mktemp("zh"))


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    return narrate("health_article_en.txt", "en-US", tmp_path_factory.mktemp("en"))


def cues_for(narration: tts.Narration, width: int, height: int) -> tuple[list[subtitles.Cue], int]:
    """The cues the render's subtitles step makes for this frame size, and their line width."""
    style = Brand.from_extra({}).subtitle_style(width=width, height=height)
    max_width = subtitles.safe_text_width(width, style)
    font = subtitles._font(fonts.default_font_path(), style.font_size)
    cues = subtitles.make_cues(
        narration.clauses,
        font_path=fonts.default_font_path(),
        font_size=style.font_size,
        max_width_px=max_width,
    )
    text = " ".join(clause.text for clause in narration.clauses)
    return cues, subtitles.line_width_px(text, font=font, max_width_px=max_width)


@pytest.mark.parametrize(("width", "height"), [(1360, 768), (768, 1360)])
def test_long_chinese_article_cues_last_about_7s_in_two_lines_of_at_most_18_characters(
    chinese, width, height
):
    cues, _ = cues_for(chinese, width, height)
    durations = [cue.end_ms - cue.start_ms for cue in cues]
    assert max(durations) <= MAX_CUE_MS, durations
    assert all(1 <= len(cue.lines) <= 2 for cue in cues)
    assert max(len(line) for cue in cues for line in cue.lines) <= 18
    # Every cue is exactly one clause: its times are the clause audio's own.
    assert [(cue.start_ms, cue.end_ms) for cue in cues] == [(c.start_ms, c.end_ms) for c in chinese.clauses]
    # Cues are finer than sentences, and every sentence spans its clauses.
    assert len(chinese.clauses) > len(chinese.sentences)
    assert chinese.sentences[0].start_ms == chinese.clauses[0].start_ms
    assert chinese.sentences[-1].end_ms == chinese.clauses[-1].end_ms
    assert "".join(c.text for c in chinese.clauses) == "".join(s.text for s in chinese.sentences)


def test_long_english_article_cues_last_about_7s_in_two_lines_of_about_42_characters(english):
    assert not is_cjk_text(english.sentences[0].text)
    cues, line_width = cues_for(english, 1360, 768)
    font = subtitles._font(
        fonts.default_font_path(), Brand.from_extra({}).subtitle_style(width=1360, height=768).font_size
    )
    assert max(cue.end_ms - cue.start_ms for cue in cues) <= MAX_CUE_MS
    assert all(1 <= len(cue.lines) <= 2 for cue in cues)
    lines = [line for cue in cues for line in cue.lines]
    assert all(font.getlength(line) <= line_width for line in lines)
    assert max(len(line) for line in lines) <= 50 and any(len(line) >= 30 for line in lines)
    # Lines break between words only.
    words = " ".join(english.sentences[i].text for i in range(len(english.sentences))).split()
    assert " ".join(lines).split() == words


def test_clauses_of_one_sentence_are_closer_than_sentences(chinese):
    starts_of_sentences = {sentence.start_ms for sentence in chinese.sentences}
    for current, following in zip(chinese.clauses, chinese.clauses[1:]):
        gap = following.start_ms - current.end_ms
        expected = tts.SENTENCE_PAUSE_MS if following.start_ms in starts_of_sentences else tts.CLAUSE_PAUSE_MS
        assert gap == expected


def test_cue_times_match_the_silences_that_silencedetect_finds_in_the_narration(chinese):
    """Each gap between two cues is a pause in the narration, found by ffmpeg in the audio itself."""
    result = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-i",
            str(chinese.path),
            "-af",
            "silencedetect=noise=-50dB:d=0.08",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    starts = [float(value) * 1000 for value in re.findall(r"silence_start: ([\d.]+)", result.stderr)]
    ends = [float(value) * 1000 for value in re.findall(r"silence_end: ([\d.]+)", result.stderr)]
    silences = list(zip(starts, ends))
    # The clause audio keeps 30 ms of its own near-silent edges (TRIM_PADDING_MS).
    tolerance = tts.TRIM_PADDING_MS + 25
    cues, _ = cues_for(chinese, 1360, 768)
    for current, following in zip(cues, cues[1:]):
        assert any(
            abs(start - current.end_ms) <= tolerance and abs(end - following.start_ms) <= tolerance
            for start, end in silences
        ), (current, following)
