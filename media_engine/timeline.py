"""A rendered storyboard as an editable timeline for editing apps, in a folder that opens anywhere.

`bundle(storyboard, fmt, out_dir)` copies the media into the folder under relative paths and writes
the timeline next to them:
- otio: OpenTimelineIO's own JSON (`.otio`);
- fcpxml: Final Cut Pro X XML, and fcp7xml: Final Cut Pro 7 XML (Premiere Pro and DaVinci Resolve import
  it), both written by OpenTimelineIO's maintained adapters from the same timeline;
- jianying: a Jianying (CapCut) draft folder written with pyJianYingDraft's own classes. Its media sit
  inside the draft folder and are named through Jianying's draft-folder placeholder, so the draft opens
  wherever the folder is copied to (Jianying's drafts folder).

The edit is the render's: one picture or clip per segment, cut on the frame the composition cuts on
(round(start_ms * fps / 1000)), a clip shorter than its segment repeated (the composition loops it),
the narration from the start, the music repeated under it at the render's volume, and the subtitles
(SRT) beside it (a text track in the Jianying draft). Not carried over: transitions, motion, burnt-in
overlays and the logo; editing apps add their own.
"""

import json
import math
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import quote
from xml.etree import ElementTree

from . import ffmpeg
from .errors import MediaError

FORMATS = {
    "otio": "OpenTimelineIO (.otio)",
    "fcpxml": "Final Cut Pro X XML (.fcpxml)",
    "fcp7xml": "Final Cut Pro 7 XML (.xml), for Premiere Pro and DaVinci Resolve",
    "jianying": "Jianying / CapCut draft folder (draft_content.json)",
}
TIMELINE_FILES = {"otio": "timeline.otio", "fcpxml": "timeline.fcpxml", "fcp7xml": "timeline.xml"}
ADAPTERS = {"otio": "otio_json", "fcpxml": "fcpx_xml", "fcp7xml": "fcp_xml"}
MEDIA_FOLDER = "media"
# Jianying replaces this prefix of a material's path with the draft's own folder.
JIANYING_DRAFT_PLACEHOLDER = "##_draftpath_placeholder_0E685133-18CE-45ED-8CB8-2904A212EC80_##"
JIANYING_MEDIA_FOLDER = "materials"
# How long a still may be held, as far as editing apps are told (the length pyJianYingDraft gives photos).
STILL_SECONDS = 3 * 3600
HOW_TO_OPEN = {
    "otio": "Open timeline.otio with an OpenTimelineIO-aware editor or otioview. Media paths are relative to "
    "this folder: keep the folder together.",
    "fcpxml": "In Final Cut Pro: File > Import > XML, and choose timeline.fcpxml. Media paths are relative to "
    "this folder; if clips show as missing, relink them to the files in media/. Subtitles: "
    "media/subtitles.srt (File > Import > Captions).",
    "fcp7xml": "In Premiere Pro: File > Import, choose timeline.xml. In DaVinci Resolve: File > Import > "
    "Timeline > timeline.xml. Media paths are relative to this folder; if clips show offline, "
    "relink them to the files in media/ (one is enough for the rest). Subtitles: media/subtitles.srt.",
    "jianying": "Copy this whole folder into Jianying's (CapCut's) drafts folder, e.g. "
    "...\\JianyingPro Drafts\\ on Windows, and open the draft from Jianying's home page. Its "
    "media are in materials/ inside the draft and are found wherever the folder is.",
}
# Our own notes in the OTIO metadata (segment numbers, the subtitles file, the music volume).
METADATA_KEY = "batchvideo"


@dataclass(frozen=True)
class Shot:
    """One segment's picture or clip, on the render's clock."""

    path: Path
    kind: Literal["still", "clip"]
    start_ms: int
    end_ms: int
    name: str = ""


@dataclass(frozen=True)
class Storyboard:
    """What a render was made of, as local files."""

    name: str
    width: int
    height: int
    fps: int
    shots: list[Shot]
    narration_path: Path
    subtitles_path: Path | None = None  # SRT
    music_path: Path | None = None
    music_volume: float = 0.15
    notes: tuple[str, ...] = ()  # said in the bundle's README.txt


@dataclass(frozen=True)
class Cut:
    """A piece of media on a track, in frames: `frames` of it from `source_start`, placed at `start`."""

    path: str  # relative to the bundle's folder, with forward slashes
    name: str
    start: int
    frames: int
    source_start: int
    media_frames: int  # how long the media is (a still: STILL_SECONDS)
    segment: int | None = None  # the storyboard segment a picture or clip shows


