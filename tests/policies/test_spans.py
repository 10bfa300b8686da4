"""``claimed``: which findings of a lower-ranked pass a span policy keeps (those that share no
character with one already taken), in one linear sweep. Before, each was checked against every
span taken so far, so a text of many matches (a pasted log full of e-mails) cost its square:
2 MB took 24 s for pii (``python -m bench.policy_scaling``)."""

from __future__ import annotations

import itertools
import random

from policies import build_policy
from policies.spans import Span, claimed


def _naive(taken: list[Span], found: list[Span]) -> list[Span]:
    """The rule as it was written before: in text order, keep a span that overlaps none kept."""
    out = list(taken)
    for span in sorted(found):
        if not any(span.start < t.end and t.start < span.end for t in out):
            out.append(span)
    return sorted(out)


def _spans(rng: random.Random, n: int, kind: str) -> list[Span]:
    out = []
    for _ in range(n):
        start = rng.randrange(200)
        out.append(Span(start, start + rng.randrange(0, 12), kind))
    return out


def test_claimed_keeps_what_the_rule_keeps() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        taken = _naive([], _spans(rng, rng.randrange(8), "a"))
        found = _spans(rng, rng.randrange(12), "b")
        assert claimed(taken, found) == _naive(taken, found)


def test_pii_and_secrets_over_many_matches_find_each_once() -> None:
    unit = "mail bob@example.com call +1 415 555 0100 key sk-abcdefghijklmnopqrstuvwx1234 "
    text = unit * 2000
    pii = build_policy({"type": "pii", "action": "flag"}).find(text)  # type: ignore[attr-defined]
    assert [s.kind for s in pii[:2]] == ["email", "phone"]
    assert len(pii) == 4000
    assert all(a.end <= b.start for a, b in itertools.pairwise(pii))
    keys = build_policy({"type": "secrets", "action": "flag"}).find(text)  # type: ignore[attr-defined]
    assert len(keys) == 2000
