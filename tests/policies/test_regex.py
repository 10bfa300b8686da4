"""regex: flag, block or redact what patterns match."""

from __future__ import annotations

from typing import Any

import pytest

from policies import Action, Context, build_policy


@pytest.mark.parametrize(
    ("params", "text", "reason", "redacted"),
    [
        ({"patterns": [r"\d{3}"]}, "no numbers here", "", None),
        (
            {"patterns": [r"\d{3}"]},
            "code 123 and 456",
            "found 2 matches: pattern 0",
            "code X and X",
        ),
        (
            {"patterns": ["foo", "bar"]},
            "bar then foo",
            "found 2 matches: pattern 0, pattern 1",
            "X then X",
        ),
        ({"patterns": ["ab", "bc"]}, "abc!", "found 2 matches: pattern 0, pattern 1", "X!"),
        ({"patterns": ["secret"]}, "SECRET", "", None),
        (
            {"patterns": ["secret"], "flags": ["IGNORECASE"]},
            "a SECRET",
            "found 1 match: pattern 0",
            "a X",
        ),
        (
            {"patterns": ["^x"], "flags": ["MULTILINE"]},
            "a\nxy",
            "found 1 match: pattern 0",
            "a\nXy",
        ),
        ({"patterns": ["x*"]}, "abc", "", None),  # empty matches are not findings
    ],
)
def test_regex(params: dict[str, Any], text: str, reason: str, redacted: str | None) -> None:
    spec = {"type": "regex", "params": {**params, "replacement": "X"}, "action": "redact"}
    verdict = build_policy(spec).check(Context("response", text))
    assert verdict.action is (Action.FLAG if reason else Action.PASS)
    assert verdict.reason == reason
    assert verdict.redacted == redacted


@pytest.mark.parametrize(("action", "expected"), [("flag", Action.FLAG), ("block", Action.BLOCK)])
def test_flag_and_block_do_not_rewrite(action: str, expected: Action) -> None:
    policy = build_policy({"type": "regex", "params": {"patterns": ["bad"]}, "action": action})
    verdict = policy.check(Context("prompt", "a bad prompt"))
    assert verdict.action is expected
    assert verdict.redacted is None
    assert "bad" not in verdict.reason  # the reason names the pattern's index, not the text


def test_default_replacement() -> None:
    policy = build_policy({"type": "regex", "params": {"patterns": ["x+"]}, "action": "redact"})
    assert policy.check(Context("response", "axxb")).redacted == "a[REDACTED]b"