@dataclass(frozen=True)
class Edit:
    name: str
    width: int
    height: int
    fps: int
    frames: int
    video: list[Cut]
    narration: list[Cut]
    music: list[Cut] = field(default_factory=list)
    music_volume: float = 0.15
    subtitles: str | None = None  # relative path of the SRT


def frame_of(ms: int, fps: int) -> int:
    """The frame a time in the storyboard falls on: the composition cuts there too."""
    return round(ms * fps / 1000)


def bundle(storyboard: Storyboard, fmt: str, out_dir: Path) -> Path:
    """Write the timeline in `fmt` and a copy of every file it uses into a new folder inside `out_dir`;
    returns the folder. Media paths in the timeline are relative to the folder (Jianying: to the draft
    folder, through its placeholder)."""
    if fmt not in FORMATS:
        raise MediaError(f"unknown timeline format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not storyboard.shots:
        raise MediaError("the storyboard has no segments")
    folder = Path(out_dir).absolute() / _folder_name(storyboard.name)
    folder.mkdir(parents=True)
    media = _copy_media(storyboard, folder, JIANYING_MEDIA_FOLDER if fmt == "jianying" else MEDIA_FOLDER)
    edit = _edit(media, folder)
    if fmt == "jianying":
        _write_jianying(edit, folder)
    else:
        _write_otio(edit, folder / TIMELINE_FILES[fmt], fmt)
    readme = [HOW_TO_OPEN[fmt], "", *storyboard.notes]
    (folder / "README.txt").write_text("\n".join(readme).strip() + "\n", encoding="utf-8")
    return folder


# ---------------------------------------------------------------- media and the edit


def _folder_name(name: str) -> str:
    """A folder name every system accepts, Chinese kept."""
    cleaned = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "-", name).strip(" .-")
    return cleaned[:80] or "timeline"


def _copy_media(storyboard: Storyboard, folder: Path, media_folder: str) -> Storyboard:
    """The storyboard with every file copied under `folder/media_folder` (one copy per source file),
    its paths relative to `folder`."""
    copies: dict[Path, Path] = {}

    def copy(source: Path, subfolder: str, stem: str) -> Path:
        source = Path(source)
        if source in copies:
            return copies[source]
        if not source.is_file():
            raise MediaError(f"file not found: {source}")
        relative = Path(media_folder) / subfolder / f"{stem}{source.suffix.lower()}"
        number = 2
        while (folder / relative).exists():  # two sources with one name
            relative = relative.with_name(f"{stem}-{number}{source.suffix.lower()}")
            number += 1
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / relative)
        copies[source] = relative
        return relative

    shots = []
    for number, shot in enumerate(storyboard.shots, start=1):
        if shot.kind == "clip":
            path = copy(shot.path, "clips", _stem(shot.path))
        else:
            path = copy(shot.path, "pictures", f"{number:03d}")
        shots.append(replace(shot, path=path))
    return replace(
        storyboard,
        shots=shots,
        narration_path=copy(storyboard.narration_path, "", "narration"),
        subtitles_path=copy(storyboard.subtitles_path, "", "subtitles")
        if storyboard.subtitles_path
        else None,
        music_path=copy(storyboard.music_path, "", "music") if storyboard.music_path else None,
    )


def _stem(path: Path) -> str:
    return re.sub(r"[^\w.-]+", "-", Path(path).stem).strip("-.") or "clip"


def _edit(storyboard: Storyboard, folder: Path) -> Edit:
    """Cuts on frames, from a storyboard whose paths are relative to `folder`."""
    fps = storyboard.fps
    shots = storyboard.shots
    total = max(1, frame_of(shots[-1].end_ms, fps))
    bounds = [0]
    for shot in shots[1:]:
        # Every segment keeps at least one frame, as in the composition.
        bounds.append(
            min(max(frame_of(shot.start_ms, fps), bounds[-1] + 1), total - (len(shots) - len(bounds)))
        )
    bounds.append(total)
    if any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise MediaError(f"{len(shots)} segments do not fit in {total} frames")
    video: list[Cut] = []
    for index, (shot, start, end) in enumerate(zip(shots, bounds, bounds[1:])):
        name = shot.name or f"Segment {index + 1}"
        if shot.kind == "still":
            video.append(Cut(_posix(shot.path), name, start, end - start, 0, STILL_SECONDS * fps, index))
        else:
            video += _repeated(
                _posix(shot.path),
                name,
                start,
                end - start,
                _media_frames(folder / shot.path, fps),
                segment=index,
            )
    narration_frames = _media_frames(folder / storyboard.narration_path, fps)
    narration = [
        Cut(
            _posix(storyboard.narration_path),
            "Narration",
            0,
            min(total, narration_frames),
            0,
            narration_frames,
        )
    ]
    music: list[Cut] = []
    if storyboard.music_path is not None:
        music = _repeated(
            _posix(storyboard.music_path),
            "Music",
            0,
            total,
            _media_frames(folder / storyboard.music_path, fps),
        )
    subtitles = _posix(storyboard.subtitles_path) if storyboard.subtitles_path else None
    return Edit(
        name=storyboard.name,
        width=storyboard.width,
        height=storyboard.height,
        fps=fps,
        frames=total,
        video=video,
        narration=narration,
        music=music,
        music_volume=storyboard.music_volume,
        subtitles=subtitles,
    )


