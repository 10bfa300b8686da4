"""denylist: case-insensitive whole words and phrases."""

from __future__ import annotations

import pytest

from policies import Action, Context, PolicyConfigError, build_policy


@pytest.mark.parametrize(
    ("words", "text", "reason", "redacted"),
    [
        (["ass"], "a first-class answer", "", None),  # whole words only
        (["ass"], "Ass!", "found 1 match: 'ass'", "***!"),
        (["darn"], "DARN it, darn", "found 2 matches: 'darn'", "*** it, ***"),
        (["Foo"], "foo_bar foo1 foo", "found 1 match: 'Foo'", "foo_bar foo1 ***"),
        (["bad word", "bad"], "a bad  word here", "found 1 match: 'bad word'", "a *** here"),
        (["bad word", "bad"], "bad words", "found 1 match: 'bad'", "*** words"),
        (["c++"], "I like C++.", "found 1 match: 'c++'", "I like ***."),
        (["c++"], "I like c", "", None),
        (["x"], "", "", None),
    ],
)
def test_denylist(words: list[str], text: str, reason: str, redacted: str | None) -> None:
    spec = {
        "type": "denylist",
        "params": {"words": words, "replacement": "***"},
        "action": "redact",
    }
    verdict = build_policy(spec).check(Context("response", text))
    assert verdict.action is (Action.FLAG if reason else Action.PASS)
    assert verdict.reason == reason
    assert verdict.redacted == redacted


def test_block() -> None:
    policy = build_policy({"type": "denylist", "params": {"words": ["nope"]}, "action": "block"})
    verdict = policy.check(Context("prompt", "Nope."))
    assert verdict.action is Action.BLOCK
    assert verdict.redacted is None


@pytest.mark.parametrize("words", [[], ["ok", " "]])
def test_empty_or_blank_words_are_config_errors(words: list[str]) -> None:
    with pytest.raises(PolicyConfigError, match="'words'"):
        build_policy({"type": "denylist", "params": {"words": words}})
