"""Chunk-addressable composition: what an edit re-encodes, and what the viewer sees across joins.

Real renders at 320x180, checked with ffmpeg's per-frame hashes (framemd5) and ffprobe.
"""

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from media_engine import audio, chunks, compose, ffmpeg
from media_engine.chunks import AssEvents, ChunkStore
from media_engine.compose import Plan, Visual, preview, render
from media_engine.fonts import FAMILY
from media_engine.layout import TextBlock

from .test_compose import _textured_still

pytestmark = pytest.mark.slow

WIDTH, HEIGHT, FPS = 320, 180, 30
# Five segments of 20, 20, 24, 16 and 20 frames (4 s at 30 fps); transitions of 6 frames.
BOUNDS_MS = [0, 800, 1600, 2400, 3000, 4000]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("chunk-assets")
    files = {"narration": _tone(folder / "narration.wav", 4.0), "longer": _tone(folder / "longer.wav", 4.4)}
    colours = [(200, 60, 40), (40, 140, 200), (60, 180, 90), (180, 160, 40), (120, 60, 160), (30, 30, 30)]
    for index, colour in enumerate(colours):
        files[f"still{index}"] = _textured_still(folder / f"still{index}.png", colour)
    from PIL import Image

    Image.new("RGBA", (64, 32), (255, 0, 255, 255)).save(folder / "logo.png")
    files["logo"] = folder / "logo.png"
    files["subtitles"] = _subtitles(folder / "subtitles.ass", BOUNDS_MS)
    return files


def _tone(path: Path, seconds: float) -> Path:
    ffmpeg.run(
        [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=330:sample_rate=24000:duration={seconds}",
            "-ac",
            "1",
            str(path),
        ]
    )
    return path


def _subtitles(path: Path, bounds: list[int]) -> Path:
    """One cue per segment, ending 100 ms before the next; one long cue with a fade spans two pieces."""

    def clock(ms: int) -> str:
        return f"0:00:{ms // 1000:02d}.{ms % 1000 // 10:02d}"

    events = [
        f"Dialogue: 0,{clock(a)},{clock(b - 100)},Default,,0,0,0,,第{n}句 line {n}\n"
        for n, (a, b) in enumerate(zip(bounds, bounds[1:]))
    ]
    events.append(
        f"Dialogue: 1,{clock(bounds[2] - 300)},{clock(bounds[3] + 300)},Top,,0,0,0,,"
        r"{\fad(300,300)}long cue"
        "\n"
    )
    path.write_text(
        f"[Script Info]\nScriptType: v4.00+\nPlayResX: {WIDTH}\nPlayResY: {HEIGHT}\n\n"
        "[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, "
        "Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"Style: Default,{FAMILY},22,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,"
        "1,2,0,2,10,10,10,1\n"
        f"Style: Top,{FAMILY},22,&H0000FFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,"
        "1,2,0,8,10,10,10,1\n\n"
        "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        + "".join(events),
        encoding="utf-8",
    )
    return path


def plan_for(
    assets, bounds: list[int] = BOUNDS_MS, stills: tuple[int, ...] = (0, 1, 2, 3, 4), **changes
) -> Plan:
    visuals = [
        Visual(assets[f"still{still}"], "still", a, b) for still, a, b in zip(stills, bounds, bounds[1:])
    ]
    plan = Plan(
        width=WIDTH,
        height=HEIGHT,
        visuals=visuals,
        narration_path=assets["narration"],
        subtitles_path=assets["subtitles"],
        logo_path=assets["logo"],
        transitions=("fade",) * (len(visuals) - 1),
        transition_s=0.2,
        texts=[TextBlock("index 7")],
        fps=FPS,
        preset="ultrafast",
        crf=20,
    )
    return replace(plan, **changes)


