"""low_confidence: the calibrated top probability (or margin) against a threshold."""

from __future__ import annotations

from typing import Any

import pytest

from policies import Action, Context, build_policy


@pytest.mark.parametrize(
    ("params", "evidence", "action", "score"),
    [
        ({}, None, Action.PASS, 0.0),
        ({}, {"task": "mcq"}, Action.PASS, 0.0),
        ({}, {"probs": []}, Action.PASS, 0.0),
        ({}, {"probs": [0.7, 0.1, 0.1, 0.1]}, Action.PASS, 0.3),
        ({}, {"probs": [0.4, 0.3, 0.2, 0.1]}, Action.FLAG, 0.6),
        ({}, {"probs": [0.5, 0.5]}, Action.PASS, 0.5),  # at the threshold is not below it
        ({"threshold": 0.8}, {"probs": [0.7, 0.3]}, Action.FLAG, 0.3),
        ({}, {"probs": [4.0, 3.0, 2.0, 1.0]}, Action.FLAG, 0.6),  # normalised first
        ({"measure": "margin", "threshold": 0.2}, {"probs": [0.45, 0.35, 0.2]}, Action.FLAG, 0.9),
        ({"measure": "margin", "threshold": 0.2}, {"probs": [0.6, 0.3, 0.1]}, Action.PASS, 0.7),
        ({"measure": "margin", "threshold": 0.2}, {"probs": [0.1, 0.6, 0.3]}, Action.PASS, 0.7),
        ({"measure": "margin"}, {"probs": [1.0]}, Action.PASS, 0.0),
        ({}, {"probs": [float("nan"), 0.5]}, Action.FLAG, 1.0),
        ({}, {"probs": [0.0, 0.0]}, Action.FLAG, 1.0),
    ],
)
def test_low_confidence(
    params: dict[str, Any], evidence: dict[str, Any] | None, action: Action, score: float
) -> None:
    policy = build_policy({"type": "low_confidence", "params": params})
    verdict = policy.check(Context("response", "B", evidence=evidence))
    assert verdict.action is action
    assert verdict.score == pytest.approx(score)
    assert verdict.redacted is None


@pytest.mark.parametrize(
    ("params", "probs", "redacted"),
    [
        ({"abstain": True}, [0.4, 0.35, 0.25], "I am not sure."),
        ({"abstain": True, "abstain_text": "Unsure."}, [0.3, 0.3, 0.4], "Unsure."),
        ({"abstain": True}, [0.9, 0.1], None),
    ],
)
def test_abstain_replaces_the_answer_when_unsure(
    params: dict[str, Any], probs: list[float], redacted: str | None
) -> None:
    policy = build_policy({"type": "low_confidence", "params": params})
    verdict = policy.check(Context("response", "A", evidence={"probs": probs}))
    assert verdict.redacted == redacted


def test_block_action_blocks() -> None:
    policy = build_policy({"type": "low_confidence", "action": "block"})
    verdict = policy.check(Context("response", "A", evidence={"probs": [0.3, 0.3, 0.4]}))
    assert verdict.action is Action.BLOCK
    assert verdict.reason == "top probability 0.400 < 0.5"
