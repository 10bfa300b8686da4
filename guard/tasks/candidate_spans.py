"""Where a judge request shows its candidates. ``guard.candidates`` are the responses as shown,
in order, but a short one ("4", "C") can also stand in the question before them ("Is 4 the
answer?") or in the instruction after them ("Answer A or B."). Occurrences are ranked by how
much they look like a shown response: a segment of its own (after a line start, a ``:`` or an
opening quote, bracket or tag; before a line end or a closing one: ``Response A: 4``), else a
word of its own (not "A" inside "Answer"), else anywhere. At the best rank where every candidate
has a place in order, the tightest placement is taken (the responses are shown together; on a
tie, the later one)."""

from __future__ import annotations

import bisect

_OPENS = "\n:\"'\u201c\u2018([{<>"  # and the curly opening quotes
_CLOSES = "\n\"'\u201d\u2019)]}<>"  # and the curly closing quotes


def _rank(text: str, at: int, end: int, cand: str) -> int:
    """2: a segment of its own; 1: a word of its own; 0: inside a longer word."""
    before = text[:at].rstrip(" \t")
    after = text[end:].lstrip(" \t")
    if (not before or before[-1] in _OPENS) and (not after or after[0] in _CLOSES):
        return 2
    inside = (cand[0].isalnum() and at > 0 and text[at - 1].isalnum()) or (
        cand[-1].isalnum() and end < len(text) and text[end].isalnum()
    )
    return 0 if inside else 1


def _occurrences(text: str, cand: str, rank: int) -> list[int]:
    """Start of every occurrence of ``cand`` (overlapping too) ranked ``rank`` or better."""
    out, at = [], text.find(cand)
    while at >= 0:
        if _rank(text, at, at + len(cand), cand) >= rank:
            out.append(at)
        at = text.find(cand, at + 1)
    return out


def _tightest(text: str, candidates: list[str], rank: int) -> list[tuple[int, int]] | None:
    occ = [_occurrences(text, c, rank) for c in candidates]
    best: tuple[int, int, list[tuple[int, int]]] | None = None  # (width, -end, spans)
    for last in occ[-1]:
        spans = [(last, last + len(candidates[-1]))]
        for i in range(len(candidates) - 2, -1, -1):  # each one the latest that ends in time
            starts = occ[i]
            j = bisect.bisect_right(starts, spans[-1][0] - len(candidates[i])) - 1
            if j < 0:
                break
            spans.append((starts[j], starts[j] + len(candidates[i])))
        else:
            spans.reverse()
            key = (spans[-1][1] - spans[0][0], -spans[-1][1])
            if best is None or key <= best[:2]:
                best = (*key, spans)
    return None if best is None else best[2]


def candidate_spans(text: str, candidates: list[str]) -> list[tuple[int, int]] | None:
    """(start, end) of each candidate where it is shown, in order; None: not all in order."""
    if any(not c for c in candidates):
        return None
    for rank in (2, 1, 0):
        if (spans := _tightest(text, candidates, rank)) is not None:
            return spans
    return None