def frame_hashes(video: Path) -> list[tuple[int, str]]:
    """(pts, md5) of every decoded frame, in the 1/fps time base."""
    completed = ffmpeg_framemd5(video)
    rows = [line.split(",") for line in completed.splitlines() if line and not line.startswith("#")]
    return [(int(row[2]), row[5].strip()) for row in rows]


def ffmpeg_framemd5(video: Path) -> str:
    out = video.with_suffix(".framemd5")
    ffmpeg.run(["-i", str(video), "-map", "0:v", "-vf", f"settb=1/{FPS}", "-f", "framemd5", str(out)])
    return out.read_text()


def pieces(plan: Plan) -> list:
    return compose._timeline(plan, ffmpeg.duration(plan.narration_path)).pieces


# ---------------------------------------------------------------- joins


def test_chunks_join_without_dropped_or_repeated_frames_and_the_audio_keeps_time(assets, tmp_path):
    result = render(plan_for(assets), tmp_path / "out.mp4", store=ChunkStore(tmp_path / "chunks"))
    hashes = frame_hashes(result.path)
    # duration x fps frames, each timestamp one frame after the previous one.
    assert [pts for pts, _ in hashes] == list(range(4 * FPS))
    streams = {s["codec_type"]: s for s in ffmpeg.probe(result.path)["streams"]}
    assert abs(float(streams["video"]["duration"]) - float(streams["audio"]["duration"])) < 1 / FPS
    # 5 steady pieces, 4 transitions, the audio: each its own chunk.
    assert len(result.chunks) == 10 and result.reused == []
    # Closed GOPs: every chunk starts with a keyframe.
    keyframes = _keyframe_times(result.path)
    for piece in pieces(plan_for(assets)):
        assert any(abs(at - piece.start / FPS) < 1e-3 for at in keyframes), piece


def test_many_short_chunks_keep_every_frame_time_exact_to_the_end(assets, tmp_path):
    """100 one-frame chunks (33.33 ms each, not a whole millisecond): joined by their container
    durations, the concat demuxer rounded each to a millisecond and the video drifted a frame off
    its sound by the end; joined by their frame counts it stays exact."""
    count = 100
    bounds = [round(index * 1000 / FPS) for index in range(count + 1)]
    narration = _tone(tmp_path / "short.wav", bounds[-1] / 1000)
    plan = plan_for(
        assets,
        bounds=bounds,
        stills=tuple(index % 5 for index in range(count)),
        narration_path=narration,
        subtitles_path=None,
        texts=[],
        transitions=(),
    )
    result = render(plan, tmp_path / "many.mp4", store=ChunkStore(tmp_path / "chunks"))
    assert len(result.chunks) == count + 1
    assert [pts for pts, _ in frame_hashes(result.path)] == list(range(count))
    streams = {s["codec_type"]: s for s in ffmpeg.probe(result.path)["streams"]}
    assert abs(float(streams["video"]["duration"]) - count / FPS) < 0.5 / FPS