def _repeated(
    path: str, name: str, start: int, frames: int, media_frames: int, segment: int | None = None
) -> list[Cut]:
    """`frames` of a medium from `start`, the medium played again from its start while it is shorter.
    Each repeat is named apart: the FCP 7 XML adapter writes equal clips as references to the first one,
    which editing apps then place where the first one is."""
    cuts = []
    done = 0
    while done < frames:
        length = min(media_frames, frames - done)
        repeat = f" ({len(cuts) + 1})" if cuts else ""
        cuts.append(Cut(path, f"{name}{repeat}", start + done, length, 0, media_frames, segment))
        done += length
    return cuts


def _media_frames(path: Path, fps: int) -> int:
    """Whole frames of a clip or sound: never more than the file holds."""
    frames = math.floor(ffmpeg.duration(path) * fps + 1e-6)
    if frames < 1:
        raise MediaError(f"{path.name} is shorter than one frame")
    return frames


def _posix(path: Path) -> str:
    return Path(path).as_posix()


# ---------------------------------------------------------------- OpenTimelineIO and the FCP XMLs


def otio_timeline(edit: Edit):
    """The edit as an OpenTimelineIO timeline: a video track, the narration's and the music's."""
    import opentimelineio as otio

    fps = edit.fps

    def time_range(start: int, frames: int):
        return otio.opentime.TimeRange(
            otio.opentime.RationalTime(start, fps), otio.opentime.RationalTime(frames, fps)
        )

    def track(name: str, kind: str, cuts: list[Cut]):
        track = otio.schema.Track(name=name, kind=kind)
        for cut in cuts:  # laid end to end from the start: a track needs no gaps
            reference = otio.schema.ExternalReference(
                target_url=cut.path, available_range=time_range(0, cut.media_frames)
            )
            metadata = {METADATA_KEY: {"segment": cut.segment}} if cut.segment is not None else {}
            track.append(
                otio.schema.Clip(
                    name=cut.name,
                    media_reference=reference,
                    source_range=time_range(cut.source_start, cut.frames),
                    metadata=metadata,
                )
            )
        return track

    notes = {
        "width": edit.width,
        "height": edit.height,
        "subtitles": edit.subtitles,
        "music_volume": edit.music_volume if edit.music else None,
    }
    timeline = otio.schema.Timeline(
        name=edit.name,
        global_start_time=otio.opentime.RationalTime(0, fps),
        metadata={
            METADATA_KEY: notes,
            # The FCP 7 XML adapter writes the sequence's frame size from here.
            "fcp_xml": {
                "media": {
                    "video": {
                        "format": {
                            "samplecharacteristics": {
                                "width": str(edit.width),
                                "height": str(edit.height),
                                "rate": {"timebase": str(fps), "ntsc": "FALSE"},
                                "pixelaspectratio": "square",
                            }
                        }
                    }
                }
            },
        },
    )
    timeline.tracks.append(track("Pictures", otio.schema.TrackKind.Video, edit.video))
    timeline.tracks.append(track("Narration", otio.schema.TrackKind.Audio, edit.narration))
    if edit.music:
        timeline.tracks.append(track("Music", otio.schema.TrackKind.Audio, edit.music))
    return timeline


def _write_otio(edit: Edit, path: Path, fmt: str) -> None:
    import opentimelineio as otio

    otio.adapters.write_to_file(otio_timeline(edit), str(path), adapter_name=ADAPTERS[fmt])
    if fmt == "fcpxml":
        _fcpx_frame_size(path, edit.width, edit.height)
    if fmt == "fcp7xml":
        _fcp7_file_urls(path)


