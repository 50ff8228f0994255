"""Video made of chunks: each chunk one ffmpeg run, named by a hash of what it shows, made once.

compose cuts its timeline into pieces and its audio track into slices, and describes each as a
`ChunkJob` (the ffmpeg arguments and the chunk's name); `assemble` finds the chunks already made
(this host's folder first, then the shared store), makes the missing ones CHUNK_WORKERS at a time,
and joins them by a stream copy: the video chunks with ffmpeg's concat demuxer, the audio slices'
AAC frames one after the other (see `audio`). Plain Python: the store's sharing is two callables,
so media_engine knows nothing of where chunks are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from . import audio, ffmpeg
from .errors import Cancelled, MediaError

# Chunks made at a time (each its own ffmpeg process, x264 in one thread: compose.CHUNK_THREADS):
# one more than the cores, so a process starting or reading its inputs leaves no core idle; at
# most 6 (each holds up to ~250 MB).
CHUNK_WORKERS = max(3, min(6, (os.cpu_count() or 2) + 1))

ProgressCallback = Callable[[float], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class ChunkStore:
    """Where encoded chunks are kept, each named by the hash of what it shows.

    `folder` is this host's copy (a file there is a finished chunk). `fetch(name)` may bring a
    chunk that another host made into `folder / name` and says whether it did; `keep(path)`
    shares a chunk this host just made (called from the thread that called `assemble`, so it may
    check the caller's claim on its own database connection). Without them the folder is the only
    place."""

    folder: Path
    fetch: Callable[[str], bool] | None = None
    keep: Callable[[Path], None] | None = None


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


@dataclass(frozen=True)
class ChunkJob:
    """One ffmpeg run that makes one chunk: `args` end just before the output file."""

    name: str
    args: list[str]
    seconds: float  # its exact length (a video chunk: frames / fps)
    # Run by the worker first, with the cancel check and the seconds left: writes what the ffmpeg
    # run reads (an audio slice's samples).
    prepare: Callable[[CancelCheck, float], None] | None = None
    # An audio slice (ADTS): the AAC frames [first, last) of it that play.
    audio_frames: tuple[int, int] | None = None


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
    missing = [job for job in jobs if job.name not in set(reused)]
    _make_chunks(missing, store, work_dir, on_progress=on_progress, cancel=cancel, deadline=deadline)
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


def _make_chunks(
    jobs: list[ChunkJob],
    store: ChunkStore,
    work_dir: Path,
    *,
    on_progress: ProgressCallback | None,
    cancel: CancelCheck | None,
    deadline: float,
) -> None:
    """Run the chunk jobs, CHUNK_WORKERS at a time. Progress and cancel are only ever called from
    the calling thread; a failed or cancelled chunk stops the others."""
    if cancel is not None and cancel():
        raise Cancelled("cancelled before making chunks")
    # The longest first (the audio, after an edit): it does not start last and finish after the rest.
    jobs = sorted(jobs, key=lambda job: -job.seconds)
    total = sum(job.seconds for job in jobs) or 1.0
    done: dict[str, float] = {}
    stop = threading.Event()

    def make(job: ChunkJob) -> Path:
        if job.prepare is not None:
            job.prepare(stop.is_set, time_left(deadline))
        part = work_dir / f"{job.name}.part"
        ffmpeg.run(
            [*job.args, "-f", "mp4" if job.audio_frames is None else "adts", str(part)],
            timeout=time_left(deadline),
            duration_s=job.seconds,
            on_progress=lambda fraction: done.__setitem__(job.name, fraction),
            cancel=stop.is_set,
        )
        path = store.folder / job.name
        os.replace(part, path)  # whole or not at all, also for another worker making the same chunk
        return path

    with ThreadPoolExecutor(max_workers=CHUNK_WORKERS, thread_name_prefix="chunk") as pool:
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
