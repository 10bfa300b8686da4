"""order_instability: the answer changed across the orders that were asked."""

from __future__ import annotations

from typing import Any

import pytest

from policies import Action, Context, build_policy


@pytest.mark.parametrize(
    ("evidence", "action", "score"),
    [
        (None, Action.PASS, 0.0),
        ({"task": "mcq", "orders": [[0, 1, 2, 3]]}, Action.PASS, 0.0),
        ({"order_answers": [2, 2, 2, 2]}, Action.PASS, 0.0),
        ({"order_answers": [2]}, Action.PASS, 0.0),
        ({"order_answers": []}, Action.PASS, 0.0),
        ({"order_answers": [2, 2, 1, 2]}, Action.FLAG, 0.25),
        ({"order_answers": [0, 1]}, Action.FLAG, 0.5),
        ({"order_answers": [0, 1, 2, 3]}, Action.FLAG, 0.75),
        ({"consistent": True}, Action.PASS, 0.0),
        ({"consistent": False}, Action.FLAG, 1.0),
        ({"consistent": None}, Action.PASS, 0.0),  # unknown is not a change
        ({"consistent": False, "order_winners": [0, 1]}, Action.FLAG, 0.5),
        ({"consistent": True, "order_winners": [1, 1]}, Action.PASS, 0.0),
        ({"order_winners": [0, None]}, Action.FLAG, 0.5),  # a tie in one order is a change
        ({"order_winners": [None, None]}, Action.PASS, 0.0),
    ],
)
def test_order_instability(evidence: dict[str, Any] | None, action: Action, score: float) -> None:
    policy = build_policy({"type": "order_instability"})
    verdict = policy.check(Context("response", "A", evidence=evidence))
    assert verdict.action is action
    assert verdict.score == pytest.approx(score)


def test_reason_lists_the_answers_and_block_blocks() -> None:
    policy = build_policy({"type": "order_instability", "action": "block"})
    verdict = policy.check(Context("response", "A", evidence={"order_winners": [0, None, 0]}))
    assert verdict.action is Action.BLOCK
    assert verdict.reason == "answer changed across 3 orders: 0, tie, 0"
