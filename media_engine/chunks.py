"""Video made of chunks: each chunk one ffmpeg run, named by a hash of what it shows, made once.

compose cuts its timeline into pieces and its audio track into slices, and describes each as a
`ChunkJob` (the ffmpeg arguments, the chunk's name and what the run reads); `assemble` finds the
chunks already made (this host's folder first, then the shared store), has the missing ones made
(CHUNK_WORKERS at a time here, or by a farm of hosts: `ChunkStore.farm`), and joins them by a
stream copy: the video chunks with ffmpeg's concat demuxer, the audio slices' AAC frames one after
the other (see `audio`). Plain Python: the store's sharing is callables, so media_engine knows
nothing of where chunks are kept or who makes them.

A chunk job travels as JSON (`describe`, `restore`): its files under the planner's work folder
become `{work}`, its inputs (pictures, clips, the logo) `{input:<name>}`, a file in the store named
by its content (`share_inputs` puts them there). Another host makes the same chunk, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from . import audio, ffmpeg
from .errors import Cancelled, MediaError
from .fonts import default_font_path

# Chunks made at a time (each its own ffmpeg process, x264 in one thread: compose.CHUNK_THREADS):
# one more than the cores, so a process starting or reading its inputs leaves no core idle; at
# most 6 (each holds up to ~250 MB).
CHUNK_WORKERS = max(3, min(6, (os.cpu_count() or 2) + 1))

ProgressCallback = Callable[[float], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class Samples:
    """An audio slice's input: the samples `piece` of the track kept in the store as `track`,
    written raw to `path` before the run."""

    track: str
    piece: audio.Slice
    path: str


@dataclass(frozen=True)
class ChunkJob:
    """One ffmpeg run that makes one chunk: `args` end just before the output file.

    What the run reads besides: `inputs`, files of the plan (path: content digest); `texts`,
    files written first (path: content: its filter script and subtitles); `fonts`, a folder made
    first that libass loads the project's font from; `samples`, an audio slice's samples."""

    name: str
    args: list[str]
    seconds: float  # its exact length (a video chunk: frames / fps)
    inputs: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    fonts: str = ""
    samples: Samples | None = None
    # An audio slice (ADTS): the AAC frames [first, last) of it that play.
    audio_frames: tuple[int, int] | None = None


# Has the missing chunks (given longest first) made, here or on other hosts that share them through
# the store, each made here shared through `keep`: (jobs, store, work folder, progress, cancel, deadline).
Farm = Callable[
    ["list[ChunkJob]", "ChunkStore", Path, "ProgressCallback | None", "CancelCheck | None", float], None
]


@dataclass(frozen=True)
class ChunkStore:
    """Where encoded chunks are kept, each named by the hash of what it shows.

    `folder` is this host's copy (a file there is a finished chunk). `fetch(name)` may bring a
    chunk that another host made into `folder / name` and says whether it did; `keep(path)`
    shares a chunk this host just made (called from the thread that called `assemble`, so it may
    check the caller's claim on its own database connection). Without them the folder is the only
    place. `farm` has the missing chunks made by many hosts; without it this host makes them,
    `threads` at a time."""

    folder: Path
    fetch: Callable[[str], bool] | None = None
    keep: Callable[[Path], None] | None = None
    farm: Farm | None = None
    threads: int = CHUNK_WORKERS


@dataclass(frozen=True)
class Composition:
    """A rendered video and the chunks it is made of (in play order, video then audio)."""

    path: Path
    chunks: list[str]
    reused: list[str]  # the chunks that were found already made
    sources: list[str] = field(
        default_factory=list
    )  # files in the store chunks are cut from (the audio track)

    @property
    def made(self) -> list[str]:
        return [name for name in self.chunks if name not in set(self.reused)]


def assemble(
    jobs: list[ChunkJob],
    store: ChunkStore,
    out_path: Path,
    work_dir: Path,
    *,
    on_progress: ProgressCallback | None,
    cancel: CancelCheck | None,
    deadline: float,
    sources: list[str] | None = None,
) -> Composition:
    """The video chunks played one after the other, with the audio slices' frames under them:
    chunks already made are reused, the others made first; the MP4 starts with its index.
    `sources` are the files in the store the chunks were cut from (kept with them)."""
    reused = [job.name for job in jobs if chunk_present(store, job.name)]
    # The longest first (the audio, after an edit): it does not start last and finish after the rest.
    missing = sorted((job for job in jobs if job.name not in set(reused)), key=lambda job: -job.seconds)
    if cancel is not None and cancel():
        raise Cancelled("cancelled before making chunks")
    if missing and store.farm is not None:
        store.farm(missing, store, work_dir, on_progress, cancel, deadline)
        for job in missing:  # made here or on another host (then fetched from the shared store)
            if not chunk_present(store, job.name):
                raise MediaError(f"chunk {job.name} was made but is in no store", permanent=False)
    elif missing:
        make_chunks(missing, store, work_dir, on_progress=on_progress, cancel=cancel, deadline=deadline)
    # Each chunk's length as its frames say: taken from its container, the concat demuxer rounds
    # it to a millisecond, and over a few hundred chunks the picture drifts a frame off the sound.
    listing = work_dir / "chunks.txt"
    listing.write_text(
        "".join(
            f"file {_concat_quote(store.folder / job.name)}\nduration {job.seconds:.6f}\n"
            for job in jobs
            if job.audio_frames is None
        )
    )
    sound = work_dir / "audio.aac"
    with open(sound, "wb") as out:
        for job in jobs:
            if job.audio_frames is not None:
                first, last = job.audio_frames
                out.write(b"".join(audio.adts_frames((store.folder / job.name).read_bytes())[first:last]))
    # The stream starts with the encoder's priming frame: it plays from the frame after it.
    priming = ["-itsoffset", f"{-audio.AAC_FRAME / audio.AUDIO_RATE:.6f}"]
    try:
        ffmpeg.run(
            [
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
                str(listing),
                *priming,
                "-f",
                "aac",
                "-i",
                str(sound),
                "-map",
                "0:v",
                "-map",
                "1:a",
                "-c",
                "copy",
                "-movflags",
                "+faststart",
                str(out_path),
            ],
            timeout=time_left(deadline),
            cancel=cancel,
        )
    except BaseException:
        Path(out_path).unlink(missing_ok=True)
        raise
    if on_progress:
        on_progress(1.0)
    return Composition(
        path=Path(out_path), chunks=[job.name for job in jobs], reused=reused, sources=list(sources or [])
    )


def chunk_present(store: ChunkStore, name: str) -> bool:
    """Whether the chunk `name` is in this host's folder, fetching it from the shared store if need be."""
    path = store.folder / name
    if path.is_file() and path.stat().st_size:
        os.utime(path)  # used now: the work cache's prune keeps it
        return True
    return store.fetch is not None and store.fetch(name) and path.is_file()


def make_chunks(
    jobs: list[ChunkJob],
    store: ChunkStore,
    work_dir: Path,
    *,
    on_progress: ProgressCallback | None,
    cancel: CancelCheck | None,
    deadline: float,
) -> None:
    """Make the chunk jobs here, `store.threads` at a time. Progress and cancel are only ever called
    from the calling thread; a failed or cancelled chunk stops the others."""
    total = sum(job.seconds for job in jobs) or 1.0
    done: dict[str, float] = {}
    stop = threading.Event()

    def make(job: ChunkJob) -> Path:
        return make_chunk(
            job,
            store,
            work_dir,
            cancel=stop.is_set,
            deadline=deadline,
            on_progress=lambda fraction: done.__setitem__(job.name, fraction),
        )

    with ThreadPoolExecutor(max_workers=store.threads, thread_name_prefix="chunk") as pool:
        futures = [pool.submit(make, job) for job in jobs]
        try:
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                for future in finished:
                    path = future.result()  # the first failure stops the rest
                    if store.keep is not None:
                        store.keep(path)  # from this thread, the one whose checks may stop the render
                if cancel is not None and cancel():
                    raise Cancelled("cancelled while making chunks")
                time_left(deadline)
                if on_progress:
                    on_progress(0.98 * sum(done.get(job.name, 0.0) * job.seconds for job in jobs) / total)
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            raise


def make_chunk(
    job: ChunkJob,
    store: ChunkStore,
    work_dir: Path,
    *,
    cancel: CancelCheck | None,
    deadline: float,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Make one chunk into `store.folder` (whole or not at all): its inputs fetched from the store
    when they are not here, its texts, fonts and samples written first. Not kept: the caller shares it."""
    for path in job.inputs:
        if not Path(path).is_file() and not chunk_present(store, Path(path).name):
            raise MediaError(f"chunk {job.name}: its input {Path(path).name} is in no store", permanent=False)
    for path, text in job.texts.items():
        Path(path).write_text(text, encoding="utf-8")
    if job.fonts:
        fonts_folder(Path(job.fonts))
    if job.samples is not None:
        track_path = store.folder / job.samples.track
        for name in (track_path.name, audio.info_path(track_path).name):
            if not chunk_present(store, name):
                raise MediaError(f"chunk {job.name}: the audio track {name} is in no store", permanent=False)
        audio.write_slice(audio.Track.read(track_path), job.samples.piece, Path(job.samples.path))
    part = work_dir / f"{job.name}.part"
    ffmpeg.run(
        [*job.args, "-f", "mp4" if job.audio_frames is None else "adts", str(part)],
        timeout=time_left(deadline),
        duration_s=job.seconds,
        on_progress=on_progress,
        cancel=cancel,
    )
    path = store.folder / job.name
    os.replace(part, path)  # whole or not at all, also for another worker making the same chunk
    return path


def fonts_folder(folder: Path) -> Path:
    """A folder holding only the project's CJK font, for libass.

    Pointing fontsdir at the whole Noto CJK folder makes libass load all four ~20 MB
    collections into memory (+130 MB measured); fontconfig still supplies the other faces."""
    folder.mkdir(parents=True, exist_ok=True)
    font_path = default_font_path()
    link = folder / font_path.name
    if not link.exists():
        try:
            link.symlink_to(font_path)
        except FileExistsError:
            pass  # another chunk thread or worker linked it meanwhile
        except OSError:  # no symbolic links here: a copy
            copy_whole(font_path, link)
    return folder


def copy_whole(source: Path, target: Path) -> None:
    """Copy `source` to `target` whole or not at all: a reader beside the copy (another chunk thread
    or worker) never meets half a file."""
    part = target.parent / f".{target.name}.{os.getpid()}-{threading.get_ident()}.part"
    shutil.copyfile(source, part)
    os.replace(part, target)


def input_name(path: str, content: str) -> str:
    """The name in the store of an input file whose content digest is `content`."""
    return f"input-{content}{Path(path).suffix.lower()}"


def share_inputs(jobs: list[ChunkJob], store: ChunkStore) -> None:
    """Put every input of `jobs` in the store under its content name (`input_name`), so another
    host can make them; an input already there is not copied again."""
    for path, content in {path: content for job in jobs for path, content in job.inputs.items()}.items():
        name = input_name(path, content)
        target = store.folder / name
        if not (target.is_file() and target.stat().st_size):
            copy_whole(Path(path), target)
        if store.keep is not None:
            store.keep(target)


_PLACE = re.compile(r"\{(work|input:input-[0-9a-f]{64}(?:\.\w+)?)\}")


def describe(job: ChunkJob, work_dir: Path) -> dict:
    """`job` as JSON for another host (`restore`): the paths under `work_dir` as `{work}`, each
    input as `{input:<its name in the store>}`."""
    places = {str(path): f"{{input:{input_name(path, content)}}}" for path, content in job.inputs.items()}
    places[str(work_dir)] = "{work}"
    pattern = re.compile("|".join(re.escape(path) for path in sorted(places, key=len, reverse=True)))

    def portable(text: str) -> str:
        return pattern.sub(lambda match: places[match.group(0)], text)

    return {
        "name": job.name,
        "args": [portable(arg) for arg in job.args],
        "seconds": job.seconds,
        "inputs": {portable(path): content for path, content in job.inputs.items()},
        "texts": {portable(path): portable(text) for path, text in job.texts.items()},
        "fonts": portable(job.fonts),
        "samples": None
        if job.samples is None
        else {
            "track": job.samples.track,
            "piece": [job.samples.piece.first, job.samples.piece.frames, job.samples.piece.digest],
            "path": portable(job.samples.path),
        },
        "audio_frames": list(job.audio_frames) if job.audio_frames is not None else None,
    }


def restore(description: dict, store: ChunkStore, work_dir: Path) -> ChunkJob:
    """The chunk job `describe` wrote, with its paths on this host: `{work}` is `work_dir`, an input
    the file of that name in the store's folder (fetched when the job is made)."""

    def local(text: str) -> str:
        return _PLACE.sub(
            lambda match: (
                str(work_dir)
                if match.group(1) == "work"
                else str(store.folder / match.group(1).removeprefix("input:"))
            ),
            text,
        )

    samples = description["samples"]
    frames = description["audio_frames"]
    return ChunkJob(
        name=description["name"],
        args=[local(arg) for arg in description["args"]],
        seconds=description["seconds"],
        inputs={local(path): content for path, content in description["inputs"].items()},
        texts={local(path): local(text) for path, text in description["texts"].items()},
        fonts=local(description["fonts"]),
        samples=None
        if samples is None
        else Samples(samples["track"], audio.Slice(*samples["piece"]), local(samples["path"])),
        audio_frames=tuple(frames) if frames is not None else None,
    )


@dataclass(frozen=True)
class AssEvents:
    """An ASS file as its header and its events, each event timed in frames to show."""

    header: str
    events: list[tuple[int, int, list[str]]]  # (first frame shown, first frame not shown, fields)
    start_field: int
    end_field: int

    @classmethod
    def read(cls, path: Path) -> AssEvents:
        header: list[str] = []
        raw: list[list[str]] = []
        fields = ["Layer", "Start", "End", "Style", "Name", "MarginL", "MarginR", "MarginV", "Effect", "Text"]
        for line in Path(path).read_text(encoding="utf-8-sig").splitlines():
            key, _, value = line.partition(":")
            if key == "Dialogue":
                raw.append(value.strip().split(",", len(fields) - 1))
            elif key != "Comment":
                header.append(line)
                if key == "Format" and "Text" in value:
                    fields = [name.strip() for name in value.split(",")]
        start_field, end_field = fields.index("Start"), fields.index("End")
        events = [(_ass_cs(event[start_field]), _ass_cs(event[end_field]), event) for event in raw]
        return cls("\n".join(header).rstrip("\n") + "\n", events, start_field, end_field)

    def for_frames(self, start: int, end: int, fps: int) -> tuple[int, str]:
        """(base, ASS text) for the frames [start, end) shown as frames base, base + 1, ...

        An event's start and end snap to the nearest frame: sentence times lie on frames, and
        their centiseconds (rounded up) are a fraction of a frame late, by an amount that depends
        on the frame; snapped, a cue moved by whole frames is the same cue. libass shows an
        event on the frames whose time t has start <= t < end; written back at the floor of a
        frame's time in centiseconds, an event covers exactly its snapped frames."""
        inside = []
        for start_cs, end_cs, fields in self.events:
            first, after = (2 * start_cs * fps + 100) // 200, (2 * end_cs * fps + 100) // 200
            if first < end and after > start and after > first:
                inside.append((first, after, fields))
        base = max([0] + [start - first for first, _, _ in inside])
        lines = []
        for first, after, fields in inside:
            fields = list(fields)
            fields[self.start_field] = _ass_clock((first - start + base) * 100 // fps)
            fields[self.end_field] = _ass_clock((after - start + base) * 100 // fps)
            lines.append("Dialogue: " + ",".join(fields))
        return base, self.header + "".join(line + "\n" for line in lines)


def _ass_cs(clock: str) -> int:
    hours, minutes, seconds = clock.strip().split(":")
    whole, _, fraction = seconds.partition(".")
    return ((int(hours) * 60 + int(minutes)) * 60 + int(whole)) * 100 + int((fraction + "00")[:2])


def _ass_clock(cs: int) -> str:
    hours, rest = divmod(cs, 360_000)
    minutes, rest = divmod(rest, 6000)
    return f"{hours}:{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}"


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file's content, remembered for as long as its size and time stay the same."""
    stat = os.stat(path)
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def digest(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _concat_quote(path: Path) -> str:
    return "'" + str(path).replace("'", "'\\''") + "'"


def time_left(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise MediaError("the render ran out of time", permanent=False)
    return remaining
