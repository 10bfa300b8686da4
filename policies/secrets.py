"""``secrets``: API keys and private keys that should never leave in a prompt or an answer.

Shapes, not a verifier: a string with the shape of a key is treated as one.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from policies.registry import register
from policies.spans import Span, SpanParams, SpanPolicy, claimed

Kind = Literal[
    "private_key", "openai_key", "aws_access_key", "github_token", "slack_token", "google_api_key"
]

_PATTERNS: dict[Kind, re.Pattern[str]] = {
    # A BEGIN line with no END (a truncated or still-streaming answer) redacts to the end of the
    # text: failing closed keeps the key material out.
    "private_key": re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
        r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|.*)",
        re.DOTALL,
    ),
    # OpenAI-style keys: sk-..., sk-proj-..., sk-svcacct-...; also covers sk-ant-... (Anthropic).
    "openai_key": re.compile(r"(?<![\w-])sk-[A-Za-z0-9_-]{20,}"),
    "aws_access_key": re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])"),
    "github_token": re.compile(
        r"(?<![\w])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})(?![\w])"
    ),
    "slack_token": re.compile(r"(?<![\w])xox[baprs]-[A-Za-z0-9-]{10,}"),
    "google_api_key": re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])"),
}


class SecretsParams(SpanParams):
    """``kinds``: which key shapes to look for (all by default); ``replacement``: what a redacted
    span becomes."""

    kinds: list[Kind] = Field(default_factory=lambda: list(_PATTERNS), min_length=1)


@register
class Secrets(SpanPolicy[SecretsParams]):
    """Hits on key-shaped strings; the reason names the kinds found, never the keys."""

    name = "secrets"
    params_model = SecretsParams

    def find(self, text: str) -> list[Span]:
        found: list[Span] = []
        for kind, rx in _PATTERNS.items():
            if kind not in self.params.kinds:
                continue
            # A key quoted inside a PEM block is already covered by the block.
            found = claimed(found, (Span(m.start(), m.end(), kind) for m in rx.finditer(text)))
        return found
