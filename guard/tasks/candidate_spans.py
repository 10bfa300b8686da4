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
    """2: a segment of its own; 1: a word of its own; 0: inside a longer word. Reads only the
    characters around the occurrence (a slice of the text before it, per occurrence, made a
    large prompt with many occurrences quadratic)."""
    b, e = at, end
    while b > 0 and text[b - 1] in " \t":
        b -= 1
    while e < len(text) and text[e] in " \t":
        e += 1
    if (b == 0 or text[b - 1] in _OPENS) and (e == len(text) or text[e] in _CLOSES):
        return 2
    inside = (cand[0].isalnum() and at > 0 and text[at - 1].isalnum()) or (
        cand[-1].isalnum() and end < len(text) and text[end].isalnum()
    )
    return 0 if inside else 1


def _occurrences(text: str, cand: str) -> list[tuple[int, int]]:
    """(start, rank) of every occurrence of ``cand`` (overlapping too)."""
    out, at = [], text.find(cand)
    while at >= 0:
        out.append((at, _rank(text, at, at + len(cand), cand)))
        at = text.find(cand, at + 1)
    return out


def _tightest(candidates: list[str], occ: list[list[int]]) -> list[tuple[int, int]] | None:
    """The tightest placement in order of ``candidates`` at the starts ``occ`` (each sorted)."""
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
    found = [_occurrences(text, c) for c in candidates]  # each rank once, not once per level
    for rank in (2, 1, 0):
        occ = [[at for at, r in places if r >= rank] for places in found]
        if (spans := _tightest(candidates, occ)) is not None:
            return spans
    return None
