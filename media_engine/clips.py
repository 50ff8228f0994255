"""Pick real clips (landscape, animals, ...) for a share of segments, so a video is not pure AI.

Segments whose keywords a clip fits best get clips first, each the best-fitting clip not used yet; the
rest of the share is placed at random, reproducibly (`random.Random(seed)`): the same job re-rendered
gets the same clips in the same places. A clip never shows twice in one video.
"""

import random
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import MediaError


@dataclass(frozen=True)
class ClipChoice:
    id: int
    duration_ms: int
    tags: frozenset[str]


def assign_clips(
    segment_count: int,
    *,
    ratio: float,
    clips: list[ClipChoice],
    seed: int,
    wanted_tags: set[str] = frozenset(),
    scores: Mapping[int, Mapping[int, float]] | None = None,
) -> dict[int, int]:
    """Segment index -> clip id for round(ratio * segment_count) segments, no clip twice.

    `scores` (segment -> {clip id: how well it fits}) ranks the segments by their best-fitting clip:
    those get clips first, strongest fit first, each its best clip still free. The rest of the share
    goes to random segments, with clips sharing a tag with `wanted_tags` preferred. A library smaller
    than the share fills fewer segments, as a clip never repeats within a video.
    """
    if not 0 <= ratio <= 1:
        raise MediaError(f"clip ratio must be between 0 and 1, got {ratio}")
    if segment_count < 0:
        raise MediaError(f"segment count must not be negative, got {segment_count}")
    library = list({clip.id: clip for clip in clips}.values())  # one entry per clip id
    ids = {clip.id for clip in library}
    wanted = min(round(ratio * segment_count), len(library))
    if wanted == 0:
        return {}
    rng = random.Random(seed)
    fits = {
        segment: {
            clip_id: score
            for clip_id, score in (scores or {}).get(segment, {}).items()
            if clip_id in ids and score > 0
        }
        for segment in range(segment_count)
    }
    order = list(range(segment_count))
    rng.shuffle(order)  # ties in random order; sorted() keeps it
    order.sort(key=lambda segment: -max(fits[segment].values(), default=0.0))
    used: set[int] = set()
    assignment: dict[int, int] = {}
    for segment in order[:wanted]:
        free_fits = {clip_id: score for clip_id, score in fits[segment].items() if clip_id not in used}
        if free_fits:
            clip_id = max(free_fits, key=lambda clip_id: (free_fits[clip_id], -clip_id))
        else:
            free = [clip for clip in library if clip.id not in used]
            clip_id = rng.choice([clip for clip in free if clip.tags & set(wanted_tags)] or free).id
        assignment[segment] = clip_id
        used.add(clip_id)
    return dict(sorted(assignment.items()))
