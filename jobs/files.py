"""Stored files as the render sees them: one storage-key scheme, the worker's local cache of
stored files, storing outputs, and links to an execution's results.

The storage (local files or S3) holds everything that matters; a worker's WORK_ROOT is a cache
(jobs.render.workspace).
"""

import os
import time
from collections.abc import Callable
from pathlib import Path

from django.core.files.storage import FileSystemStorage, default_storage

from accounts.storage import storage_download, storage_put
from jobs.models import JobExecution
from jobs.render.workspace import cache_root
from media_engine.chunks import ChunkStore, Farm

# Video chunks, named by the hash of what they show, shared by every job and render host.
CHUNKS_FOLDER = "chunks"


def execution_folder(job_id: int, execution_id: int) -> str:
    """Where an execution's artifacts are stored: `jobs/<job>/<execution>/`."""
    return f"jobs/{job_id}/{execution_id}/"


def execution_key(job_id: int, execution_id: int, name: str) -> str:
    return f"{execution_folder(job_id, execution_id)}{name}"


def picture_key(job_id: int, index: int, label: str, suffix: str = ".png") -> str:
    """A segment's picture: kept across executions, so stored beside them, not inside one."""
    return f"jobs/{job_id}/pictures/{index:03d}-{label}{suffix}"


def moving_clip_key(job_id: int, identity: str) -> str:
    """A moving clip made from a segment's picture, named by everything it is made from (`identity`),
    so a render finds the one it made before, whatever the segment's index is now."""
    return f"jobs/{job_id}/pictures/moving-{identity}.mp4"


def music_folder(team) -> str:
    """Where a team's background music is uploaded."""
    return f"music/team-{team.pk}"


def music_folders(team) -> list[str]:
    """Where a team's background music is: its folder, and for a personal team the folder its user
    uploaded to before teams (music/<user id>)."""
    if team is None:
        return []
    legacy = [f"music/{team.personal_of_id.hex}"] if team.personal_of_id else []
    return [music_folder(team), *legacy]


def fetch(key: str) -> Path:
    """A local copy of a stored file: the worker's disk is only a cache of the storage."""
    target = cache_root() / key
    # A copy whose size differs from the stored file is stale (a logo replaced under its name).
    if not target.exists() or target.stat().st_size != default_storage.size(key):
        storage_download(default_storage, key, target)
    else:
        # Used now: work_cache_prune keeps it. The access time says so and the modification time
        # stays, so what was learnt about the file (compose's content hashes and probes) stays valid.
        os.utime(target, (time.time(), target.stat().st_mtime))
    return target


def store(local_path: Path, key: str) -> str:
    """Save a file under exactly `key` (replacing an older file there, in one step) and return the key.

    The key is returned (and so recorded) only once the stored size matches the local file:
    an interrupted upload raises a transient error instead."""
    storage_put(default_storage, local_path, key)
    if default_storage.size(key) != local_path.stat().st_size:
        raise OSError(f"storing {key} was cut short; it is stored again on retry")
    _seed_cache(local_path, key)
    return key


def _seed_cache(local_path: Path, key: str) -> None:
    """Put a copy of a file just stored in this worker's cache: a later step (the cover reads the
    video) needs no download. Through a temporary name, like a download."""
    cached = cache_root() / key
    if cached.exists() and cached.samefile(local_path):  # a chunk is made in the cache itself
        return
    storage_put(FileSystemStorage(location=cache_root()), local_path, key)


def chunk_key(name: str) -> str:
    return f"{CHUNKS_FOLDER}/{name}"


def chunk_store(*, fence: Callable[[], None] | None = None, farm: Farm | None = None) -> ChunkStore:
    """Compose's chunks: kept in the storage, so every render host can reuse them, with this
    host's work cache in front (work_cache_prune drops the local copies nobody used lately).

    A chunk is named by what it shows, so one already stored is kept, never replaced or deleted:
    two hosts making the same chunk store it once. `fence` (the render's claim check) runs before
    every write, so a worker that lost its execution stores nothing more. `farm` has the missing
    chunks made by many workers (jobs.render.fanout); without it, by this one."""

    def fetch_chunk(name: str) -> bool:
        key = chunk_key(name)
        try:
            if not default_storage.exists(key):
                return False
            fetch(key)
        except OSError:  # gone meanwhile (a clean-up took an unused one): it is made again
            return False
        return True

    def keep(path: Path) -> None:
        if fence is not None:
            fence()
        storage_put(default_storage, path, chunk_key(path.name), replace=False)

    return ChunkStore(cache_root() / CHUNKS_FOLDER, fetch=fetch_chunk, keep=keep, farm=farm)


def file_digest(field_file) -> str:
    """A cheap identity for an uploaded file: its name and size (content hashing costs a download)."""
    if not field_file:
        return ""
    try:
        return f"{field_file.name}:{field_file.size}"
    except (OSError, ValueError):
        return f"{field_file.name}:missing"


def execution_urls(execution: JobExecution | None, *, expire: int | None = None) -> dict[str, str]:
    """Signed links to an execution's results, by name (video, cover, srt, ...), valid `expire` seconds
    (default: SIGNED_URL_EXPIRE_SECONDS)."""
    if execution is None:
        return {}
    return {
        name: default_storage.url(key, expire=expire)
        for name, key in execution.results.items()
        if isinstance(key, str)
    }
