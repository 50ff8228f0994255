"""Timelines for editing apps from plain files: each format read back with its own library, cut where the
storyboard says within a frame, every file it names inside its folder."""

import json
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree

import opentimelineio as otio
import pytest

from media_engine import ffmpeg, timeline
from media_engine.errors import MediaError

FPS = 30
# Segment boundaries that fall between frames, and a clip (0.5 s) shorter than its segment.
SHOTS = [("still", 0, 1733), ("clip", 1733, 2950), ("still", 2950, 4100)]


def make(path: Path, *args: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args, str(path)], check=True, timeout=60
    )
    return path


@pytest.fixture
def storyboard(tmp_path) -> timeline.Storyboard:
    red = make(tmp_path / "red.png", "-f", "lavfi", "-i", "color=red:s=64x36", "-frames:v", "1")
    blue = make(tmp_path / "blue.jpg", "-f", "lavfi", "-i", "color=blue:s=64x36", "-frames:v", "1")
    clip = make(
        tmp_path / "sea clip.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=64x36:r=30",
        "-t",
        "0.5",
        "-pix_fmt",
        "yuv420p",
    )
    narration = make(tmp_path / "narration.wav", "-f", "lavfi", "-i", "sine=f=440:d=4.1")
    music = make(tmp_path / "tone.mp3", "-f", "lavfi", "-i", "sine=f=220:d=1.5")
    srt = tmp_path / "subtitles.srt"
    srt.write_text(
        "1\n00:00:00,000 --> 00:00:01,700\n今天天气很好。\n\n"
        "2\n00:00:01,700 --> 00:00:04,100\n我们去公园散步吧。\n\n",
        encoding="utf-8",
    )
    paths = {0: red, 1: clip, 2: blue}
    shots = [
        timeline.Shot(path=paths[number], kind=kind, start_ms=start, end_ms=end, name=f"段 {number}")
        for number, (kind, start, end) in enumerate(SHOTS)
    ]
    return timeline.Storyboard(
        name="12-公园/散步",
        width=1360,
        height=768,
        fps=FPS,
        shots=shots,
        narration_path=narration,
        subtitles_path=srt,
        music_path=music,
        music_volume=0.2,
    )


def media_path(target_url: str) -> str:
    """The path relative to the timeline's folder that a clip names: as it is, or as a relative file URL
    (FCP 7 XML)."""
    return (
        Path(unquote(urlsplit(target_url).path)).as_posix() if target_url.startswith("file:") else target_url
    )


def read_otio(folder: Path, fmt: str) -> otio.schema.Timeline:
    read = otio.adapters.read_from_file(str(folder / timeline.TIMELINE_FILES[fmt]))
    if isinstance(read, otio.schema.SerializableCollection):  # FCP 7 XML holds a collection of sequences
        [read] = list(read)
    return read


def segments_on(track) -> list[tuple[float, float]]:
    """(start, end) in frames of each run of clips showing one segment (a looped clip is several)."""
    runs: list[list[float]] = []
    previous = None
    for clip in track.find_clips():
        span = clip.range_in_parent()
        start, end = span.start_time.to_frames(FPS), span.end_time_exclusive().to_frames(FPS)
        media = media_path(clip.media_reference.target_url)
        if runs and media == previous and clip.name.startswith(runs[-1][2]):
            runs[-1][1] = end
        else:
            runs.append([start, end, clip.name])
        previous = media
    return [(start, end) for start, end, _ in runs]


def assert_within_a_frame(frames: list[tuple[float, float]], storyboard: timeline.Storyboard) -> None:
    assert len(frames) == len(storyboard.shots)
    for (start, end), shot in zip(frames, storyboard.shots):
        assert abs(start - shot.start_ms * FPS / 1000) <= 1, (start, shot)
        assert abs(end - shot.end_ms * FPS / 1000) <= 1, (end, shot)


@pytest.mark.parametrize("fmt", ["otio", "fcpxml", "fcp7xml"])
def test_otio_and_fcp_timelines_read_back_cut_as_the_storyboard(storyboard, tmp_path, fmt):
    folder = timeline.bundle(storyboard, fmt, tmp_path / "out")
    read = read_otio(folder, fmt)
    [video] = [track for track in read.tracks if track.kind == otio.schema.TrackKind.Video]
    assert_within_a_frame(segments_on(video), storyboard)
    # The 0.5 s clip plays three times in its 1.2 s segment: 15 + 15 + 6 frames, each from its start.
    clip_cuts = [
        clip for clip in video.find_clips() if media_path(clip.media_reference.target_url).endswith(".mp4")
    ]
    assert [clip.duration().to_frames() for clip in clip_cuts] == [15, 15, 6]
    assert all(clip.source_range.start_time.to_frames() == 0 for clip in clip_cuts)
    audio = [track for track in read.tracks if track.kind == otio.schema.TrackKind.Audio]
    urls = {
        media_path(track_clip.media_reference.target_url)
        for track in audio
        for track_clip in track.find_clips()
    }
    assert urls == {"media/narration.wav", "media/music.mp3"}
    music = [
        clip
        for track in audio
        for clip in track.find_clips()
        if "music" in media_path(clip.media_reference.target_url)
    ]
    # The music repeats end to end under the whole timeline, as the render loops it.
    assert music[0].range_in_parent().start_time.to_frames() == 0
    assert sum(clip.duration().to_frames() for clip in music) == video.duration().to_frames()
    for clip in read.find_clips():
        path = folder / media_path(clip.media_reference.target_url)
        assert path.is_file() and path.resolve().is_relative_to(folder.resolve())
    assert (folder / "media" / "subtitles.srt").read_text(encoding="utf-8").startswith("1\n")


