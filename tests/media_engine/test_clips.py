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
    ("segments", "ratio"),
    [(10, 0.3), (10, 0.0), (10, 1.0), (7, 0.5), (1, 1.0), (25, 0.2)],
)
def test_ratio_of_segments_get_clips_each_clip_once(segments, ratio):
    assignment = assign_clips(segments, ratio=ratio, clips=LIBRARY, seed=3)
    assert len(assignment) == min(round(ratio * segments), len(LIBRARY))
    assert all(0 <= segment < segments for segment in assignment)
    assert set(assignment.values()) <= {clip.id for clip in LIBRARY}
    assert len(set(assignment.values())) == len(assignment)  # never twice in one video


def test_a_clip_never_repeats_over_many_seeds():
    for seed in range(300):
        for clips in (LIBRARY, LIBRARY[:2], LIBRARY[:1]):
            assignment = assign_clips(12, ratio=1.0, clips=clips, seed=seed)
            assert len(assignment) == len(clips)
            assert len(set(assignment.values())) == len(assignment), (seed, assignment)
            assert not neighbours_repeat(assignment)


def test_same_seed_same_assignment_and_seeds_vary_placement():
    first = assign_clips(20, ratio=0.2, clips=LIBRARY, seed=42)
    assert assign_clips(20, ratio=0.2, clips=LIBRARY, seed=42) == first
    placements = {tuple(sorted(assign_clips(20, ratio=0.2, clips=LIBRARY, seed=seed))) for seed in range(20)}
    assert len(placements) > 10


def test_clips_with_wanted_tags_are_preferred():
    for seed in range(50):
        assignment = assign_clips(10, ratio=0.2, clips=LIBRARY, seed=seed, wanted_tags={"landscape"})
        assert set(assignment.values()) == {1, 3}


def test_wanted_tags_fall_back_to_any_clip():
    assignment = assign_clips(10, ratio=0.3, clips=LIBRARY, seed=5, wanted_tags={"volcano"})
    assert len(assignment) == 3
    crowded = assign_clips(6, ratio=1.0, clips=LIBRARY, seed=5, wanted_tags={"cat"})
    assert len(crowded) == 4 and 2 in crowded.values()


def test_the_segments_a_clip_fits_get_it_over_random_ones():
    # Segment 3 is about cats, segment 7 about the sea: they get those clips, whatever the seed.
    scores = {3: {2: 0.6, 4: 0.1}, 7: {3: 0.4, 1: 0.2}}
    for seed in range(50):
        assignment = assign_clips(10, ratio=0.2, clips=LIBRARY, seed=seed, scores=scores)
        assert assignment == {3: 2, 7: 3}
    # The strongest fit is served first; a segment whose best clip is taken gets its next best.
    contested = {0: {1: 0.9}, 5: {1: 0.5, 4: 0.3}}
    assert assign_clips(6, ratio=2 / 6, clips=LIBRARY, seed=1, scores=contested) == {0: 1, 5: 4}
    # Scores of clips outside the library, or of no fit, place nothing by themselves.
    assert len(assign_clips(10, ratio=0.1, clips=LIBRARY, seed=1, scores={2: {99: 1.0}, 4: {1: 0.0}})) == 1


def test_no_clips_means_no_assignment():
    assert assign_clips(10, ratio=0.5, clips=[], seed=1) == {}
    assert assign_clips(0, ratio=0.5, clips=LIBRARY, seed=1) == {}


@pytest.mark.parametrize("ratio", [-0.1, 1.01, 2])
def test_ratio_outside_zero_to_one_is_an_error(ratio):
    with pytest.raises(MediaError, match="ratio"):
        assign_clips(10, ratio=ratio, clips=LIBRARY, seed=1)
