"""A host's work folder: one leased folder per attempt, and a shared cache whose files go when unused
for WORK_CACHE_DAYS. The prune must never touch what a live process (this one or another worker on
the host, running or paused) uses."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs import files
from jobs.render import workspace
from jobs.render.workspace import AttemptFolder, work_cache_prune

DAY_S = 86400


def make_file(root: Path, relative: str, *, age_days: float) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    then = time.time() - age_days * DAY_S
    os.utime(path, (then, then))
    return path


def other_worker(work_root: Path, execution_id: int) -> subprocess.Popen:
    """Another process on this host holding an attempt folder, as a worker rendering does; it prints
    the folder once it holds it, then sleeps."""
    code = textwrap.dedent(f"""
        import django, os, time
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchvideo.settings")
        django.setup()
        from django.conf import settings
        settings.WORK_ROOT = {str(work_root)!r}
        from jobs.render.workspace import AttemptFolder
        with AttemptFolder({execution_id}, 1) as folder:
            (folder / "tmp" / "part.wav").write_bytes(b"x")
            print(folder, flush=True)
            time.sleep(600)
    """)
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert Path(process.stdout.readline().strip()).is_dir()
    return process


def test_prune_deletes_cache_files_unused_for_the_given_days_and_the_folders_they_empty(settings, tmp_path):
    settings.WORK_ROOT = tmp_path
    stale_copy = make_file(tmp_path, "cache/jobs/1/2/video.mp4", age_days=8)
    stale_sentence = make_file(tmp_path, "cache/sentences/a.wav", age_days=30)
    fresh_sentence = make_file(tmp_path, "cache/sentences/b.wav", age_days=6)
    fresh_copy = make_file(tmp_path, "cache/jobs/1/logo.png", age_days=0)

    assert work_cache_prune(unused_days=7) == 2

    assert not stale_copy.exists() and not stale_sentence.exists()
    assert fresh_sentence.exists() and fresh_copy.exists()
    assert not (tmp_path / "cache/jobs/1/2").exists()
    # The cache's own top folders stay even when empty: a writer may be about to create a file there.
    make_file(tmp_path, "cache/chunks/old.mp4", age_days=30)
    work_cache_prune(unused_days=7)
    assert (tmp_path / "cache/chunks").is_dir() and tmp_path.exists()


def test_prune_with_zero_days_keeps_every_cache_file(settings, tmp_path):
    settings.WORK_ROOT = tmp_path
    old = make_file(tmp_path, "cache/old.bin", age_days=365)
    assert work_cache_prune(unused_days=0) == 0
    assert old.exists()


@pytest.mark.django_db
def test_a_reused_copy_counts_as_used_and_keeps_its_modification_time(settings, tmp_path):
    settings.WORK_ROOT = tmp_path / "work"
    key = default_storage.save("jobs/1/logo.png", ContentFile(b"x"))
    copy = make_file(settings.WORK_ROOT, f"cache/{key}", age_days=10)
    written = copy.stat().st_mtime_ns

    assert files.fetch(key) == copy

    assert time.time() - copy.stat().st_atime < 60
    # compose remembers content hashes and probes by size and modification time: a reuse keeps them.
    assert copy.stat().st_mtime_ns == written
    assert work_cache_prune(unused_days=7) == 0
    assert copy.exists()


def test_prune_keeps_an_empty_attempt_folder_of_a_live_process_however_old(settings, tmp_path):
    """A takeover reuses earlier steps, so its attempt folder is empty during compose: the prune of
    another worker on the host removed it under the render."""
    settings.WORK_ROOT = tmp_path
    with AttemptFolder(7, 2) as folder:
        (folder / "tmp").rmdir()
        old = time.time() - 30 * DAY_S
        os.utime(folder, (old, old))

        work_cache_prune(unused_days=7)

        assert folder.is_dir()
        (folder / "video.mp4").write_bytes(b"still writable")
    assert not folder.exists()  # released: the owner removes its own folder


def test_prune_keeps_the_folder_of_another_live_worker_and_removes_it_once_that_worker_is_killed(
    settings,
    tmp_path,
):
    settings.WORK_ROOT = tmp_path
    worker = other_worker(tmp_path, 11)
    folder = tmp_path / "runs" / "execution-11-attempt-1"
    try:
        assert work_cache_prune(unused_days=7) == 0
        assert (folder / "tmp" / "part.wav").exists()

        worker.send_signal(signal.SIGSTOP)  # a paused worker still holds its folder
        work_cache_prune(unused_days=7)
        assert (folder / "tmp" / "part.wav").exists()
        worker.send_signal(signal.SIGCONT)

        worker.kill()  # kill -9: no clean-up of its own
        worker.wait(10)
        assert folder.exists()
        work_cache_prune(unused_days=0)  # the next start's tidy-up
        assert not folder.exists()
    finally:
        worker.kill()
        worker.wait(10)


def test_an_attempt_folder_is_never_taken_from_a_live_owner(settings, tmp_path):
    settings.WORK_ROOT = tmp_path
    worker = other_worker(tmp_path, 12)
    try:
        with pytest.raises(FileExistsError, match="in use by another process"):
            AttemptFolder(12, 1).__enter__()
        assert (tmp_path / "runs" / "execution-12-attempt-1" / "tmp" / "part.wav").exists()
    finally:
        worker.kill()
        worker.wait(10)
    with AttemptFolder(12, 1) as folder:  # its owner is gone: the folder is made anew
        assert not (folder / "tmp" / "part.wav").exists()


def test_a_folder_still_being_made_is_left_alone_until_it_is_old(settings, tmp_path):
    settings.WORK_ROOT = tmp_path
    staging = tmp_path / "runs" / ".new-abc"
    staging.mkdir(parents=True)
    work_cache_prune(unused_days=0)
    assert staging.exists()
    old = time.time() - workspace.STAGING_GRACE_S - 10
    os.utime(staging, (old, old))
    work_cache_prune(unused_days=0)
    assert not staging.exists()
