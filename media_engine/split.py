"""Segments of a narration: runs of whole sentences, each about one picture long.

The segments tile the narration (each one ends where the next starts, the first starts
at 0 and the last ends with the narration), so the pictures cover every frame.
Boundaries fall in the middle of the pause between two sentences, where a cut to the
next picture is least noticeable.

A storyboard, once made, is kept: `carry_over` lays the previous segments (each a list of
sentence texts) on a new narration, and only `group_segments` (the first render, or a re-split
the operator asks for) groups from scratch.
"""

import itertools
from dataclasses import dataclass
from difflib import SequenceMatcher

from .errors import MediaError
from .sentences import TimedSentence, is_cjk


@dataclass(frozen=True)
class Segment:
    index: int
    start_ms: int
    end_ms: int
    text: str
    sentence_indexes: list[int]
    origin: int | None = None  # the index of the previous segment this one continues, if any


def cut_points(sentences: list[TimedSentence], *, duration_ms: int) -> list[int]:
    """Where a segment ending with sentence i ends: the middle of the pause before sentence i + 1
    (the end of the narration after the last sentence)."""
    if duration_ms < sentences[-1].end_ms:
        raise MediaError(
            f"the narration ({duration_ms} ms) ends before its last sentence ({sentences[-1].end_ms} ms)"
        )
    cuts = [
        (current.end_ms + following.start_ms) // 2 for current, following in itertools.pairwise(sentences)
    ]
    cuts.append(duration_ms)
    return cuts


def group_segments(
    sentences: list[TimedSentence], *, duration_ms: int, target_ms: int = 5000
) -> list[Segment]:
    """Consecutive sentences grouped greedily into segments close to `target_ms` long."""
    if not sentences:
        return []
    _check_target(target_ms)
    cuts = cut_points(sentences, duration_ms=duration_ms)
    groups = _group(cuts, 0, len(sentences) - 1, target_ms)
    return _segments(sentences, cuts, [(None, group) for group in groups])


def carry_over(
    previous: list[list[str]], sentences: list[TimedSentence], *, duration_ms: int, target_ms: int = 5000
) -> list[Segment]:
    """The previous storyboard's segments (each a list of sentence texts) laid on a new narration.

    Old and new sentences are matched with difflib; a sentence edited in place counts as the same
    sentence. Every previous segment with a sentence left continues (its `origin`), with its
    sentences as they are now; a new sentence inside a previous segment joins it, new sentences
    between segments (or before the first, after the last) form new segments grouped to
    `target_ms`; a segment whose sentences all went is gone.
    """
    if not sentences:
        return []
    _check_target(target_ms)
    old_texts = [text for run in previous for text in run]
    owner_of = [number for number, run in enumerate(previous) for _text in run]
    owners: list[int | None] = [None] * len(sentences)
    matcher = SequenceMatcher(a=old_texts, b=[sentence.text for sentence in sentences], autojunk=False)
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        paired = min(old_end - old_start, new_end - new_start) if tag in ("equal", "replace") else 0
        for offset in range(paired):
            owners[new_start + offset] = owner_of[old_start + offset]
        # The new sentences left over lie between old sentences gap - 1 and gap.
        gap = old_start + paired
        before = owner_of[gap - 1] if gap > 0 else None
        after = owner_of[gap] if gap < len(owner_of) else None
        for position in range(new_start + paired, new_end):
            owners[position] = before if before is not None and before == after else None

    # A segment continues as one run, in the old order; what breaks that (sentences moved
    # around) becomes new segments.
    runs: list[tuple[int | None, list[int]]] = []
    last_owner = -1
    for position, owner in enumerate(owners):
        if owner is not None and owner == last_owner and runs[-1][0] == owner:
            runs[-1][1].append(position)
            continue
        if owner is not None and owner > last_owner:
            runs.append((owner, [position]))
            last_owner = owner
            continue
        if runs and runs[-1][0] is None:
            runs[-1][1].append(position)
        else:
            runs.append((None, [position]))

    cuts = cut_points(sentences, duration_ms=duration_ms)
    groups: list[tuple[int | None, list[int]]] = []
    for owner, positions in runs:
        if owner is not None:
            groups.append((owner, positions))
        else:
            groups.extend((None, group) for group in _group(cuts, positions[0], positions[-1], target_ms))
    return _segments(sentences, cuts, groups)


def resplit(
    previous: list[list[str]], sentences: list[TimedSentence], *, duration_ms: int, target_ms: int = 5000
) -> list[Segment]:
    """Segments grouped from scratch; one whose exact run of sentences was a previous segment
    continues it (its `origin`)."""
    segments = group_segments(sentences, duration_ms=duration_ms, target_ms=target_ms)
    unused = list(enumerate(previous))
    kept = []
    for segment in segments:
        texts = [sentences[i].text for i in segment.sentence_indexes]
        match = next((place for place, (_number, run) in enumerate(unused) if run == texts), None)
        origin = None
        if match is not None:
            origin = unused[match][0]
            del unused[: match + 1]  # segments keep their order
        kept.append(
            Segment(
                index=segment.index,
                start_ms=segment.start_ms,
                end_ms=segment.end_ms,
                text=segment.text,
                sentence_indexes=segment.sentence_indexes,
                origin=origin,
            )
        )
    return kept


def join_texts(texts: list[str]) -> str:
    """Sentences as one text: Chinese and Japanese join without a space; Latin ones need one."""
    joined = ""
    for text in texts:
        if joined and text and not (is_cjk(joined[-1]) or is_cjk(text[0])):
            joined += " "
        joined += text
    return joined


def _check_target(target_ms: int) -> None:
    if target_ms <= 0:
        raise MediaError(f"target_ms must be positive, got {target_ms}")


def _group(cuts: list[int], first: int, last: int, target_ms: int) -> list[list[int]]:
    """Sentences first..last (a run that starts where sentence first - 1 was cut) grouped greedily."""

    def start_of(index: int) -> int:
        return cuts[index - 1] if index else 0

    groups: list[list[int]] = [[first]]
    group_start = start_of(first)
    for index in range(first + 1, last + 1):
        length_now = cuts[index - 1] - group_start
        length_with_next = cuts[index] - group_start
        # Close the group when taking the next sentence would move it further from the target.
        if abs(length_with_next - target_ms) > abs(length_now - target_ms):
            groups.append([index])
            group_start = cuts[index - 1]
        else:
            groups[-1].append(index)

    # A short remainder at the end is better merged than shown as a flash of a picture.
    if len(groups) > 1:
        previous_ms = cuts[groups[-2][-1]] - start_of(groups[-2][0])
        tail_ms = cuts[last] - cuts[groups[-2][-1]]
        if abs(previous_ms + tail_ms - target_ms) < abs(previous_ms - target_ms) + abs(tail_ms - target_ms):
            groups[-2].extend(groups.pop())
    return groups


def _segments(
    sentences: list[TimedSentence], cuts: list[int], groups: list[tuple[int | None, list[int]]]
) -> list[Segment]:
    segments: list[Segment] = []
    start_ms = 0
    for index, (origin, group) in enumerate(groups):
        end_ms = cuts[group[-1]]
        text = join_texts([sentences[i].text for i in group])
        segments.append(
            Segment(
                index=index,
                start_ms=start_ms,
                end_ms=end_ms,
                text=text,
                sentence_indexes=group,
                origin=origin,
            )
        )
        start_ms = end_ms
    return segments
