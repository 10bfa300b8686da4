"""``denylist``: flag, block or redact listed words and phrases (case-insensitive, whole words).

Like every span policy it also matches the normalised reading of the text (fullwidth letters,
look-alike letters, invisible characters and hyphen variants read as plain, see
:mod:`policies.normalise`); each entry is listed both as written and as read, so an entry that
itself has look-alike or fullwidth letters matches either way.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from policies.normalise import normalise
from policies.registry import register
from policies.spans import Span, SpanParams, SpanPolicy


class DenylistParams(SpanParams):
    """``words``: words or phrases, matched case-insensitively as whole words (``"ass"`` does
    not match ``"class"``); ``replacement``: what a redacted span becomes."""

    words: list[str] = Field(min_length=1)

    @field_validator("words")
    @classmethod
    def _not_blank(cls, words: list[str]) -> list[str]:
        # A blank entry would match between any two non-word characters.
        blank = [i for i, w in enumerate(words) if not w.strip()]
        if blank:
            raise ValueError(f"entry {blank[0]} is blank")
        return words


@register
class Denylist(SpanPolicy[DenylistParams]):
    """Hits on any listed word; the reason names the listed word (config, not user text)."""

    name = "denylist"
    params_model = DenylistParams

    def __init__(self, params: DenylistParams | None = None, action: str = "flag") -> None:
        super().__init__(params, action)
        words: dict[str, str] = {}  # entry as matched -> entry as listed
        for w in self.params.words:
            read = _key(normalise(w).text)
            if read:  # an entry of nothing but invisible characters reads as nothing
                words[read] = " ".join(w.split())
        words.update({_key(w): " ".join(w.split()) for w in self.params.words})
        # Longest first so "bad word" wins over "bad"; lookarounds instead of \b so entries that
        # start or end with punctuation still work; runs of spaces in an entry match any spacing.
        alts = sorted(words, key=len, reverse=True)
        body = "|".join(r"\s+".join(map(re.escape, w.split(" "))) for w in alts)
        self._rx = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)
        self._label = words

    def find(self, text: str) -> list[Span]:
        found = []
        for m in self._rx.finditer(text):
            label = self._label.get(_key(m[0])) or self._label.get(
                _key(normalise(m[0]).text), "a listed word"
            )
            found.append(Span(m.start(), m.end(), repr(label)))
        return found


def _key(word: str) -> str:
    return " ".join(word.lower().split())
