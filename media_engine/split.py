"""Segments of a narration: runs of whole sentences, each about one picture long.

The segments tile the narration (each one ends where the next starts, the first starts
at 0 and the last ends with the narration), so the pictures cover every frame.
Boundaries fall in the middle of the pause between two sentences, where a cut to the
next picture is least noticeable.
"""

from dataclasses import dataclass

from .errors import MediaError
from .sentences import TimedSentence, is_cjk


@dataclass(frozen=True)
class Segment:
    index: int
    start_ms: int
    end_ms: int
    text: str
    sentence_indexes: list[int]


def group_segments(
    sentences: list[TimedSentence], *, duration_ms: int, target_ms: int = 5000
) -> list[Segment]:
    """Consecutive sentences grouped greedily into segments close to `target_ms` long."""
    if not sentences:
        return []
    if target_ms <= 0:
        raise MediaError(f"target_ms must be positive, got {target_ms}")
    if duration_ms < sentences[-1].end_ms:
        raise MediaError(
            f"the narration ({duration_ms} ms) ends before its last sentence ({sentences[-1].end_ms} ms)"
        )

    # Where a cut may go after sentence i: the middle of the pause before sentence i + 1.
    cut_after = [(current.end_ms + following.start_ms) // 2 
                 for current, following in zip(sentences, sentences[1:])]
    cut_after.append(duration_ms)

    groups: list[list[int]] = [[0]]
    group_start = 0
    for index in range(1, len(sentences)):
        length_now = cut_after[index - 1] - group_start
        length_with_next = cut_after[index] - group_start
        # Close the group when taking the next sentence would move it further from the target.
        if abs(length_with_next - target_ms) > abs(length_now - target_ms):
            groups.append([index])
            group_start = cut_after[index - 1]
        else:
            groups[-1].append(index)

    # A short remainder at the end is better merged than shown as a flash of a picture.
    if len(groups) > 1:
        last_start = cut_after[groups[-2][0] - 1] if groups[-2][0] else 0
        previous_ms = cut_after[groups[-2][-1]] - last_start
        tail_ms = duration_ms - cut_after[groups[-2][-1]]
        if abs(previous_ms + tail_ms - target_ms) < abs(previous_ms - target_ms) + abs(tail_ms - target_ms):
            groups[-2].extend(groups.pop())

    segments: list[Segment] = []
    start_ms = 0
    for index, group in enumerate(groups):
        end_ms = cut_after[group[-1]]
        text = _join_texts([sentences[i].text for i in group])
        segments.append(
            Segment(index=index, start_ms=start_ms, end_ms=end_ms, text=text, sentence_indexes=group)
        )
        start_ms = end_ms
    return segments


def _join_texts(texts: list[str]) -> str:
    # Chinese and Japanese sentences join without a space; Latin ones need one.
    joined = ""
    for text in texts:
        if joined and not (is_cjk(joined[-1]) or is_cjk(text[0])):
            joined += " "
        joined += text
    return joined
