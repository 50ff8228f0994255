"""`manage.py benchmark rerender` on a short job: the shape of its last line and frames kept outside edits."""

import io
import re

import pytest
from django.core.management import call_command

from accounts.models import Account
from jobs.benchmarks.rerender import KARAOKE_CHANNEL, TITLE
from jobs.maintenance.cleanup import storage_walk
from jobs.models import Job

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

LINE = re.compile(
    r"full_s=(\d+\.\d\d) picture_s=(\d+\.\d\d) picture_ratio=(\d+\.\d{3}) sentence_s=(\d+\.\d\d) "
    r"sentence_ratio=(\d+\.\d{3}) preview_s=(\d+\.\d\d) identical_outside=(true|false)"
)


@pytest.mark.parametrize("karaoke", [False, True], ids=["plain", "karaoke"])
def test_rerender_benchmark_prints_its_figures_and_keeps_the_frames_outside_each_edit(karaoke):
    """With karaoke captions too: their word events lie on frames, so after the sentence edit the later
    frames are the previous ones moved by whole frames (and their chunks are reused)."""
    chunks_before = list(storage_walk("chunks"))
    out = io.StringIO()
    call_command("benchmark", "rerender", "--minutes", "0.4", *(["--karaoke"] if karaoke else []), stdout=out)
    lines = out.getvalue().strip().splitlines()
    match = LINE.fullmatch(lines[-1])
    assert match, lines[-1]
    full_s, picture_s, picture_ratio, sentence_s, sentence_ratio, preview_s = map(float, match.groups()[:6])
    assert match.group(7) == "true"
    assert full_s > 0 and preview_s > 0
    assert picture_ratio == pytest.approx(picture_s / full_s, abs=0.002)
    assert sentence_ratio == pytest.approx(sentence_s / full_s, abs=0.002)
    # The details line: a picture change remade its piece and the transitions around it (at most 3 of
    # the video's chunks, the audio reused); the sentence edit its own and the audio.
    details = re.search(r"chunks made: picture (\d+)/(\d+), sentence (\d+)/(\d+)", lines[-2])
    assert details, lines[-2]
    # Playback across the joins of the full render: every frame once, in order, sound and picture together.
    playback = dict(re.findall(r"(frames|expected_frames|continuous|av_drift_ms)=(\S+)", lines[-2]))
    assert playback["frames"] == playback["expected_frames"] and playback["continuous"] == "True"
    assert float(playback["av_drift_ms"]) < 1000 / 30
    assert 1 <= int(details.group(1)) <= 3 < int(details.group(2))
    assert 2 <= int(details.group(3)) < int(details.group(4))
    assert f"karaoke={str(karaoke).lower()}" in lines[-2]
    # It leaves nothing behind.
    assert not Job.objects.filter(title=TITLE).exists()
    assert not Account.objects.filter(username=KARAOKE_CHANNEL).exists()
    assert list(storage_walk("chunks")) == chunks_before


def test_rerender_benchmark_refuses_a_length_out_of_range():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--minutes"):
        call_command("benchmark", "rerender", "--minutes", "0")
