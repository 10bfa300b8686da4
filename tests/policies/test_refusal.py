"""refusal: a declining phrase near the start of the answer."""

from __future__ import annotations

from typing import Any

import pytest

from policies import Action, Context, build_policy


@pytest.mark.parametrize(
    ("params", "text", "hit"),
    [
        ({}, "I can't help with that.", True),
        ({}, "I cannot assist with this request.", True),
        ({}, "I can not provide that information.", True),
        ({}, "As an AI, I'm unable to share opinions.", True),
        ({}, "As an AI, I am unable to do that.", True),
        ({}, "I'm sorry, but I can't do that.", True),
        ({}, "I\u2019m sorry, but I can\u2019t help you with this.", True),  # curly apostrophes
        ({}, "Sorry,   but\nI CAN'T do that", True),
        ({}, "I will not assist with that.", True),
        ({}, "Unfortunately I must decline.", True),
        ({}, "The answer is B.", False),
        ({}, "I can't help but notice the second option is better: B.", False),
        ({}, "As an AI language model, I think the answer is Paris.", False),
        ({}, "Hi can't help with... (not a sentence)", False),
        ({}, "x" * 300 + " I can't help with that.", False),  # too far from the start
        ({"within_chars": 400}, "x" * 300 + " I can't help with that.", True),
        ({}, "That is against my guidelines.", False),
        ({"extra_phrases": ["Against my guidelines"]}, "That is against my guidelines.", True),
        ({"extra_phrases": ["I cannot  answer"]}, "I can not answer that.", True),
        ({"extra_phrases": ["   "]}, "Sure, B.", False),  # a blank extra phrase is ignored
    ],
)
def test_refusal(params: dict[str, Any], text: str, hit: bool) -> None:
    verdict = build_policy({"type": "refusal", "params": params}).check(Context("response", text))
    assert verdict.action is (Action.FLAG if hit else Action.PASS)
    assert ("declined" in verdict.reason) is hit


def test_prompts_are_not_checked_and_block_blocks() -> None:
    policy = build_policy({"type": "refusal", "action": "block"})
    assert policy.check(Context("prompt", "I can't help with that.")).action is Action.PASS
    assert policy.check(Context("response", "I can't help with that.")).action is Action.BLOCK


def test_the_reason_says_where_the_phrase_was() -> None:
    """Before: 'at the start of the answer' also for a phrase 6 characters in ("echo: I cannot")."""
    from policies.base import Context
    from policies.refusal import Refusal

    start = Refusal().check(Context("response", "I cannot help with that."))
    later = Refusal().check(Context("response", "echo: I cannot help with that."))
    assert "at the start of the answer" in start.reason
    assert "6 characters into the answer" in later.reason