def test_otio_keeps_segment_numbers_and_the_subtitles_file(storyboard, tmp_path):
    folder = timeline.bundle(storyboard, "otio", tmp_path / "out")
    read = read_otio(folder, "otio")
    assert read.metadata["batchvideo"]["subtitles"] == "media/subtitles.srt"
    assert read.metadata["batchvideo"]["music_volume"] == 0.2
    segments = [clip.metadata["batchvideo"]["segment"] for clip in read.video_tracks()[0].find_clips()]
    assert segments == [0, 1, 1, 1, 2]


def test_fcp7_xml_has_the_frame_size_and_fcpx_formats_too(storyboard, tmp_path):
    fcp7 = timeline.bundle(storyboard, "fcp7xml", tmp_path / "seven")
    text = (fcp7 / "timeline.xml").read_text(encoding="utf-8")
    assert "<width>1360</width>" in text and "<height>768</height>" in text
    fcpx = timeline.bundle(storyboard, "fcpxml", tmp_path / "ten")
    text = (fcpx / "timeline.fcpxml").read_text(encoding="utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>')
    assert 'width="1360"' in text and 'height="768"' in text


def test_jianying_draft_parses_with_the_storyboard_times_and_its_materials_inside(storyboard, tmp_path):
    folder = timeline.bundle(storyboard, "jianying", tmp_path / "out")
    content = json.loads((folder / "draft_content.json").read_text(encoding="utf-8"))
    meta = json.loads((folder / "draft_meta_info.json").read_text(encoding="utf-8"))
    assert meta["draft_name"] == folder.name == "12-公园-散步"
    assert meta["tm_duration"] == content["duration"]
    assert content["canvas_config"]["width"] == 1360 and content["fps"] == FPS
    tracks = {track["name"]: track for track in content["tracks"]}
    assert set(tracks) == {"Pictures", "Narration", "Music", "Subtitles"}
    materials = {entry["id"]: entry for kind in ("videos", "audios") for entry in content["materials"][kind]}
    runs: list[list] = []
    for segment in tracks["Pictures"]["segments"]:
        span = segment["target_timerange"]
        start, end = span["start"] * FPS / 1e6, (span["start"] + span["duration"]) * FPS / 1e6
        material = segment["material_id"]
        if runs and runs[-1][2] == material and materials[material]["type"] == "video":
            runs[-1][1] = end
        else:
            runs.append([start, end, material])
        assert segment["source_timerange"]["duration"] <= materials[material]["duration"]
    assert_within_a_frame([(start, end) for start, end, _ in runs], storyboard)
    for entry in materials.values():
        prefix, relative = entry["path"].split("/", 1)
        assert prefix == timeline.JIANYING_DRAFT_PLACEHOLDER
        assert (folder / relative).is_file() and (folder / relative).resolve().is_relative_to(
            folder.resolve()
        )
    music = [segment for segment in tracks["Music"]["segments"]]
    assert {segment["volume"] for segment in music} == {0.2}
    texts = [json.loads(entry["content"])["text"] for entry in content["materials"]["texts"]]
    assert texts == ["今天天气很好。", "我们去公园散步吧。"]


def test_unknown_format_and_missing_file_are_refused_by_name(storyboard, tmp_path):
    with pytest.raises(MediaError, match="unknown timeline format 'edl'; use one of otio, fcpxml"):
        timeline.bundle(storyboard, "edl", tmp_path / "a")
    gone = timeline.Storyboard(**{**vars(storyboard), "narration_path": tmp_path / "nothing.wav"})
    with pytest.raises(MediaError, match="nothing.wav"):
        timeline.bundle(gone, "otio", tmp_path / "b")


def test_media_copies_are_whole_files(storyboard, tmp_path):
    folder = timeline.bundle(storyboard, "otio", tmp_path / "out")
    copied = folder / "media" / "narration.wav"
    assert copied.read_bytes() == storyboard.narration_path.read_bytes()
    assert abs(ffmpeg.duration(copied) - 4.1) < 0.05


def test_fcp7_xml_names_media_by_file_urls_relative_to_its_folder(storyboard, tmp_path):
    folder = timeline.bundle(storyboard, "fcp7xml", tmp_path / "seven")
    root = ElementTree.parse(folder / "timeline.xml").getroot()
    urls = {element.text for element in root.iter("pathurl")}

    assert urls and all(url.startswith("file:./media/") for url in urls)
    for url in urls:
        assert (folder / unquote(urlsplit(url).path)).is_file()