def _fcp7_file_urls(path: Path) -> None:
    """Premiere Pro and DaVinci Resolve read a clip's <pathurl> as a file URL: each relative path becomes
    one relative to the timeline's folder ("file:./media/sea%20clip.mp4"), so the folder opens wherever
    it is unpacked."""
    tree = ElementTree.parse(path)
    for element in tree.getroot().iter("pathurl"):
        if element.text and not element.text.startswith("file:"):
            element.text = "file:./" + quote(element.text)
    tree.write(path, encoding="UTF-8", xml_declaration=True)


def _fcpx_frame_size(path: Path, width: int, height: int) -> None:
    """The FCP X adapter names a format after the frame size it probes from the media's path, which is
    relative here; Final Cut Pro needs the size itself, so each format gets it written in."""
    text = path.read_text(encoding="utf-8")
    root = ElementTree.fromstring(text.split("<!DOCTYPE fcpxml>", 1)[-1].strip())
    for element in root.iter("format"):
        element.set("width", str(width))
        element.set("height", str(height))
        if not element.get("name"):
            element.attrib.pop("name", None)
    body = ElementTree.tostring(root, encoding="unicode")
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE fcpxml>\n{body}\n', encoding="utf-8")


# ---------------------------------------------------------------- Jianying / CapCut


def _write_jianying(edit: Edit, folder: Path) -> None:
    """draft_content.json and draft_meta_info.json in `folder`, from pyJianYingDraft's classes; the
    materials' absolute paths it records become Jianying's draft-folder placeholder paths."""
    import pyJianYingDraft as jianying
    from pyJianYingDraft import assets

    fps = edit.fps
    # What DraftFolder.create_draft does, into the folder that already holds the media.
    shutil.copyfile(assets.get_asset_path("DRAFT_META_TEMPLATE"), folder / "draft_meta_info.json")
    script = jianying.ScriptFile(edit.width, edit.height, fps, True)

    def microseconds(frames: int) -> int:
        return frames * jianying.SEC // fps

    def time_range(start: int, frames: int):
        # Both ends on the microsecond of their frame, so pieces laid end to end never overlap.
        return jianying.Timerange(microseconds(start), microseconds(start + frames) - microseconds(start))

    materials: dict[str, object] = {}

    def material(cut: Cut, make: Callable):
        if cut.path not in materials:
            materials[cut.path] = make(str(folder / cut.path), material_name=Path(cut.path).name)
        return materials[cut.path]

    video = script.append_track(jianying.TrackSpec(jianying.TrackType.video, "Pictures"))
    for cut in edit.video:
        script.add_segment(
            jianying.VideoSegment(
                material(cut, jianying.VideoMaterial),
                time_range(cut.start, cut.frames),
                source_timerange=time_range(cut.source_start, cut.frames),
            ),
            video,
        )
    voice = script.append_track(jianying.TrackSpec(jianying.TrackType.audio, "Narration"))
    for cut in edit.narration:
        script.add_segment(
            jianying.AudioSegment(
                material(cut, jianying.AudioMaterial),
                time_range(cut.start, cut.frames),
                source_timerange=time_range(cut.source_start, cut.frames),
            ),
            voice,
        )
    if edit.music:
        music = script.append_track(jianying.TrackSpec(jianying.TrackType.audio, "Music"))
        for cut in edit.music:
            script.add_segment(
                jianying.AudioSegment(
                    material(cut, jianying.AudioMaterial),
                    time_range(cut.start, cut.frames),
                    source_timerange=time_range(cut.source_start, cut.frames),
                    volume=edit.music_volume,
                ),
                music,
            )
    if edit.subtitles:
        script.import_srt(str(folder / edit.subtitles), "Subtitles")

    content = json.loads(script.dumps())
    for kind in ("videos", "audios"):
        for entry in content["materials"][kind]:
            entry["path"] = jianying_path(Path(entry["path"]).relative_to(folder).as_posix())
    (folder / "draft_content.json").write_text(
        json.dumps(content, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    meta_path = folder / "draft_meta_info.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta.update(
        {"draft_id": str(uuid.uuid4()).upper(), "draft_name": folder.name, "tm_duration": content["duration"]}
    )
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")


def jianying_path(relative: str) -> str:
    """How a Jianying draft names a file inside its own folder."""
    return f"{JIANYING_DRAFT_PLACEHOLDER}/{relative}"
