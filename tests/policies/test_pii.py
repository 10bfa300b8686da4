"""pii: emails, phones, Luhn-checked cards, mod-97-checked IBANs; kinds named, values never."""

from __future__ import annotations

from typing import Any

import pytest

from policies import Action, Context, build_policy

CARD_OK = "4111 1111 1111 1111"  # passes Luhn
CARD_BAD = "4111 1111 1111 1112"  # same digits, last changed: fails Luhn
IBAN_OK = "GB82 WEST 1234 5698 7654 32"  # passes mod 97
IBAN_BAD = "GB82 WEST 1234 5698 7654 33"


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        # e-mail
        ("write to jane.doe+news@mail.example.co.uk.", ["email"]),
        ("user@localhost is not routable", []),
        ("an @ sign alone, or @handle", []),
        # cards
        (f"card {CARD_OK} exp 12/27", ["card"]),
        ("card 4111-1111-1111-1111", ["card"]),
        ("amex 378282246310005", ["card"]),
        ("13 digits 4222222222222", ["card"]),
        ("19 digits 6221260000000000001", ["card"]),
        (f"card {CARD_BAD}", []),
        ("4111111111111112", []),
        ("order 41111111111111110000", []),  # 20 digits: not a card
        # IBANs
        (f"IBAN {IBAN_OK}, thanks", ["iban"]),
        ("pay DE89370400440532013000 today", ["iban"]),
        ("IBAN ES91 2100 0418 4502 0005 1332 TO ME", ["iban"]),
        (f"IBAN {IBAN_BAD}", []),
        ("GB82WEST12345698765433", []),
        # phones
        ("call +44 20 7946 0958 now", ["phone"]),
        ("call +1 (555) 123-4567", ["phone"]),
        ("+441234567890", ["phone"]),
        ("call (555) 123-4567", ["phone"]),
        ("555-123-4567 or 1-800-555-0199", ["phone", "phone"]),
        ("London 020 7946 0958", ["phone"]),
        ("Paris 01 23 45 67 89", ["phone"]),
        ("Berlin 030 12345678", ["phone"]),
        ("+12 is not a phone", []),
        # look-alikes that are not phones
        ("in 1999, 2004 and 2024", []),
        ("on 2024-01-15 10:30 or 15.01.2024 10", []),
        ("host 192.168.100.10", []),
        ("paid 12 345 678 901 dollars", []),
        ("id 5551234567", []),
        ("call 555-0199", []),
        ("short 0123 4567", []),  # 8 digits
        ("long 020 7946 0958 12", []),  # 13 digits
        ("version 1.2.3", []),
        # several at once, reported in text order
        (f"a@b.io, {CARD_OK}, +33 1 23 45 67 89", ["email", "card", "phone"]),
    ],
)
def test_pii_finds(text: str, kinds: list[str]) -> None:
    policy = build_policy({"type": "pii", "action": "redact", "params": {"replacement": "<X>"}})
    verdict = policy.check(Context("response", text))
    if not kinds:
        assert verdict.action is Action.PASS
        assert verdict.redacted is None
        return
    assert verdict.action is Action.FLAG
    noun = "match" if len(kinds) == 1 else "matches"
    assert verdict.reason == f"found {len(kinds)} {noun}: {', '.join(dict.fromkeys(kinds))}"
    assert verdict.redacted is not None
    assert verdict.redacted.count("<X>") == len(kinds)


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (f"pay {CARD_OK} now", "pay [REDACTED] now"),
        (f"to {IBAN_OK}.", "to [REDACTED]."),
        ("mail a@b.io or call (555) 123-4567", "mail [REDACTED] or call [REDACTED]"),
    ],
)
def test_redaction_keeps_the_rest(text: str, redacted: str) -> None:
    policy = build_policy({"type": "pii", "action": "redact"})
    assert policy.check(Context("response", text)).redacted == redacted


def test_reason_never_contains_the_value() -> None:
    text = f"jane@example.com {CARD_OK} {IBAN_OK} +44 20 7946 0958"
    verdict = build_policy({"type": "pii", "action": "block"}).check(Context("prompt", text))
    assert verdict.action is Action.BLOCK
    assert verdict.redacted is None
    for value in ("jane", "4111", "WEST", "7946"):
        assert value not in verdict.reason


@pytest.mark.parametrize(
    ("params", "text", "action"),
    [
        ({"kinds": ["email"]}, f"card {CARD_OK}", Action.PASS),
        ({"kinds": ["card"]}, f"card {CARD_OK}", Action.FLAG),
        ({"kinds": ["phone"]}, "a@b.io", Action.PASS),
    ],
)
def test_kinds_select_detectors(params: dict[str, Any], text: str, action: Action) -> None:
    verdict = build_policy({"type": "pii", "params": params}).check(Context("prompt", text))
    assert verdict.action is action
