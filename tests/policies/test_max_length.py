"""max_length: characters and words."""

from __future__ import annotations

from typing import Any

import pytest

from policies import Action, Context, build_policy


@pytest.mark.parametrize(
    ("params", "text", "action", "reason"),
    [
        ({"max_chars": 5}, "hello", Action.PASS, ""),
        ({"max_chars": 5}, "hello!", Action.FLAG, "too long: 6 characters > 5"),
        ({"max_chars": 0}, "", Action.PASS, ""),
        ({"max_chars": 3}, "héé", Action.PASS, ""),  # code points, not bytes
        ({"max_words": 3}, "one two  three\n", Action.PASS, ""),
        ({"max_words": 3}, "one two three four", Action.FLAG, "too long: 4 words > 3"),
        ({"max_chars": 100, "max_words": 2}, "a b c", Action.FLAG, "too long: 3 words > 2"),
        (
            {"max_chars": 4, "max_words": 2},
            "a b c",
            Action.FLAG,
            "too long: 5 characters > 4, 3 words > 2",
        ),
    ],
)
@pytest.mark.parametrize("phase", ["prompt", "response"])
def test_max_length(
    params: dict[str, Any], text: str, action: Action, reason: str, phase: Any
) -> None:
    verdict = build_policy({"type": "max_length", "params": params}).check(Context(phase, text))
    assert verdict.action is action
    assert verdict.reason == reason


def test_block() -> None:
    policy = build_policy({"type": "max_length", "params": {"max_chars": 1}, "action": "block"})
    assert policy.check(Context("response", "ab")).action is Action.BLOCK
