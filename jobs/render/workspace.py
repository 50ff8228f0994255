"""A host's work folder (WORK_ROOT), shared by every worker process on the host:

    WORK_ROOT/runs/execution-<id>-attempt-<n>/   one attempt's own files, and its temp folders (tmp/)
    WORK_ROOT/cache/                             copies of stored files, chunks, narrated sentences

An attempt folder belongs to the one process that renders the attempt: that process holds an
exclusive lock (flock) on the folder's `.lease` file for as long as it renders. The kernel drops the
lock when the process ends, however it ends (kill -9 included), and keeps it while the process is
paused (SIGSTOP). So "the lease can be locked" means exactly "no live process uses this folder",
whatever the clocks say. A folder is made under a temporary name with its lease already locked and
renamed into place: the prune never sees an attempt folder without its owner's lock.

The cache is shared by every attempt: its files go when unused for WORK_CACHE_DAYS (a use
refreshes them), and its folders once empty. A folder is only ever written through a
file opened in it (`accounts.storage._fresh_folder` makes the folder again if a prune removed it
empty just before), and a folder holding a file is never empty, so a prune cannot remove a folder
under a writer. The cache's own top folders (chunks/, sentences/, jobs/, ...) are never removed.
"""

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

RUNS_FOLDER = "runs"
CACHE_FOLDER = "cache"
LEASE = ".lease"
# A folder being made (between its creation and its lease) is left alone this long.
STAGING_GRACE_S = 3600


def cache_root() -> Path:
    return Path(settings.WORK_ROOT) / CACHE_FOLDER


def sentence_cache() -> Path:
    """Narrated sentences, named by everything that changes their sound (media_engine.tts)."""
    return cache_root() / "sentences"


def _runs_root() -> Path:
    return Path(settings.WORK_ROOT) / RUNS_FOLDER


class AttemptFolder:
    """The folder of one attempt, leased to this process from `__enter__` until `release`; `worker`
    names a helper's own folder for the attempt (a chunk another worker makes for it)."""

    def __init__(self, execution_id: int, attempt: int, *, worker: str = "") -> None:
        self.path = (
            _runs_root() / f"execution-{execution_id}-attempt-{attempt}{'-' + worker if worker else ''}"
        )
        self._lease: int | None = None

    def __enter__(self) -> Path:
        root = _runs_root()
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".new-", dir=root))
        lease = os.open(staging / LEASE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(lease, fcntl.LOCK_EX)
        (staging / "tmp").mkdir()
        if self.path.exists() and not _remove_if_unused(self.path):
            os.close(lease)
            shutil.rmtree(staging, ignore_errors=True)
            raise FileExistsError(f"{self.path} is in use by another process")
        staging.rename(self.path)
        self._lease = lease
        return self.path

    def __exit__(self, *exc_info) -> None:
        self.release()

    def release(self) -> None:
        """Remove the folder (everything in it is stored or was scratch) and give up the lease."""
        if self._lease is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._lease)
        self._lease = None


def _remove_if_unused(folder: Path) -> bool:
    """Remove an attempt folder whose owner is gone (its lease can be locked); False while it lives."""
    try:
        lease = os.open(folder / LEASE, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        # Made by a process that died before it locked the lease (or an older version's folder).
        if time.time() - folder.lstat().st_mtime < STAGING_GRACE_S:
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True
    try:
        fcntl.flock(lease, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        shutil.rmtree(folder, ignore_errors=True)
        return True
    finally:
        os.close(lease)


def work_cache_prune(*, unused_days: float) -> int:
    """Remove the attempt folders no live process holds, then (unless `unused_days` is 0) the cache
    files unused for `unused_days` and the folders they leave empty; returns how many cache files
    went. Safe beside any number of renders on this host."""
    runs = _runs_root()
    if runs.is_dir():
        for folder in runs.iterdir():
            with contextlib.suppress(FileNotFoundError):  # renamed or removed meanwhile
                if _remove_if_unused(folder):
                    logger.info("work folder %s removed: its process is gone", folder.name)
    if unused_days <= 0:
        return 0
    cutoff = time.time() - unused_days * 86400
    removed = 0
    root = Path(settings.WORK_ROOT)
    keep = {root, runs, cache_root(), *(cache_root().iterdir() if cache_root().is_dir() else [])}
    for folder, _folders, files in os.walk(root, topdown=False):
        if Path(folder) == runs or runs in Path(folder).parents:
            continue
        for name in files:
            path = Path(folder) / name
            with contextlib.suppress(FileNotFoundError):  # another worker pruned it first
                if _unused_since(path, cutoff):
                    path.unlink()
                    removed += 1
        if Path(folder) not in keep:
            with contextlib.suppress(OSError):
                Path(folder).rmdir()  # only when empty: a folder a writer has a file in stays
    return removed


def _unused_since(path: Path, cutoff: float) -> bool:
    stat = path.stat()
    return max(stat.st_mtime, stat.st_atime) < cutoff