def _keyframe_times(video: Path) -> list[float]:
    import json
    import subprocess

    completed = subprocess.run(
        [
            ffmpeg.FFPROBE,
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "packet=pts_time,flags",
            "-of",
            "json",
            str(video),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [float(p["pts_time"]) for p in json.loads(completed.stdout)["packets"] if "K" in p["flags"]]


def test_a_render_with_every_chunk_made_is_bit_identical_to_one_that_reuses_them(assets, tmp_path):
    store = ChunkStore(tmp_path / "chunks")
    first = render(plan_for(assets), tmp_path / "first.mp4", store=store)
    again = render(plan_for(assets), tmp_path / "again.mp4", store=store)
    fresh = render(plan_for(assets), tmp_path / "fresh.mp4", store=ChunkStore(tmp_path / "other"))
    assert sorted(again.reused) == sorted(first.chunks)
    assert frame_hashes(first.path) == frame_hashes(again.path) == frame_hashes(fresh.path)


# ---------------------------------------------------------------- edits


def test_a_picture_change_reencodes_only_the_chunks_that_show_it(assets, tmp_path):
    store = ChunkStore(tmp_path / "chunks")
    before = render(plan_for(assets), tmp_path / "before.mp4", store=store)
    changed = plan_for(assets, stills=(0, 1, 5, 3, 4))  # segment 2 gets another picture
    after = render(changed, tmp_path / "after.mp4", store=store)
    # Its steady piece and the transitions into and out of it; the audio and the rest are reused.
    assert len(after.made) == 3
    shown = [piece for piece in pieces(changed) if 2 in piece.segments]
    first, end = shown[0].start, shown[-1].end
    old, new = frame_hashes(before.path), frame_hashes(after.path)
    assert len(old) == len(new) == 4 * FPS
    assert old[:first] == new[:first]
    assert old[end:] == new[end:]
    # Inside, every frame shows the new picture but the first of the fade in (all old picture).
    assert sum(a != b for a, b in zip(old[first:end], new[first:end])) >= end - first - 1


def test_a_longer_sentence_moves_later_segments_in_time_and_keeps_their_chunks(assets, tmp_path):
    """Segment 1 gets 400 ms (12 frames) longer, as after a sentence edit: segments 2-4 start later
    but show the same frames, subtitles included, so their chunks are reused."""
    store = ChunkStore(tmp_path / "chunks")
    before = render(plan_for(assets), tmp_path / "before.mp4", store=store)
    moved = [0, 800] + [ms + 400 for ms in BOUNDS_MS[2:]]
    subtitles = _subtitles(tmp_path / "moved.ass", moved)
    after = render(
        plan_for(assets, bounds=moved, narration_path=assets["longer"], subtitles_path=subtitles),
        tmp_path / "after.mp4",
        store=store,
    )
    # Remade: segment 1's steady piece and its two transitions (its footage is longer), the audio.
    assert sorted(after.made) == sorted(set(after.made))
    assert len(after.made) == 4, after.made
    old, new = frame_hashes(before.path), frame_hashes(after.path)
    assert len(new) == len(old) + 12
    cut = round(BOUNDS_MS[2] * FPS / 1000) + 3  # after the transition out of segment 1
    assert [md5 for _, md5 in old[cut:]] == [md5 for _, md5 in new[cut + 12 :]]
    assert old[:20] == new[:20]


def test_a_subtitle_change_reencodes_only_the_pieces_it_shows_in(assets, tmp_path):
    store = ChunkStore(tmp_path / "chunks")
    render(plan_for(assets), tmp_path / "before.mp4", store=store)
    edited = tmp_path / "edited.ass"
    edited.write_text(
        assets["subtitles"].read_text(encoding="utf-8").replace("第3句 line 3", "第3句 edited"),
        encoding="utf-8",
    )
    after = render(plan_for(assets, subtitles_path=edited), tmp_path / "after.mp4", store=store)
    # The cue of segment 3 (2.4-2.9 s) shows in the transition into it and its steady piece only;
    # the audio stays.
    assert len(after.made) == 2


def test_chunk_names_hash_file_contents_not_paths(assets, tmp_path):
    copy = tmp_path / "copy-of-still1.png"
    copy.write_bytes(assets["still1"].read_bytes())
    store = ChunkStore(tmp_path / "chunks")
    render(plan_for(assets), tmp_path / "a.mp4", store=store)
    moved_file = plan_for(assets)
    moved_file = replace(
        moved_file,
        visuals=[replace(v, path=copy) if v.path == assets["still1"] else v for v in moved_file.visuals],
    )
    assert render(moved_file, tmp_path / "b.mp4", store=store).made == []


def test_a_shared_store_lends_chunks_to_a_host_without_them(assets, tmp_path):
    """Two hosts, each with its own folder, sharing a third (the storage): the second host fetches."""
    shared = tmp_path / "shared"
    shared.mkdir()

    def host(folder: Path) -> ChunkStore:
        def fetch(name: str) -> bool:
            if not (shared / name).exists():
                return False
            (folder / name).write_bytes((shared / name).read_bytes())
            return True

        def keep(path: Path) -> None:
            (shared / path.name).write_bytes(path.read_bytes())

        return ChunkStore(folder, fetch=fetch, keep=keep)

    made = render(plan_for(assets), tmp_path / "a.mp4", store=host(tmp_path / "host-a"))
    # The chunks, and the final audio track they cut the audio slices from (its samples and its
    # gain, kept for previews).
    kept = sorted(p.name for p in shared.iterdir())
    tracks = [name for name in kept if name.startswith("audio-") and name.endswith((".f32", ".json"))]
    assert len(tracks) == 2 and sorted(tracks) == sorted(made.sources)
    assert sorted(set(kept) - set(tracks)) == sorted(made.chunks)
    other = render(plan_for(assets), tmp_path / "b.mp4", store=host(tmp_path / "host-b"))
    assert other.made == []
    assert hashlib.sha256(made.path.read_bytes()).digest() == hashlib.sha256(other.path.read_bytes()).digest()


def test_chunks_described_on_one_host_are_made_byte_for_byte_on_another_from_the_shared_store(
    assets, tmp_path
):
    """The farm's hand-over: each missing chunk described as JSON (no path of the planner's in it),
    made on a host that has only the shared store, and the video joined from those chunks is the
    video this host makes alone."""
    shared = tmp_path / "shared"
    shared.mkdir()

    def host(folder: Path, farm=None) -> ChunkStore:
        def fetch(name: str) -> bool:
            if not (shared / name).exists():
                return False
            (folder / name).write_bytes((shared / name).read_bytes())
            return True

        def keep(path: Path) -> None:
            (shared / path.name).write_bytes(path.read_bytes())

        return ChunkStore(folder, fetch=fetch, keep=keep, farm=farm)

    other = host(tmp_path / "other-host")
    handed: list[dict] = []

    def farm(jobs, store, work_dir, on_progress, cancel, deadline):
        chunks.share_inputs(jobs, store)
        handed.extend(json.loads(json.dumps(chunks.describe(job, work_dir))) for job in jobs)
        other.folder.mkdir()
        elsewhere = tmp_path / "other-work"
        elsewhere.mkdir()
        for description in handed:
            job = chunks.restore(description, other, elsewhere)
            other.keep(chunks.make_chunk(job, other, elsewhere, cancel=None, deadline=deadline))

    farmed = render(plan_for(assets), tmp_path / "farmed.mp4", store=host(tmp_path / "here", farm))
    alone = render(plan_for(assets), tmp_path / "alone.mp4", store=ChunkStore(tmp_path / "alone"))

    text = json.dumps(handed)
    assert str(tmp_path) not in text and str(assets["still0"].parent) not in text
    assert sorted(description["name"] for description in handed) == sorted(farmed.chunks)
    # Every chunk was made on the other host (its inputs fetched from the shared store), none here.
    assert sorted(p.name for p in other.folder.iterdir() if not p.name.startswith("input-")) == sorted(
        farmed.chunks + farmed.sources
    )
    assert {p.name for p in other.folder.iterdir() if p.name.startswith("input-")} == {
        chunks.input_name(str(path), chunks.file_digest(path))
        for path in [*(assets[f"still{n}"] for n in range(5)), assets["logo"]]
    }
    assert farmed.path.read_bytes() == alone.path.read_bytes()


# ---------------------------------------------------------------- preview


def test_a_segment_preview_is_made_of_the_full_renders_chunks(assets, tmp_path):
    store = ChunkStore(tmp_path / "chunks")
    full = render(plan_for(assets), tmp_path / "full.mp4", store=store)
    shown = preview(plan_for(assets), 2, tmp_path / "preview.mp4", store=store)
    # Only its slice of the narration is new.
    assert len(shown.made) == 1 and shown.made[0].startswith("audio-")
    own = [piece for piece in pieces(plan_for(assets)) if 2 in piece.segments]
    first, end = own[0].start, own[-1].end
    full_md5 = [md5 for _, md5 in frame_hashes(full.path)]
    assert [md5 for _, md5 in frame_hashes(shown.path)] == full_md5[first:end]
    streams = {s["codec_type"]: s for s in ffmpeg.probe(shown.path)["streams"]}
    assert abs(float(streams["audio"]["duration"]) - (end - first) / FPS) < 1 / FPS


# ---------------------------------------------------------------- subtitles per piece


def test_subtitle_events_are_written_relative_to_the_piece_and_keep_their_own_start(tmp_path):
    path = tmp_path / "s.ass"
    path.write_text(
        "[Script Info]\nPlayResX: 10\n\n[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        "Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,one, with a comma\n"
        "Comment: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,not shown\n"
        "Dialogue: 0,0:00:05.00,0:00:06.00,Default,,0,0,0,,later\n",
        encoding="utf-8",
    )
    events = AssEvents.read(path)
    # Frames 45-60 at 30 fps: the first event began at frame 30, so the piece's frames count from 15.
    base, text = events.for_frames(45, 60, 30)
    assert base == 15
    assert "Dialogue: 0,0:00:00.00,0:00:01.00,Default,,0,0,0,,one, with a comma" in text
    assert "later" not in text and "Comment" not in text
    # The same event one whole second later, in a piece one second later: the same text.
    shifted = tmp_path / "shifted.ass"
    shifted.write_text(path.read_text().replace("0:00:01.00,0:00:02.00", "0:00:02.00,0:00:03.00"))
    assert AssEvents.read(shifted).for_frames(75, 90, 30) == (base, text)


# ---------------------------------------------------------------- audio slices


def _speechlike(path: Path, parts: list[tuple[int, float]]) -> Path:
    """Tones of the given frequencies and lengths one after the other, with pink noise under them
    (something for the encoder to work at), mono 24 kHz like the narration."""
    sources, labels = [], []
    for number, (frequency, seconds) in enumerate(parts):
        sources += [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={frequency}:sample_rate=24000:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"anoisesrc=color=pink:amplitude=0.1:sample_rate=24000:duration={seconds}:seed={number}",
        ]
        labels.append(f"[{2 * number}:a][{2 * number + 1}:a]amix=inputs=2:normalize=0[p{number}]")
    graph = (
        ";".join(labels)
        + ";"
        + "".join(f"[p{n}]" for n in range(len(parts)))
        + f"concat=n={len(parts)}:v=0:a=1[a]"
    )
    ffmpeg.run([*sources, "-filter_complex", graph, "-map", "[a]", "-ac", "1", str(path)])
    return path


def _samples(path: Path, out: Path, args: list[str] | None = None) -> np.ndarray:
    ffmpeg.run(["-i", str(path), *(args or []), "-map", "0:a", "-ac", "1", "-f", "f32le", str(out)])
    return np.fromfile(out, dtype=np.float32)


def test_audio_slices_encoded_apart_play_like_one_encode_of_the_whole_track(assets, tmp_path, monkeypatch):
    """Slices of 20 AAC frames (~0.43 s): the MP4's sound, its frames taken from ten separate
    encodes, is as close to the track as one encode of the whole track is, with no click at the
    joins and no shift in time; it starts with the picture and ends within a frame of it."""
    monkeypatch.setattr(audio, "SLICE_FRAMES", 20)
    narration = _speechlike(tmp_path / "speech.wav", [(330, 1.5), (520, 1.0), (260, 1.5)])
    store = ChunkStore(tmp_path / "chunks")
    result = render(plan_for(assets, narration_path=narration), tmp_path / "out.mp4", store=store)
    assert len([name for name in result.chunks if name.endswith(".aac")]) == 10
    track = audio.Track.read(store.folder / next(name for name in result.sources if name.endswith(".f32")))
    level = ["-af", track.level_filter()]
    heard = _samples(result.path, tmp_path / "heard.f32")
    ffmpeg.run([*track.input_args(), *level, *audio.AAC_ENCODER, str(tmp_path / "whole.m4a")])
    whole = _samples(tmp_path / "whole.m4a", tmp_path / "whole.f32")
    ffmpeg.run([*track.input_args(), *level, "-ac", "1", "-f", "f32le", str(tmp_path / "exact.f32")])
    exact = np.fromfile(tmp_path / "exact.f32", dtype=np.float32)
    assert len(exact) == 4 * audio.AUDIO_RATE
    assert len(exact) <= len(heard) < len(exact) + audio.AAC_FRAME

    def error_db(samples: np.ndarray, around: list[int]) -> float:
        error = np.concatenate([samples[at - 512 : at + 512] - exact[at - 512 : at + 512] for at in around])
        signal = np.concatenate([exact[at - 512 : at + 512] for at in around])
        return float(10 * np.log10((error**2).sum() / (signal**2).sum()))

    joins = [number * 20 * audio.AAC_FRAME for number in range(1, 10)]
    everywhere = list(range(512, len(exact) - 512, 1024))
    assert error_db(heard[: len(exact)], everywhere) < -30
    assert error_db(heard[: len(exact)], joins) < error_db(whole[: len(exact)], joins) + 3
    streams = {s["codec_type"]: s for s in ffmpeg.probe(result.path)["streams"]}
    assert float(streams["audio"]["start_time"]) == float(streams["video"]["start_time"]) == 0


def test_a_longer_sentence_reencodes_only_the_audio_slices_from_the_edit_on(assets, tmp_path, monkeypatch):
    """0.4 s more narration after 1.5 s: the slices before it keep their encoded frames (the gain
    stays), the ones from it on are encoded again; the sound before the edit is the same."""
    monkeypatch.setattr(audio, "SLICE_FRAMES", 20)
    before = _speechlike(tmp_path / "before.wav", [(330, 1.5), (520, 2.5)])
    after = _speechlike(tmp_path / "after.wav", [(330, 1.5), (440, 0.4), (520, 2.5)])
    store = ChunkStore(tmp_path / "chunks")
    first = render(plan_for(assets, narration_path=before), tmp_path / "first.mp4", store=store)
    moved = [0, 800] + [ms + 400 for ms in BOUNDS_MS[2:]]
    second = render(
        plan_for(
            assets,
            bounds=moved,
            narration_path=after,
            subtitles_path=_subtitles(tmp_path / "moved.ass", moved),
        ),
        tmp_path / "second.mp4",
        store=store,
    )
    slices = [name for name in second.chunks if name.endswith(".aac")]
    # 1.5 s is 70 frames: slices 0-2 (frames 0-59) and their post-roll end before it.
    reused = [name for name in slices if name in second.reused]
    assert slices[:3] == [name for name in first.chunks if name.endswith(".aac")][:3] == reused
    assert len(slices) == 11
    edit = round(1.5 * audio.AUDIO_RATE)
    old, new = _samples(first.path, tmp_path / "old.f32"), _samples(second.path, tmp_path / "new.f32")
    assert (old[: edit - 2048] == new[: edit - 2048]).all()


def test_the_fonts_folder_survives_another_chunk_thread_linking_the_font_first(tmp_path, monkeypatch):
    """Chunk threads and workers share the fonts folder: one may link the font between another's
    look and its own link."""
    real_link = Path.symlink_to

    def linked_meanwhile(self, target, *args, **kwargs):
        real_link(self, target, *args, **kwargs)  # the other thread, after this one looked
        return real_link(self, target, *args, **kwargs)

    monkeypatch.setattr(Path, "symlink_to", linked_meanwhile)
    folder = chunks.fonts_folder(tmp_path / "fonts")

    font = chunks.default_font_path()
    assert [path.name for path in folder.iterdir()] == [font.name]
    assert (folder / font.name).resolve() == font.resolve()
