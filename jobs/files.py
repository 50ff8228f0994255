"""Stored files as the render sees them: one storage-key scheme, the worker's local cache of
stored files, storing outputs, and links to an execution's results.

The storage (local files or S3) holds everything that matters; a worker's WORK_ROOT is a cache.
"""

import contextlib
import os
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from batchvideo.storage import storage_download
from media_engine.chunks import ChunkStore

from .models import JobExecution

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


def music_folder(user) -> str:
    return f"music/{user.pk.hex}"


def fetch(key: str) -> Path:
    """A local copy of a stored file: the worker's disk is only a cache of the storage."""
    target = Path(settings.WORK_ROOT) / "cache" / key
    # A copy whose size differs from the stored file is stale (a logo replaced under its name).
    if not target.exists() or target.stat().st_size != default_storage.size(key):
        storage_download(default_storage, key, target)
    else:
        # Used now: work_cache_prune keeps it. The access time says so and the modification time
        # stays, so what was learnt about the file (compose's content hashes and probes) stays valid.
        os.utime(target, (time.time(), target.stat().st_mtime))
    return target


def store(local_path: Path, key: str) -> str:
    """Save a file under exactly `key` (replacing an older file there) and return the key.

    The key is returned (and so recorded) only once the stored size matches the local file:
    an interrupted upload raises a transient error instead. S3 replaces an object in one step
    (a failed multipart upload is aborted), so there the old file is not deleted first.
    """
    if not getattr(default_storage, "file_overwrite", False) and default_storage.exists(key):
        default_storage.delete(key)
    with open(local_path, "rb") as handle:
        saved = default_storage.save(key, File(handle, name=local_path.name))
    if default_storage.size(saved) != local_path.stat().st_size:
        raise OSError(f"storing {saved} was cut short; it is stored again on retry")
    # Seed this worker's cache: a later step (the cover reads the video) needs no download.
    cached = Path(settings.WORK_ROOT) / "cache" / saved
    if cached.resolve() != Path(local_path).resolve():  # a chunk is made in the cache itself
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_path, cached)
    return saved


def chunk_key(name: str) -> str:
    return f"{CHUNKS_FOLDER}/{name}"


def chunk_store() -> ChunkStore:
    """Compose's chunks: kept in the storage, so every render host can reuse them, with this
    host's work cache in front (work_cache_prune drops the local copies nobody used lately)."""

    def fetch_chunk(name: str) -> bool:
        key = chunk_key(name)
        try:
            if not default_storage.exists(key):
                return False
            fetch(key)
        except OSError:  # gone meanwhile (a clean-up took an unused one): it is made again
            return False
        return True

    return ChunkStore(Path(settings.WORK_ROOT) / "cache" / CHUNKS_FOLDER, fetch=fetch_chunk,
                      keep=lambda path: store(path, chunk_key(path.name)) and None)


def file_digest(field_file) -> str:
    """A cheap identity for an uploaded file: its name and size (content hashing costs a download)."""
    if not field_file:
        return ""
    try:
        return f"{field_file.name}:{field_file.size}"
    except (OSError, ValueError):
        return f"{field_file.name}:missing"


def work_cache_prune(*, unused_days: float) -> int:
    """Delete this host's work files unused for `unused_days` (neither written nor marked used,
    see `fetch`; the storage keeps everything that matters), then the folders left empty; returns
    how many files went. 0 days: keep everything."""
    if unused_days <= 0:
        return 0
    cutoff = time.time() - unused_days * 86400
    removed = 0
    for folder, _folders, files in os.walk(settings.WORK_ROOT, topdown=False):
        for name in files:
            path = Path(folder) / name
            try:
                stat = path.stat()
                if max(stat.st_mtime, stat.st_atime) < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # another worker on this host pruned it first
                continue
        if Path(folder) != Path(settings.WORK_ROOT):
            with contextlib.suppress(OSError):  # not empty, or gone already
                Path(folder).rmdir()
    return removed


def execution_urls(execution: JobExecution | None, *, expire: int | None = None) -> dict[str, str]:
    """Signed links to an execution's results, by name (video, cover, srt, ...), valid `expire` seconds
    (default: SIGNED_URL_EXPIRE_SECONDS)."""
    if execution is None:
        return {}
    return {name: default_storage.url(key, expire=expire)
            for name, key in execution.results.items() if isinstance(key, str)}
