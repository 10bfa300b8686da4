"""Shared machinery for policies that find spans of text and can redact them.

A :class:`SpanPolicy` only says where the spans are (:meth:`SpanPolicy.find`); reporting and
rewriting are the same for regex, denylist, pii and secrets. Reasons name the *kinds* of span
found, never the matched text, because verdicts are logged and sent back to clients.

Unicode tricks are handled here, once for every span policy: :meth:`SpanPolicy.spans` runs
``find`` on the text as written and on its :func:`~policies.normalise.normalise` reading
(fullwidth letters, look-alike Cyrillic and Greek letters, zero-width and other invisible
characters, hyphen variants), and maps what the reading matched back to the exact characters of
the original, so redaction replaces those and leaves the rest byte for byte.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterable
from typing import NamedTuple, TypeVar

from policies.base import Context, Verdict
from policies.normalise import normalise
from policies.registry import BuiltinPolicy, PolicyParams


class Span(NamedTuple):
    """``text[start:end]`` is a finding of ``kind`` (``"email"``, ``"pattern 0"``, ...)."""

    start: int
    end: int
    kind: str


class SpanParams(PolicyParams):
    """Parameters every span policy has."""

    replacement: str = "[REDACTED]"


SP = TypeVar("SP", bound=SpanParams)


def redact(text: str, spans: Iterable[Span], replacement: str) -> str:
    """``text`` with every span replaced by ``replacement``; overlapping spans become one."""
    merged: list[list[int]] = []
    for start, end, _ in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        out.append(text[pos:start])
        out.append(replacement)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def claimed(taken: list[Span], found: Iterable[Span]) -> list[Span]:
    """``taken`` (spans that share no character, in text order) with each span of ``found``
    that shares no character with one already taken, there or earlier in ``found``; in text
    order. Linear in both, once ``found`` is sorted: a text with a million matches costs a
    million steps, where checking each against every span taken so far cost its square."""
    kept: list[Span] = []
    i = 0
    for span in sorted(found):
        while i < len(taken) and taken[i].end <= span.start:
            i += 1
        if i < len(taken) and taken[i].start < span.end:
            continue  # shares a character with a span taken before
        if kept and span.start < kept[-1].end and kept[-1].start < span.end:
            continue  # with one taken just before it
        kept.append(span)
    return list(heapq.merge(taken, kept))


def union(raw: Iterable[Span], read: Iterable[Span]) -> list[Span]:
    """What was found in the text as written (``raw``) and in its reading (``read``), in text
    order, as one finding per thing found.

    The reading sees more, so a raw span that lies within a span found in the reading is the same
    finding (or one the policy ranked below it, such as a key inside a PEM block) and is dropped;
    overlapping spans of the same kind become one span covering both.
    """
    read = sorted(read)
    starts = [r.start for r in read]
    reach = list(itertools.accumulate((r.end for r in read), max))  # furthest end so far
    kept = [
        s
        for s in raw
        if not ((i := bisect.bisect_right(starts, s.start)) and reach[i - 1] >= s.end)
    ]
    merged: list[Span] = []
    last: dict[str, int] = {}  # kind -> index in merged of its latest span
    for span in sorted([*read, *kept], key=lambda s: (s.start, s.end)):
        k = last.get(span.kind)
        if k is not None and span.start < merged[k].end:
            merged[k] = Span(merged[k].start, max(merged[k].end, span.end), span.kind)
        else:
            last[span.kind] = len(merged)
            merged.append(span)
    return sorted(merged)


class SpanPolicy(BuiltinPolicy[SP]):
    """A policy that flags, blocks or redacts the spans :meth:`find` returns."""

    redactable = True

    def find(self, text: str) -> list[Span]:
        """Every non-empty span of ``text`` this policy objects to."""
        raise NotImplementedError

    def spans(self, text: str) -> list[Span]:
        """What :meth:`find` objects to in ``text`` as written or in its normalised reading
        (:mod:`policies.normalise`), as spans of ``text``, in text order."""
        found = [s for s in self.find(text) if s.end > s.start]
        reading = normalise(text)
        if reading.text == text:
            return found
        back = [
            Span(*reading.to_original(s.start, s.end), s.kind)
            for s in self.find(reading.text)
            if s.end > s.start
        ]
        return union(found, back)

    def check(self, ctx: Context) -> Verdict:
        spans = self.spans(ctx.text)
        if not spans:
            return self.passed()
        kinds = ", ".join(dict.fromkeys(s.kind for s in spans))
        noun = "match" if len(spans) == 1 else "matches"
        reason = f"found {len(spans)} {noun}: {kinds}"
        redacted = redact(ctx.text, spans, self.params.replacement)
        return self.hit(reason, 1.0, redacted if self.action == "redact" else None)
