"""``refusal``: the model declined to answer."""

from __future__ import annotations

import re

from pydantic import Field

from policies.base import Context, Verdict
from policies.registry import BuiltinPolicy, PolicyParams, register

# Written in normalised form (see _normalise): lower case, straight apostrophes, "cannot" and
# "can not" as "can't", "i am" as "i'm", "will not" as "won't". "i can't help" alone would also
# match "I can't help but notice", hence the longer phrases.
PHRASES = (
    "i can't help with",
    "i can't help you",
    "i can't assist",
    "i can't provide",
    "i can't comply",
    "i can't fulfill",
    "i can't fulfil",
    "i can't do that",
    "i'm unable to help",
    "i'm unable to assist",
    "i'm unable to provide",
    "i'm unable to comply",
    "i'm not able to help",
    "i'm not able to assist",
    "i'm not able to provide",
    "i won't be able to help",
    "i won't help",
    "i won't assist",
    "i must decline",
    "i have to decline",
    "as an ai, i'm unable",
    "as an ai, i can't",
    "i'm sorry, but i can't",
    "i'm sorry, i can't",
    "sorry, but i can't",
)
_REWRITES = (
    (re.compile(r"[\u2018\u2019\u02bc`]"), "'"),
    (re.compile(r"\bcan\s*not\b"), "can't"),
    (re.compile(r"\bi\s+am\b"), "i'm"),
    (re.compile(r"\bwill\s+not\b"), "won't"),
    (re.compile(r"\s+"), " "),
)


def _normalise(text: str) -> str:
    text = text.lower()
    for rx, repl in _REWRITES:
        text = rx.sub(repl, text)
    return text


class RefusalParams(PolicyParams):
    """``extra_phrases``: more phrases that mark a refusal (matched like the built-in ones,
    case-insensitively, as whole words); ``within_chars``: how far from the start of the answer a
    phrase may begin (refusals come first; a phrase deep in a long answer is usually quoted)."""

    extra_phrases: list[str] = Field(default_factory=list)
    within_chars: int = Field(default=200, ge=0)


@register
class Refusal(BuiltinPolicy[RefusalParams]):
    """Checks responses only (prompts pass)."""

    name = "refusal"
    params_model = RefusalParams

    def __init__(self, params: RefusalParams | None = None, action: str = "flag") -> None:
        super().__init__(params, action)
        extra = [_normalise(p).strip() for p in self.params.extra_phrases]
        phrases = sorted({*PHRASES, *(p for p in extra if p)}, key=len, reverse=True)
        self._rx = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, phrases)) + r")(?!\w)")

    def check(self, ctx: Context) -> Verdict:
        if ctx.phase != "response":
            return self.passed()
        m = self._rx.search(_normalise(ctx.text))
        if m is None or m.start() > self.params.within_chars:
            return self.passed()
        where = "at the start of" if m.start() == 0 else f"{m.start()} characters into"
        return self.hit(f"the model declined (the phrase {m[0]!r}, {where} the answer)")
