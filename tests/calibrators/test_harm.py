"""Label-free do-no-harm evidence from questions asked in several orders."""

from __future__ import annotations

import json

import numpy as np

from calibrators.harm import HarmCheck, mixture_bound
from calibrators.permutation import Perm, cyclic_shift, normalise

UNIFORM = np.full(4, 0.25)


def two_orders(first_logits: np.ndarray, later_logits: np.ndarray) -> list[tuple[Perm, np.ndarray]]:
    """The same content asked as shown and shifted by 2; logits are over the original options."""
    shift = cyclic_shift(4, 2)
    return [
        ((0, 1, 2, 3), normalise(np.exp(first_logits))),
        (shift, normalise(np.exp(later_logits[list(shift)]))),
    ]


def test_later_orders_that_are_less_sure_are_flagged_and_weighed_down() -> None:
    rng = np.random.default_rng(0)
    h = HarmCheck()
    for q in range(60):
        content = rng.normal(0, 1, 4)
        h.update(two_orders(3.0 * content, 0.5 * content + rng.normal(0, 1, 4)), UNIFORM)
        if q + 1 < h.min_questions:
            assert not h.extras_hurt()
            assert h.later_weight() == 1.0
    assert h.extras_hurt()
    assert h.later_weight() < 0.5


def test_orders_alike_are_not_flagged() -> None:
    rng = np.random.default_rng(1)
    h = HarmCheck()
    for _ in range(200):
        content = rng.normal(0, 1.5, 4)
        h.update(
            two_orders(content + rng.normal(0, 0.5, 4), content + rng.normal(0, 0.5, 4)), UNIFORM
        )
    assert not h.extras_hurt()
    assert h.later_weight() == 1.0
    assert not h.prior_hurts()


def test_a_prior_that_makes_orders_disagree_is_flagged() -> None:
    # The model answers by content alone (its answers agree across orders); dividing out a
    # strong spurious prior makes them follow positions instead.
    rng = np.random.default_rng(2)
    spurious = np.array([0.02, 0.02, 0.02, 0.94])
    h = HarmCheck()
    for _ in range(60):
        content = rng.normal(0, 0.5, 4)
        h.update(two_orders(content, content), spurious)
    assert h.prior_hurts()
    assert h.agree_raw > h.agree_debiased


def test_the_mixture_boundary_is_seldom_ever_reached_by_a_fair_walk() -> None:
    rng = np.random.default_rng(8)
    steps = rng.choice([-1.0, 1.0], size=(400, 3000))
    walks = np.cumsum(steps, axis=1)
    bound = np.array([mixture_bound(n) for n in range(1, 3001)])
    ever = (walks >= bound).any(axis=1).mean()
    assert ever <= 0.05
    # ... while a fixed 1.5-standard-error test, looked at after every step, is crossed by most
    fixed = (walks >= 1.5 * np.sqrt(np.arange(1, 3001))).any(axis=1).mean()
    assert fixed > 0.5


def fixed_z_prior_check(h: HarmCheck, z: float = 1.5) -> bool:
    """The prior check before issue 10's second round: McNemar at a fixed 1.5 standard errors."""
    if h.questions < h.min_questions or h.pairs == 0:
        return False
    diff = (h.agree_debiased - h.agree_raw) / h.pairs
    return bool(diff + z * np.sqrt(max(h.discordant, 1)) / h.pairs < 0.0)


def test_a_harmless_prior_does_not_trip_the_prior_check_over_a_long_stream() -> None:
    # The model's position prior is exactly the one divided out, its content weak: debiasing
    # changes an answer's agreement now one way, now the other. Looked at after every question
    # for 300 questions, a fixed 1.5-standard-error test trips on half of these streams.
    prior = np.array([0.3, 0.2, 0.25, 0.25])
    shift = cyclic_shift(4, 2)
    tripped = fixed_tripped = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        h = HarmCheck()
        ever = fixed = False
        for _ in range(300):
            content = rng.normal(0, 0.3, 4)
            first = np.log(prior) + content + rng.normal(0, 0.5, 4)
            later = np.log(prior) + content[list(shift)] + rng.normal(0, 0.5, 4)
            obs = [((0, 1, 2, 3), normalise(np.exp(first))), (shift, normalise(np.exp(later)))]
            h.update(obs, prior)
            ever = ever or h.prior_hurts()
            fixed = fixed or fixed_z_prior_check(h)
        tripped += ever
        fixed_tripped += fixed
    assert tripped <= 1
    assert fixed_tripped >= 8  # the old test, on the same streams (10 of the 20)


def test_only_questions_whose_first_order_is_as_shown_count() -> None:
    h = HarmCheck()
    obs = two_orders(np.zeros(4), np.zeros(4))
    h.update(list(reversed(obs)), UNIFORM)
    h.update(obs[:1], UNIFORM)
    assert h.questions == 0


def test_state_round_trips_through_json() -> None:
    rng = np.random.default_rng(3)
    h = HarmCheck()
    for _ in range(15):
        h.update(two_orders(rng.normal(0, 1, 4), rng.normal(0, 1, 4)), UNIFORM)
    back = HarmCheck.from_dict(json.loads(json.dumps(h.to_dict())))
    assert back.to_dict() == h.to_dict()
