"""Word times from espeak-ng's own events, through trim and join, and karaoke captions that
highlight the spoken word, checked on real espeak-ng audio and frames libass draws."""

import re
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media_engine import fonts, subtitles, tts, words
from media_engine.sentences import TimedWord
from media_engine.subtitles import KaraokeStyle

LATIN = ["Hello world, this is a test.", "After a pause, we go on, and then we stop.", "The end."]
CJK = ["今天天气很好，我们去公园散步。", "明天下雨，我们在家看书。"]
PAUSE_MARKS = set(",.，。")
HIGHLIGHT = "#FFD400"


def narrate(sentences: list[str], language: str, out_dir: Path):
    return tts.synthesize(
        sentences, platform="espeak", voice=tts.VoiceSpec("", language), speed=1.0, out_dir=out_dir
    )


@pytest.fixture(scope="module")
def narrations(tmp_path_factory):
    return {
        "latin": narrate(LATIN, "en-US", tmp_path_factory.mktemp("latin")),
        "cjk": narrate(CJK, "zh-CN", tmp_path_factory.mktemp("cjk")),
    }


def read_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as reader:
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")


@pytest.mark.parametrize(("voice", "text"), [("en-us", LATIN[1]), ("cmn", CJK[0])])
def test_the_library_speaks_exactly_what_the_cli_speaks(voice, text, tmp_path):
    # Twice through the library: a second text is spoken as afresh as the first.
    for attempt in range(2):
        words.espeak_synthesize(text, voice=voice, rate=175, out_path=tmp_path / f"library{attempt}.wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "175", "-w", str(tmp_path / "cli.wav"), "--stdin"],
        input=text,
        text=True,
        check=True,
        timeout=60,
    )
    cli = read_pcm(tmp_path / "cli.wav")
    assert len(cli) > 10_000
    assert np.array_equal(read_pcm(tmp_path / "library0.wav"), cli)
    assert np.array_equal(read_pcm(tmp_path / "library1.wav"), cli)


@pytest.mark.parametrize("kind", ["latin", "cjk"])
def test_word_times_are_monotonic_and_inside_their_sentence(narrations, kind):
    narration = narrations[kind]
    assert narration.word_source == words.ESPEAK_SOURCE
    assert {word.sentence for word in narration.words} == set(range(len(narration.sentences)))
    previous_end = 0
    for word in narration.words:
        sentence = narration.sentences[word.sentence]
        assert isinstance(word.start_ms, int) and isinstance(word.end_ms, int)
        assert previous_end <= word.start_ms < word.end_ms
        assert sentence.start_ms <= word.start_ms and word.end_ms <= sentence.end_ms
        assert word.text in sentence.text
        previous_end = word.end_ms
    if kind == "cjk":  # one word per character
        assert [word.text for word in narration.words if word.sentence == 1] == list("明天下雨我们在家看书")
    else:
        assert [word.text for word in narration.words if word.sentence == 0] == [
            "Hello",
            "world",
            "this",
            "is",
            "a",
            "test",
        ]


