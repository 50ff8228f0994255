"""Pick real clips (landscape, animals, ...) for a share of segments, so a video is not pure AI.

Placement is random but reproducible (`random.Random(seed)`): the same job re-rendered gets
the same clips in the same places.
"""

import random
from collections import Counter
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
) -> dict[int, int]:
    """Segment index -> clip id for round(ratio * segment_count) segments chosen at random.

    Clips sharing a tag with `wanted_tags` are preferred; any clip is used when none match
    (or when the matching ones would repeat a neighbour). Two neighbouring segments never
    get the same clip, and the least-used clips go first, so a small library still varies.
    With a single clip, no two chosen segments may be neighbours, so at most
    ceil(segment_count / 2) segments get it: the result can then hold fewer than asked.
    """
    if not 0 <= ratio <= 1:
        raise MediaError(f"clip ratio must be between 0 and 1, got {ratio}")
    if segment_count < 0:
        raise MediaError(f"segment count must not be negative, got {segment_count}")
    library = list({clip.id: clip for clip in clips}.values())  # one entry per clip id
    wanted = round(ratio * segment_count)
    if not library or wanted == 0:
        return {}
    rng = random.Random(seed)
    if len(library) == 1:
        segments = _non_adjacent(segment_count, wanted, rng)
    else:
        segments = sorted(rng.sample(range(segment_count), wanted))
    preferred = [clip for clip in library if clip.tags & set(wanted_tags)]
    uses: Counter[int] = Counter()
    assignment: dict[int, int] = {}
    for segment in segments:
        # Going left to right, only the left neighbour is already decided; the right one
        # will in turn avoid this segment's clip.
        taken = assignment.get(segment - 1)
        options = [c for c in preferred if c.id != taken] or [c for c in library if c.id != taken]
        fewest = min(uses[clip.id] for clip in options)
        clip = rng.choice([c for c in options if uses[c.id] == fewest])
        assignment[segment] = clip.id
        uses[clip.id] += 1
    return assignment


def _non_adjacent(segment_count: int, wanted: int, rng: random.Random) -> list[int]:
    """Up to `wanted` random segments, no two of them neighbours."""
    order = list(range(segment_count))
    rng.shuffle(order)
    chosen: set[int] = set()
    for segment in order:
        if len(chosen) == wanted:
            break
        if segment - 1 not in chosen and segment + 1 not in chosen:
            chosen.add(segment)
    return sorted(chosen)
