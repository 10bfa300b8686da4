"""``regex``: flag, block or redact what any of a list of regular expressions matches."""

from __future__ import annotations

import functools
import operator
import re
from typing import Literal

from pydantic import Field, field_validator

from policies.registry import register
from policies.spans import Span, SpanParams, SpanPolicy

Flag = Literal["IGNORECASE", "MULTILINE", "DOTALL", "VERBOSE", "ASCII"]


class RegexParams(SpanParams):
    """``patterns``: Python regular expressions (``re`` syntax), searched anywhere in the text;
    ``flags``: ``re`` flag names applied to all of them; ``replacement``: what a redacted span
    becomes."""

    patterns: list[str] = Field(min_length=1)
    flags: list[Flag] = Field(default_factory=list)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        # Fail at start-up, naming the pattern, rather than on the first request.
        for i, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"pattern {i} ({pattern!r}) is not a valid regex: {err}") from None
        return patterns


@register
class Regex(SpanPolicy[RegexParams]):
    """Hits when any pattern matches; the reason names the pattern by its index, not the text."""

    name = "regex"
    params_model = RegexParams

    def __init__(self, params: RegexParams | None = None, action: str = "flag") -> None:
        super().__init__(params, action)
        flags = functools.reduce(operator.or_, (re.RegexFlag[f] for f in self.params.flags), 0)
        self._compiled = [re.compile(p, flags) for p in self.params.patterns]

    def find(self, text: str) -> list[Span]:
        return [
            Span(m.start(), m.end(), f"pattern {i}")
            for i, rx in enumerate(self._compiled)
            for m in rx.finditer(text)
        ]
