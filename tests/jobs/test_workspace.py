"""A worker's disk is only a cache: files unused for WORK_CACHE_DAYS go, whatever the storage keeps."""

import os
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs import files

DAY_S = 86400


def make_file(root: Path, relative: str, *, age_days: float) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    then = time.time() - age_days * DAY_S
    os.utime(path, (then, then))
    return path


def test_prune_deletes_files_unused_for_the_given_days_and_empty_folders(settings, tmp_path):
    settings.WORK_ROOT = tmp_path
    stale_copy = make_file(tmp_path, "cache/jobs/1/2/video.mp4", age_days=8)
    stale_sentence = make_file(tmp_path, "job-2/narration/sentences/a.wav", age_days=30)
    fresh_sentence = make_file(tmp_path, "job-1/narration/sentences/b.wav", age_days=6)
    fresh_copy = make_file(tmp_path, "cache/jobs/1/logo.png", age_days=0)

    assert files.work_cache_prune(unused_days=7) == 2

    assert not stale_copy.exists() and not stale_sentence.exists()
    assert fresh_sentence.exists() and fresh_copy.exists()
    assert not (tmp_path / "job-2").exists() and not (tmp_path / "cache/jobs/1/2").exists()
    assert tmp_path.exists()


def test_prune_with_zero_days_keeps_everything(settings, tmp_path):
    settings.WORK_ROOT = tmp_path
    old = make_file(tmp_path, "cache/old.bin", age_days=365)
    assert files.work_cache_prune(unused_days=0) == 0
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
    assert files.work_cache_prune(unused_days=7) == 0
    assert copy.exists()