def silence_starts(path: Path) -> list[float]:
    completed = subprocess.run(
        ["ffmpeg", "-nostdin", "-i", str(path), "-af", "silencedetect=noise=-45dB:d=0.1", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [float(value) * 1000 for value in re.findall(r"silence_start: ([\d.]+)", completed.stderr)]


@pytest.mark.parametrize("kind", ["latin", "cjk"])
def test_at_each_pause_a_word_ends_within_60_ms_of_the_silence_ffmpeg_finds(narrations, kind):
    narration = narrations[kind]
    silences = silence_starts(narration.path)
    last = narration.words[-1]
    pauses = 0
    cursor = {}  # where each sentence's next word is looked for
    for word in narration.words:
        text = narration.sentences[word.sentence].text
        end = text.index(word.text, cursor.get(word.sentence, 0)) + len(word.text)
        cursor[word.sentence] = end
        if word is last or end == len(text) or text[end] not in PAUSE_MARKS:
            continue
        pauses += 1
        nearest = min(silences, key=lambda start: abs(start - word.end_ms))
        assert abs(nearest - word.end_ms) <= 60, (word, nearest)
    # ... and every silence ffmpeg finds is such a word end: no pause is missed.
    for start in silences:
        if start < narration.duration_ms - 100:
            assert min(abs(start - word.end_ms) for word in narration.words) <= 60, start
    assert pauses == (5 if kind == "latin" else 3)  # the commas, and the full stops between sentences


def test_cached_clips_keep_their_word_times(tmp_path, monkeypatch):
    first = narrate(LATIN[:2], "en-US", tmp_path)
    sidecars = sorted((tmp_path / "sentences").glob("*.words.json"))
    assert len(sidecars) == 2

    def no_synthesis(*args, **kwargs):
        raise AssertionError("synthesized although cached")

    monkeypatch.setattr(tts.EspeakBackend, "synthesize_sentence", no_synthesis)
    again = narrate(LATIN[:2], "en-US", tmp_path)
    assert again.words == first.words and again.word_source == words.ESPEAK_SOURCE
    # A clip cached without its word times (before they existed) is synthesized again.
    sidecars[0].unlink()
    with pytest.raises(Exception, match="synthesized although cached"):
        narrate(LATIN[:2], "en-US", tmp_path)


def test_word_times_move_with_the_trim_and_the_joins(tmp_path):
    sentences = ["One, two.", "Three."]
    narration = narrate(sentences, "en-US", tmp_path)
    for index, text in enumerate(sentences):
        raw = words.espeak_synthesize(text, voice="en-us", rate=175, out_path=tmp_path / f"raw{index}.wav")
        placed = [word for word in narration.words if word.sentence == index]
        assert [word.text for word in placed] == [word.text for word in raw.words]
        offsets = {
            (got.start_ms - want.start_ms, got.end_ms - want.end_ms) for got, want in zip(placed, raw.words)
        }
        # One shift for the whole sentence: its place in the narration less the silence trimmed off.
        assert len(offsets) == 1
        ((shift, _),) = offsets
        trimmed_ms = narration.sentences[index].start_ms - shift
        assert 0 <= trimmed_ms < 200


def test_numbers_quotes_and_stray_events_give_the_written_words(tmp_path):
    speech = words.espeak_synthesize(
        "It costs 3.14 dollars, or “more”!", voice="en-us", rate=175, out_path=tmp_path / "o.wav"
    )
    assert [word.text for word in speech.words] == ["It", "costs", "3.14", "dollars", "or", "more"]


def test_shift_keeps_words_inside_their_clip_and_labels_their_sentence():
    clip = [TimedWord("a", 10, 200), TimedWord("b", 250, 400)]
    assert words.shift(clip, -30, length_ms=300, sentence=2) == [
        TimedWord("a", 0, 170, 2),
        TimedWord("b", 220, 300, 2),
    ]


def test_edge_word_boundaries_become_words():
    boundaries = [
        {"type": "WordBoundary", "offset": 1_000_000, "duration": 3_000_000, "text": "你好"},
        {"type": "WordBoundary", "offset": 4_500_000, "duration": 2_000_000, "text": "world"},
    ]
    assert words.from_edge_boundaries(boundaries) == [
        TimedWord("你好", 100, 400),
        TimedWord("world", 450, 650),
    ]


def test_missing_word_times_are_named():
    assert "no word times for this narration" in words.missing_note("", [], 3)
    assert "1 of 2 sentences" in words.missing_note("x", [TimedWord("a", 0, 1, 0)], 2)
    assert words.missing_note("x", [TimedWord("a", 0, 1, 0), TimedWord("b", 2, 3, 1)], 2) == ""


# --- karaoke frames ----------------------------------------------------------------------------


def word_box(style, cue_lines: list[str], line_index: int, start: int, end: int, width: int, height: int):
    """(x0, x1, y0, y1) where libass draws characters start..end of a centred line of a bottom cue."""
    font = subtitles._font(fonts.default_font_path(), style.font_size)
    line = cue_lines[line_index]
    area_x, area_y, area_w, area_h = subtitles.subtitle_area(width, height, style)
    left = area_x + (area_w - font.getlength(line)) / 2  # centred in the band (Shorts: left of the buttons)
    x0, x1 = left + font.getlength(line[:start]), left + font.getlength(line[:end])
    line_height = subtitles.ass_font_size(style)
    bottom = area_y + area_h - style.outline
    top_of_line = bottom - (len(cue_lines) - line_index) * line_height
    return round(x0), round(x1), round(top_of_line), round(top_of_line + line_height)


def highlighted_share(pixels: np.ndarray, box) -> float:
    x0, x1, y0, y1 = box
    crop = pixels[y0:y1, x0 + 1 : x1 - 1]
    yellow = np.all(np.abs(crop - [0xFF, 0xD4, 0x00]) < 40, axis=2)
    return float(yellow.mean())


@pytest.mark.parametrize("kind", ["latin", "cjk"])
@pytest.mark.parametrize(("width", "height"), [(1280, 720), (720, 1280)])
def test_a_frame_at_a_words_midpoint_shows_that_word_highlighted(narrations, kind, width, height, tmp_path):
    narration = narrations[kind]
    style = subtitles.subtitle_style(
        width=width,
        height=height,
        font_size=None,
        font_family=fonts.FAMILY,
        primary_colour="#FFFFFF",
        background_colour="#000000",
        background_opacity=0.6,
    )
    cues = subtitles.make_cues(
        narration.clauses,
        font_path=fonts.default_font_path(),
        font_size=style.font_size,
        max_width_px=subtitles.safe_text_width(width, style, height=height),
    )
    ass_path = tmp_path / "karaoke.ass"
    subtitles.write_ass(
        cues,
        ass_path,
        width=width,
        height=height,
        style=style,
        karaoke=KaraokeStyle(color=HIGHLIGHT),
        words=narration.words,
    )
    # A word in the middle of the first sentence, and its neighbours, which must stay white.
    sentence_words = [word for word in narration.words if word.sentence == 0]
    spoken = sentence_words[len(sentence_words) // 2]
    [cue] = [cue for cue in cues if cue.start_ms <= spoken.start_ms < cue.end_ms]
    boxes = []
    line_index, cursor = 0, 0  # words are looked for in order: "is" is also in "this"
    for word in sentence_words:
        while cue.lines[line_index].find(word.text, cursor) < 0:
            line_index, cursor = line_index + 1, 0
        start = cue.lines[line_index].index(word.text, cursor)
        cursor = start + len(word.text)
        boxes.append((word, word_box(style, cue.lines, line_index, start, cursor, width, height)))

    midpoint_s = (spoken.start_ms + spoken.end_ms) / 2000
    frame_path = tmp_path / "frame.png"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"color=c=0x204060:s={width}x{height}:r=25:d={narration.duration_ms / 1000}",
            "-vf",
            f"ass=filename={ass_path}",
            "-ss",
            f"{midpoint_s:.3f}",
            "-frames:v",
            "1",
            str(frame_path),
        ],
        check=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(frame_path).convert("RGB")).astype(int)

    for word, box in boxes:
        share = highlighted_share(pixels, box)
        if word is spoken:
            assert share > 0.03, (word, box, share)  # the glyphs' strokes are drawn in the highlight colour
        elif word.text != spoken.text:
            assert share == 0, (word, box, share)
    assert highlighted_share(pixels, (0, width, 0, height)) > 0


def test_karaoke_is_off_without_the_brand_key(narrations, tmp_path):
    style = subtitles.subtitle_style(
        width=640,
        height=360,
        font_size=None,
        font_family=fonts.FAMILY,
        primary_colour="#FFFFFF",
        background_colour="#000000",
        background_opacity=0.6,
    )
    cues = subtitles.make_cues(
        narrations["latin"].clauses,
        font_path=fonts.default_font_path(),
        font_size=style.font_size,
        max_width_px=subtitles.safe_text_width(640, style),
    )
    plain, karaoke = tmp_path / "plain.ass", tmp_path / "karaoke.ass"
    subtitles.write_ass(cues, plain, width=640, height=360, style=style, words=narrations["latin"].words)
    subtitles.write_ass(
        cues,
        karaoke,
        width=640,
        height=360,
        style=style,
        words=narrations["latin"].words,
        karaoke=KaraokeStyle(color=HIGHLIGHT, scale=1.2, box="#C00000"),
    )
    assert "\\1c" not in plain.read_text() and plain.read_text().count("Dialogue:") == len(cues)
    events = karaoke.read_text()
    # Each word: the cue's box with its text hidden, the word's own box, the text with the word larger.
    size = round(subtitles.ass_font_size(style) * 1.2)
    for layer, name, tags in (
        (0, "Default", f"{{\\1c&H00D4FF&\\fs{size}}}"),
        (1, "KaraokeBox", f"{{\\1c&H00D4FF&\\fs{size}\\3c&H0000C0&\\3a&H00&"),
        (2, "KaraokeText", f"{{\\1c&H00D4FF&\\fs{size}}}"),
    ):
        rows = [
            row
            for row in events.splitlines()
            if row.startswith(f"Dialogue: {layer},") and f",{name}," in row and "\\1c" in row
        ]
        assert len(rows) == sum(tags in row for row in rows) == len(narrations["latin"].words), name
    hidden = [row for row in events.splitlines() if ",Default,,0,0,0,,{\\1a&HFF&}" in row]
    assert len(hidden) == len(narrations["latin"].words)


# --- sentences read in clauses ------------------------------------------------------------------

CLAUSED = [
    "Drink a glass of warm water every morning before breakfast, then walk for ten minutes "
    "in the fresh air outside.",
    "The end.",
]


def test_words_of_a_sentence_read_in_clauses_keep_their_sentence_and_sit_in_their_clause(tmp_path):
    narration = narrate(CLAUSED, "en-US", tmp_path)
    assert [clause.text for clause in narration.clauses] == [
        "Drink a glass of warm water every morning before breakfast,",
        "then walk for ten minutes in the fresh air outside.",
        "The end.",
    ]
    # Both clauses' words belong to the first sentence, the last clause's to the second.
    second = narration.clauses[2].start_ms
    assert {word.sentence for word in narration.words if word.start_ms < second} == {0}
    assert {word.sentence for word in narration.words if word.start_ms >= second} == {1}
    assert words.missing_note(narration.word_source, narration.words, len(narration.sentences)) == ""
    for index, clause in enumerate(narration.clauses):
        raw = words.espeak_synthesize(
            clause.text, voice="en-us", rate=175, out_path=tmp_path / f"raw{index}.wav"
        )
        placed = [word for word in narration.words if clause.start_ms <= word.start_ms < clause.end_ms]
        assert [word.text for word in placed] == [word.text for word in raw.words]
        assert all(word.end_ms <= clause.end_ms for word in placed)
        # One shift per clause: its place in the narration less the silence trimmed off its own audio.
        shifts = {got.start_ms - want.start_ms for got, want in zip(placed, raw.words)}
        assert len(shifts) == 1 and 0 <= clause.start_ms - shifts.pop() < 200


def test_karaoke_highlights_each_word_once_in_the_clause_cue_its_time_falls_in(tmp_path):
    narration = narrate(CLAUSED, "en-US", tmp_path)
    style = subtitles.subtitle_style(
        width=1280,
        height=720,
        font_size=None,
        font_family=fonts.FAMILY,
        primary_colour="#FFFFFF",
        background_colour="#000000",
        background_opacity=0.6,
    )
    cues = subtitles.make_cues(
        narration.clauses,
        font_path=fonts.default_font_path(),
        font_size=style.font_size,
        max_width_px=subtitles.safe_text_width(1280, style),
    )
    assert len(cues) == len(narration.clauses) == 3
    ass_path = tmp_path / "karaoke.ass"
    subtitles.write_ass(
        cues,
        ass_path,
        width=1280,
        height=720,
        style=style,
        karaoke=KaraokeStyle(color=HIGHLIGHT),
        words=narration.words,
    )
    highlighted = []  # (start cs, end cs, word, the cue's whole text)
    for line in ass_path.read_text().splitlines():
        match = re.match(
            r"Dialogue: 0,(\d+):(\d\d):(\d\d)\.(\d\d),(\d+):(\d\d):(\d\d)\.(\d\d),Default,,0,0,0,,(.*)", line
        )
        if match and "\\1c" in match.group(9):
            h1, m1, s1, c1, h2, m2, s2, c2 = map(int, match.groups()[:8])
            text = match.group(9)
            word = re.search(r"\\1c&H[0-9A-F]+&}([^{]*)\{\\r}", text).group(1)
            highlighted.append(
                (
                    (h1 * 3600 + m1 * 60 + s1) * 100 + c1,
                    (h2 * 3600 + m2 * 60 + s2) * 100 + c2,
                    word,
                    re.sub(r"\{[^}]*}", "", text).replace("\\N", " "),
                )
            )
    assert [word for _start, _end, word, _text in highlighted] == [word.text for word in narration.words]
    for start, end, word, text in highlighted:
        [cue] = [cue for cue in cues if cue.start_ms <= start * 10 and end * 10 <= cue.end_ms + 10]
        assert text == " ".join(cue.lines) and word in text
