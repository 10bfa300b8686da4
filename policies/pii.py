"""``pii``: e-mail addresses, phone numbers, payment card numbers and IBANs.

Numbers are only reported when they look the part, to keep years, dates, amounts and order
numbers out:

- card: 13-19 digits, single spaces or dashes allowed between them, passing the Luhn check; a run
  of more than 19 digits (for example two cards separated by one space) is not a card.
- iban: upper-case, compact or in groups of four, passing the ISO 13616 mod-97 check.
- phone: ``+`` and 8-15 digits (E.164), or a national format with separators or parentheses and
  10-11 digits (``(555) 123-4567``, ``555-123-4567``, ``020 7946 0958``, ``01 23 45 67 89``);
  bare digit runs, dates, IPv4 addresses and thousands-grouped numbers are not phones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from pydantic import Field

from policies.checksums import iban_valid, luhn_valid
from policies.registry import register
from policies.spans import Span, SpanParams, SpanPolicy, claimed

Kind = Literal["email", "iban", "card", "phone"]
ALL_KINDS: tuple[Kind, ...] = ("email", "iban", "card", "phone")

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}"
    r"(?![\w-])"
)
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])"
)
_CARD = re.compile(r"(?<![0-9])(?<![0-9][ -])[0-9](?:[ -]?[0-9]){12,18}(?![ -]?[0-9])")
_INTL_PHONE = re.compile(
    r"(?<![\w+])\+[0-9]{1,3}(?:[ .-]?\([0-9]{1,5}\))?(?:[ .-]?[0-9]{1,5}){1,6}(?![0-9])"
)
_NATIONAL_PHONE = re.compile(
    r"(?<![\w+.-])(?:1[ .-])?(?:\([0-9]{2,5}\)[ .-]?|[0-9]{2,5}[ .-])[0-9]{2,8}"
    r"(?:[ .-][0-9]{2,4}){0,3}(?![0-9])"
)
_DATE = re.compile(
    r"(?:19|20)[0-9]{2}[-./][0-9]{1,2}[-./][0-9]{1,2}|[0-9]{1,2}[-./][0-9]{1,2}[-./](?:19|20)[0-9]{2}"
)
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")


def _digits(s: str) -> str:
    return re.sub(r"[^0-9]", "", s)


def _iban(m: re.Match[str]) -> tuple[int, int] | None:
    # The pattern may swallow a short upper-case word after the IBAN; drop trailing groups
    # until the check digits agree, or give up.
    candidate = m[0]
    while True:
        if iban_valid(candidate):
            return m.start(), m.start() + len(candidate)
        if " " not in candidate:
            return None
        candidate = candidate.rsplit(" ", 1)[0]


def _card(m: re.Match[str]) -> tuple[int, int] | None:
    return m.span() if luhn_valid(_digits(m[0])) else None


def _phone(m: re.Match[str]) -> tuple[int, int] | None:
    s = m[0]
    digits = _digits(s)
    if s.startswith("+"):
        return m.span() if 8 <= len(digits) <= 15 else None
    groups = re.findall(r"[0-9]+", s)
    if not 10 <= len(digits) <= 11 or _DATE.search(s) or _IPV4.fullmatch(s):
        return None
    trunk = s.startswith(("0", "("))
    if not trunk and all(len(g) == 3 for g in groups[1:]):
        return None  # "12 345 678 901" is an amount, not a phone
    return m.span() if trunk or len(groups) >= 3 else None


_Check = Callable[[re.Match[str]], "tuple[int, int] | None"]
_DETECTORS: dict[Kind, list[tuple[re.Pattern[str], _Check]]] = {
    "email": [(_EMAIL, lambda m: m.span())],
    "iban": [(_IBAN, _iban)],
    "card": [(_CARD, _card)],
    "phone": [(_INTL_PHONE, _phone), (_NATIONAL_PHONE, _phone)],
}


class PiiParams(SpanParams):
    """``kinds``: which of email, iban, card, phone to look for (all by default);
    ``replacement``: what a redacted span becomes."""

    kinds: list[Kind] = Field(default_factory=lambda: list(ALL_KINDS), min_length=1)


@register
class Pii(SpanPolicy[PiiParams]):
    """Hits on personal data; the reason names the kinds found, never the values."""

    name = "pii"
    params_model = PiiParams

    def find(self, text: str) -> list[Span]:
        found: list[Span] = []
        # Fixed priority (email, iban, card, phone): a span already claimed, e.g. a card number,
        # is not reported again as a phone number.
        for kind in ALL_KINDS:
            if kind not in self.params.kinds:
                continue
            for rx, check in _DETECTORS[kind]:
                spans = (check(m) for m in rx.finditer(text))
                found = claimed(found, (Span(*s, kind) for s in spans if s is not None))
        return found
