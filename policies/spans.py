"""Shared machinery for policies that find spans of text and can redact them.

A :class:`SpanPolicy` only says where the spans are (:meth:`SpanPolicy.find`); reporting and
rewriting are the same for regex, denylist, pii and secrets. Reasons name the *kinds* of span
found, never the matched text, because verdicts are logged and sent back to clients.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, TypeVar

from policies.base import Context, Verdict
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


def overlaps(span: Span, taken: Iterable[Span]) -> bool:
    """Whether ``span`` shares a character with any of ``taken``."""
    return any(span.start < t.end and t.start < span.end for t in taken)


class SpanPolicy(BuiltinPolicy[SP]):
    """A policy that flags, blocks or redacts the spans :meth:`find` returns."""

    redactable = True

    def find(self, text: str) -> list[Span]:
        """Every non-empty span of ``text`` this policy objects to."""
        raise NotImplementedError

    def check(self, ctx: Context) -> Verdict:
        spans = [s for s in self.find(ctx.text) if s.end > s.start]
        if not spans:
            return self.passed()
        kinds = ", ".join(dict.fromkeys(s.kind for s in spans))
        noun = "match" if len(spans) == 1 else "matches"
        reason = f"found {len(spans)} {noun}: {kinds}"
        redacted = redact(ctx.text, spans, self.params.replacement)
        return self.hit(reason, 1.0, redacted if self.action == "redact" else None)
