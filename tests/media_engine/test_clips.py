import math

import pytest

from media_engine.clips import ClipChoice, assign_clips
from media_engine.errors import MediaError

LIBRARY = [
    ClipChoice(id=1, duration_ms=4000, tags=frozenset({"landscape", "mountain"})),
    ClipChoice(id=2, duration_ms=6000, tags=frozenset({"animal", "cat"})),
    ClipChoice(id=3, duration_ms=3000, tags=frozenset({"landscape", "sea"})),
    ClipChoice(id=4, duration_ms=8000, tags=frozenset({"city"})),
]


def neighbours_repeat(assignment: dict[int, int]) -> bool:
    return any(assignment.get(segment + 1) == clip for segment, clip in assignment.items())


@pytest.mark.parametrize(
    ("segments", "ratio"), [(10, 0.3), (10, 0.0), (10, 1.0), (7, 0.5), (1, 1.0), (25, 0.2)],
)
def test_ratio_of_segments_get_clips(segments, ratio):
    assignment = assign_clips(segments, ratio=ratio, clips=LIBRARY, seed=3)
    assert len(assignment) == round(ratio * segments)
    assert all(0 <= segment < segments for segment in assignment)
    assert set(assignment.values()) <= {clip.id for clip in LIBRARY}


def test_neighbouring_segments_never_share_a_clip_over_many_seeds():
    for seed in range(300):
        for clips in (LIBRARY, LIBRARY[:2]):
            assignment = assign_clips(12, ratio=1.0, clips=clips, seed=seed)
            assert len(assignment) == 12
            assert not neighbours_repeat(assignment), (seed, assignment)


def test_single_clip_skips_neighbours_and_may_place_fewer():
    only = [LIBRARY[0]]
    for seed in range(100):
        assignment = assign_clips(9, ratio=1.0, clips=only, seed=seed)
        assert not neighbours_repeat(assignment)
        assert 1 <= len(assignment) <= math.ceil(9 / 2)
    # A low ratio still gets exactly what it asks for.
    assert len(assign_clips(10, ratio=0.3, clips=only, seed=1)) == 3


def test_same_seed_same_assignment_and_seeds_vary_placement():
    first = assign_clips(20, ratio=0.4, clips=LIBRARY, seed=42)
    assert assign_clips(20, ratio=0.4, clips=LIBRARY, seed=42) == first
    placements = {tuple(sorted(assign_clips(20, ratio=0.4, clips=LIBRARY, seed=seed))) for seed in range(20)}
    assert len(placements) > 10


def test_clips_with_wanted_tags_are_preferred():
    for seed in range(50):
        assignment = assign_clips(10, ratio=0.3, clips=LIBRARY, seed=seed, wanted_tags={"landscape"})
        assert set(assignment.values()) <= {1, 3}


def test_wanted_tags_fall_back_to_any_clip():
    assignment = assign_clips(10, ratio=0.5, clips=LIBRARY, seed=5, wanted_tags={"volcano"})
    assert len(assignment) == 5
    # A single matching clip cannot fill neighbours: another clip steps in, never a repeat.
    crowded = assign_clips(6, ratio=1.0, clips=LIBRARY, seed=5, wanted_tags={"cat"})
    assert len(crowded) == 6
    assert not neighbours_repeat(crowded)
    assert list(crowded.values()).count(2) >= 3


def test_no_clips_means_no_assignment():
    assert assign_clips(10, ratio=0.5, clips=[], seed=1) == {}
    assert assign_clips(0, ratio=0.5, clips=LIBRARY, seed=1) == {}


@pytest.mark.parametrize("ratio", [-0.1, 1.01, 2])
def test_ratio_outside_zero_to_one_is_an_error(ratio):
    with pytest.raises(MediaError, match="ratio"):
        assign_clips(10, ratio=ratio, clips=LIBRARY, seed=1)
