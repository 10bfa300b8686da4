"""prior_skew: KL of the prior from uniform, and total-variation drift from the previous prior."""

from __future__ import annotations

import math
from typing import Any

import pytest

from policies import Action, Context, build_policy

UNIFORM = [0.25, 0.25, 0.25, 0.25]
# KL([0.7, 0.1, 0.1, 0.1] || uniform) = 0.7 ln 2.8 + 0.3 ln 0.4 = 0.4458 nats
SKEWED = [0.7, 0.1, 0.1, 0.1]
SKEWED_KL = 0.7 * math.log(2.8) + 0.3 * math.log(0.4)
# KL([0.4, 0.2, 0.2, 0.2] || uniform) = 0.0541 nats; TV to MILD_B is 0.2
MILD_A = [0.4, 0.2, 0.2, 0.2]
MILD_B = [0.2, 0.4, 0.2, 0.2]


@pytest.mark.parametrize(
    ("params", "prior", "previous", "action", "score"),
    [
        ({}, None, None, Action.PASS, 0.0),
        ({}, UNIFORM, None, Action.PASS, 0.0),
        ({}, UNIFORM, UNIFORM, Action.PASS, 0.0),
        ({}, SKEWED, None, Action.FLAG, SKEWED_KL / math.log(4)),
        ({"max_kl": 0.5}, SKEWED, None, Action.PASS, SKEWED_KL / math.log(4)),
        ({"max_kl": None}, SKEWED, None, Action.PASS, SKEWED_KL / math.log(4)),
        ({}, [7, 1, 1, 1], None, Action.FLAG, SKEWED_KL / math.log(4)),  # normalised first
        ({}, [1.0, 0.0], None, Action.FLAG, 1.0),  # one-hot: KL = log n
        ({}, MILD_A, None, Action.PASS, 0.0541 / math.log(4)),
        ({}, MILD_B, MILD_A, Action.FLAG, 0.2),
        ({"max_shift": 0.25}, MILD_B, MILD_A, Action.PASS, 0.2),
        ({"max_shift": None}, MILD_B, MILD_A, Action.PASS, 0.0541 / math.log(4)),
        ({}, MILD_A, [0.5, 0.5], Action.FLAG, 1.0),  # another shape under the same key
        ({}, [0.0, 0.0], None, Action.PASS, 0.0),  # not a distribution: nothing to judge
    ],
)
def test_prior_skew(
    params: dict[str, Any],
    prior: list[float] | None,
    previous: list[float] | None,
    action: Action,
    score: float,
) -> None:
    policy = build_policy({"type": "prior_skew", "params": params})
    ctx = Context("response", "A", evidence={"prior": prior}, previous_prior=previous)
    verdict = policy.check(ctx)
    assert verdict.action is action
    assert verdict.score == pytest.approx(score, abs=1e-3)


def test_reason_names_both_problems() -> None:
    policy = build_policy({"type": "prior_skew", "action": "block"})
    verdict = policy.check(
        Context("response", "A", evidence={"prior": SKEWED}, previous_prior=UNIFORM)
    )
    assert verdict.action is Action.BLOCK
    assert (
        verdict.reason
        == "prior is 0.446 nats from uniform (max 0.1); prior moved by 0.450 (max 0.1)"
    )


def test_no_evidence_passes() -> None:
    policy = build_policy({"type": "prior_skew"})
    assert policy.check(Context("prompt", "hi")).action is Action.PASS
