"""Tests for calibrators/position.py.

Every expected number below is worked out by hand in the comment next to it, using the
convention ``perm[j]`` = original candidate shown at displayed position j, so an observation
at displayed position j belongs to candidate ``perm[j]``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from calibrators.position import (
    PositionResult,
    aggregate_scores,
    aggregate_verdicts,
    consistency_rate,
    judge_orders,
)

SWAP = [(0, 1), (1, 0)]
CYC3 = [(0, 1, 2), (1, 2, 0), (2, 0, 1)]


# --- judge_orders -----------------------------------------------------------------------------


def test_two_candidates_are_asked_in_both_orders() -> None:
    assert judge_orders(2) == SWAP
    assert judge_orders(2, "full") == SWAP


def test_three_candidates_cyclic_and_full() -> None:
    # Shift s shows original (j + s) % 3 at position j.
    assert judge_orders(3) == CYC3
    assert sorted(judge_orders(3, "full")) == sorted(itertools.permutations(range(3)))


@pytest.mark.parametrize("k", range(2, 11))
def test_cyclic_orders_put_every_candidate_at_every_position_once(k: int) -> None:
    orders = judge_orders(k)
    assert len(orders) == k
    for j in range(k):
        assert sorted(perm[j] for perm in orders) == list(range(k))


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_full_orders_are_every_permutation(k: int) -> None:
    orders = judge_orders(k, "full")
    assert len(orders) == math.factorial(k)
    assert len(set(orders)) == len(orders)


@pytest.mark.parametrize(("k", "scheme"), [(1, "cyclic"), (11, "cyclic"), (1, "full")])
def test_judge_orders_rejects_out_of_range_counts(k: int, scheme: str) -> None:
    with pytest.raises(ValueError, match=r"2\.\.10"):
        judge_orders(k, scheme)  # type: ignore[arg-type]


def test_judge_orders_rejects_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="'cyclic' or 'full'"):
        judge_orders(3, "swap")  # type: ignore[arg-type]


# --- aggregate_verdicts: hand-computed table ----------------------------------------------------

# (observations, winner, vote shares, order winners, consistent, first-position rate, balanced)
VERDICT_CASES = [
    pytest.param(
        # (0,1) pos 0 -> cand 0; (1,0) pos 1 -> cand 0. Votes [2, 0] / 2. First won 1 of 2.
        [((0, 1), 0), ((1, 0), 1)],
        0, (1.0, 0.0), (0, 0), True, 0.5, True,
        id="swap-consistent",
    ),
    pytest.param(
        # Always "first": (0,1) -> cand 0, (1,0) -> cand 1. Votes [1, 1] / 2: a tie.
        [((0, 1), 0), ((1, 0), 0)],
        None, (0.5, 0.5), (0, 1), False, 1.0, True,
        id="swap-pure-first-position-bias",
    ),
    pytest.param(
        # Tie spreads 1/2 to each; (1,0) pos 0 -> cand 1. Votes [0.5, 1.5] / 2 = [0.25, 0.75].
        [((0, 1), None), ((1, 0), 0)],
        1, (0.25, 0.75), (None, 1), False, 0.5, True,
        id="swap-one-tie",
    ),
    pytest.param(
        # Both ties: votes [1, 1] / 2; every order agrees ("tie"); the first position never won.
        [((0, 1), None), ((1, 0), None)],
        None, (0.5, 0.5), (None, None), True, 0.0, True,
        id="swap-both-ties",
    ),
    pytest.param(
        # (0,1,2)[1] = 1, (1,2,0)[0] = 1, (2,0,1)[2] = 1: cand 1 every time. First won 1 of 3.
        list(zip(CYC3, [1, 0, 2], strict=True)),
        1, (0.0, 1.0, 0.0), (1, 1, 1), True, 1 / 3, True,
        id="cyclic3-consistent",
    ),
    pytest.param(
        # (0,1,2)[0] = 0, (1,2,0)[0] = 1, (2,0,1)[1] = 0. Votes [2, 1, 0] / 3. First won 2 of 3.
        list(zip(CYC3, [0, 0, 1], strict=True)),
        0, (2 / 3, 1 / 3, 0.0), (0, 1, 0), False, 2 / 3, True,
        id="cyclic3-majority",
    ),
    pytest.param(
        # (0,1,2)[0] = 0, (0,2,1)[1] = 2. Votes [1, 0, 1] / 2: tie. Cand 0 shown first twice.
        [((0, 1, 2), 0), ((0, 2, 1), 1)],
        None, (0.5, 0.0, 0.5), (0, 2), False, 0.5, False,
        id="unbalanced-pair-of-orders",
    ),
    pytest.param(
        # One order, a tie: 1/3 each. One order trivially agrees with itself.
        [((2, 0, 1), None)],
        None, (1 / 3, 1 / 3, 1 / 3), (None,), True, 0.0, False,
        id="single-order-tie",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("obs", "winner", "scores", "order_winners", "consistent", "first", "balanced"),
    VERDICT_CASES,
)
def test_aggregate_verdicts_table(
    obs: list[tuple[tuple[int, ...], int | None]],
    winner: int | None,
    scores: tuple[float, ...],
    order_winners: tuple[int | None, ...],
    consistent: bool,
    first: float,
    balanced: bool,
) -> None:
    r = aggregate_verdicts(obs)
    assert r.winner == winner
    assert r.scores == pytest.approx(scores)
    assert r.order_winners == order_winners
    assert r.consistent is consistent
    assert r.first_position_rate == pytest.approx(first)
    assert r.balanced is balanced
    assert sum(r.scores) == pytest.approx(1.0)


def test_verdicts_accept_numpy_integers_and_lists() -> None:
    # What numpy code hands back (np.argmax, arrays); annotated as int, accepted at runtime.
    obs = [([0, 1], np.int64(1)), (np.array([1, 0]), np.int64(0))]
    r = aggregate_verdicts(obs)  # type: ignore[arg-type]
    # (0,1)[1] = 1, (1,0)[0] = 1.
    assert r.order_winners == (1, 1)
    assert r.winner == 1


def test_result_is_frozen() -> None:
    r = aggregate_verdicts([((0, 1), 0), ((1, 0), 1)])
    assert isinstance(r, PositionResult)
    with pytest.raises(AttributeError):
        r.winner = 1  # type: ignore[misc]


# --- aggregate_scores: hand-computed table ------------------------------------------------------

SCORE_CASES = [
    pytest.param(
        # 1-10 ratings. (0,1): cand0 = 8, cand1 = 6. (1,0): cand1 = 9, cand0 = 5.
        # Means: cand0 (8 + 5) / 2 = 6.5, cand1 (6 + 9) / 2 = 7.5 -> cand 1, although the
        # first order alone says cand 0. Both orders' winner was shown first.
        [((0, 1), [8, 6]), ((1, 0), [9, 5])],
        1, (6.5, 7.5), (0, 1), False, 1.0,
        id="ratings-calibration-flips-winner",
    ),
    pytest.param(
        # P(better). (0,1): [0.7, 0.3]. (1,0): cand1 = 0.6, cand0 = 0.4.
        # Means: cand0 (0.7 + 0.4) / 2 = 0.55, cand1 (0.3 + 0.6) / 2 = 0.45.
        [((0, 1), [0.7, 0.3]), ((1, 0), [0.6, 0.4])],
        0, (0.55, 0.45), (0, 1), False, 1.0,
        id="probabilities-swap",
    ),
    pytest.param(
        # Same displayed distribution in both orders: pure position bias, mean [0.5, 0.5].
        [((0, 1), [0.6, 0.4]), ((1, 0), [0.6, 0.4])],
        None, (0.5, 0.5), (0, 1), False, 1.0,
        id="pure-position-bias-is-a-tie",
    ),
    pytest.param(
        # (0,1): [8, 6] -> cand 0 wins. (1,0): [7, 7] is a tie under that order.
        # Means: cand0 (8 + 7) / 2 = 7.5, cand1 (6 + 7) / 2 = 6.5. First won 1 of 2 orders.
        [((0, 1), [8, 6]), ((1, 0), [7, 7])],
        0, (7.5, 6.5), (0, None), False, 0.5,
        id="tie-within-one-order",
    ),
    pytest.param(
        # Back to the original candidates:
        #   (0,1,2) [0.5, 0.3, 0.2] -> [0.5, 0.3, 0.2]; displayed argmax 0 -> cand 0
        #   (1,2,0) [0.6, 0.2, 0.2] -> [0.2, 0.6, 0.2]; displayed argmax 0 -> cand 1
        #   (2,0,1) [0.4, 0.5, 0.1] -> [0.5, 0.1, 0.4]; displayed argmax 1 -> cand 0
        # Means: [1.2, 1.0, 0.8] / 3. Displayed winners 0, 0, 1 -> first won 2 of 3.
        list(zip(CYC3, [[0.5, 0.3, 0.2], [0.6, 0.2, 0.2], [0.4, 0.5, 0.1]], strict=True)),
        0, (0.4, 1 / 3, 0.8 / 3), (0, 1, 0), False, 2 / 3,
        id="cyclic3-probabilities",
    ),
    pytest.param(
        # Every order prefers cand 2: (0,1,2) argmax 2 -> 2; (1,2,0) argmax 1 -> 2;
        # (2,0,1) argmax 0 -> 2. Means: cand0 (1 + 3 + 2) / 3 = 2, cand1 (2 + 1 + 3) / 3 = 2,
        # cand2 (9 + 9 + 9) / 3 = 9. First won only under (2,0,1).
        list(zip(CYC3, [[1, 2, 9], [1, 9, 3], [9, 2, 3]], strict=True)),
        2, (2.0, 2.0, 9.0), (2, 2, 2), True, 1 / 3,
        id="cyclic3-consistent-ratings",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("obs", "winner", "scores", "order_winners", "consistent", "first"), SCORE_CASES
)
def test_aggregate_scores_table(
    obs: list[tuple[tuple[int, ...], list[float]]],
    winner: int | None,
    scores: tuple[float, ...],
    order_winners: tuple[int | None, ...],
    consistent: bool,
    first: float,
) -> None:
    r = aggregate_scores(obs)
    assert r.winner == winner
    assert r.scores == pytest.approx(scores)
    assert r.order_winners == order_winners
    assert r.consistent is consistent
    assert r.first_position_rate == pytest.approx(first)
    assert r.balanced is True


def test_normalise_each_rescales_every_observation_first() -> None:
    obs = [((0, 1), [3.0, 1.0]), ((1, 0), [1.0, 1.0])]
    # Raw: mapped [3, 1] and [1, 1] -> means [2, 1].
    assert aggregate_scores(obs).scores == pytest.approx((2.0, 1.0))
    # Normalised: [0.75, 0.25] and [0.5, 0.5] -> means [0.625, 0.375].
    r = aggregate_scores(obs, normalise_each=True)
    assert r.scores == pytest.approx((0.625, 0.375))
    assert r.winner == 0
    assert r.order_winners == (0, None)


def test_rounding_noise_between_candidates_is_still_a_tie() -> None:
    # Cand 0 gets 0.1, 0.2, 0.3 and cand 1 gets 0.3, 0.2, 0.1: both mean 0.2 exactly in
    # arithmetic, but summed in floating point they differ in the last bit.
    obs = [((0, 1), [0.1, 0.3]), ((1, 0), [0.2, 0.2]), ((0, 1), [0.3, 0.1])]
    r = aggregate_scores(obs)
    assert r.scores[0] != r.scores[1]  # the noise is real ...
    assert r.winner is None  # ... and ignored
    assert r.balanced is False  # (0,1) twice, (1,0) once


def test_repeating_the_cyclic_orders_stays_balanced() -> None:
    r = aggregate_verdicts([(perm, 0) for perm in CYC3 * 2])
    assert r.balanced is True
    assert r.scores == pytest.approx((1 / 3, 1 / 3, 1 / 3))


# --- order invariance ---------------------------------------------------------------------------


def _assert_same_aggregate(a: PositionResult, b: PositionResult) -> None:
    assert a.winner == b.winner
    assert a.scores == pytest.approx(b.scores, rel=1e-12, abs=1e-12)
    assert sorted(a.order_winners, key=str) == sorted(b.order_winners, key=str)
    assert a.consistent is b.consistent
    assert a.first_position_rate == pytest.approx(b.first_position_rate)
    assert a.balanced is b.balanced


ORDER_CASES = [pytest.param(aggregate_verdicts, c.values[0], id=c.id) for c in VERDICT_CASES] + [
    pytest.param(aggregate_scores, c.values[0], id=c.id) for c in SCORE_CASES
]


@pytest.mark.parametrize(("agg", "obs"), ORDER_CASES)
def test_aggregate_does_not_depend_on_observation_order(
    agg: Callable[[list[Any]], PositionResult], obs: list[Any]
) -> None:
    base = agg(obs)
    for shuffled in itertools.permutations(obs):
        r = agg(list(shuffled))
        _assert_same_aggregate(r, base)
        # order_winners follow the observations they came from.
        index = [obs.index(o) for o in shuffled]
        assert r.order_winners == tuple(base.order_winners[i] for i in index)


def test_rounding_tie_survives_every_observation_order() -> None:
    obs = [((0, 1), [0.1, 0.3]), ((1, 0), [0.2, 0.2]), ((0, 1), [0.3, 0.1])]
    assert {aggregate_scores(list(p)).winner for p in itertools.permutations(obs)} == {None}


def _relabel(perm: tuple[int, ...], sigma: tuple[int, ...]) -> tuple[int, ...]:
    # Old candidate i is called sigma[i]; the display itself is unchanged.
    return tuple(sigma[i] for i in perm)


@pytest.mark.parametrize("sigma", list(itertools.permutations(range(3))))
def test_relabelling_candidates_permutes_the_score_result(sigma: tuple[int, ...]) -> None:
    rng = np.random.default_rng(7)
    obs = [(perm, rng.random(3).tolist()) for perm in judge_orders(3, "full")]
    base = aggregate_scores(obs)
    r = aggregate_scores([(_relabel(perm, sigma), s) for perm, s in obs])
    expected_scores = [0.0] * 3
    for i, s in enumerate(base.scores):
        expected_scores[sigma[i]] = s
    assert r.scores == pytest.approx(expected_scores)
    assert base.winner is not None
    assert r.winner == sigma[base.winner]
    assert r.order_winners == tuple(None if w is None else sigma[w] for w in base.order_winners)
    assert r.first_position_rate == base.first_position_rate
    assert r.consistent is base.consistent


@pytest.mark.parametrize("sigma", list(itertools.permutations(range(3))))
def test_relabelling_candidates_permutes_the_verdict_result(sigma: tuple[int, ...]) -> None:
    obs = list(zip(CYC3, [0, 0, 1], strict=True))  # votes [2, 1, 0] / 3, see the table
    r = aggregate_verdicts([(_relabel(perm, sigma), v) for perm, v in obs])
    expected = [0.0] * 3
    for i, share in enumerate((2 / 3, 1 / 3, 0.0)):
        expected[sigma[i]] = share
    assert r.scores == pytest.approx(expected)
    assert r.winner == sigma[0]
    assert r.order_winners == (sigma[0], sigma[1], sigma[0])


# --- a judge whose only bias is a bonus for a display position ----------------------------------


def _biased_judge(quality: np.ndarray, bonus: np.ndarray, perm: tuple[int, ...]) -> list[float]:
    # Score at displayed position j = quality of the candidate shown there + that position's bonus.
    return [float(quality[perm[j]] + bonus[j]) for j in range(len(perm))]


@pytest.mark.parametrize("k", range(2, 11))
def test_balanced_aggregation_removes_a_position_bonus(k: int) -> None:
    rng = np.random.default_rng(k)
    quality = rng.permutation(k).astype(np.float64)  # distinct
    best = int(np.argmax(quality))
    bonus = np.zeros(k)
    bonus[0] = 2.5 * k  # far larger than any quality gap: the first shown always wins
    orders = judge_orders(k)
    r = aggregate_scores([(perm, _biased_judge(quality, bonus, perm)) for perm in orders])
    # Each order on its own picks whoever is shown first, so it is right in 1 of k orders ...
    assert r.order_winners == tuple(perm[0] for perm in orders)
    assert r.order_winners.count(best) == 1
    assert r.first_position_rate == 1.0
    assert r.consistent is False
    # ... but under cyclic orders each candidate sits at each position once, so its mean score
    # is quality + mean(bonus) = quality + 2.5: the bonus becomes a shift, not a preference.
    assert np.asarray(r.scores) - quality == pytest.approx(np.full(k, 2.5))
    assert r.winner == best


@pytest.mark.parametrize("k", [2, 3, 4])
def test_full_permutations_remove_a_bonus_on_every_position(k: int) -> None:
    rng = np.random.default_rng(100 + k)
    quality = rng.normal(size=k)
    bonus = rng.normal(scale=5.0, size=k)
    r = aggregate_scores([(p, _biased_judge(quality, bonus, p)) for p in judge_orders(k, "full")])
    assert np.asarray(r.scores) == pytest.approx(quality + bonus.mean())
    assert r.winner == int(np.argmax(quality))


def test_verdicts_of_a_position_dominated_judge_cancel_to_a_tie() -> None:
    # Always "first shown": each candidate is shown first once under the cyclic orders,
    # so each gets 1 vote of 4 and nothing can be concluded.
    quality = np.array([0.0, 3.0, 1.0, 2.0])
    bonus = np.array([10.0, 0.0, 0.0, 0.0])
    obs = [(p, int(np.argmax(_biased_judge(quality, bonus, p)))) for p in judge_orders(4)]
    r = aggregate_verdicts(obs)
    assert r.scores == pytest.approx((0.25, 0.25, 0.25, 0.25))
    assert r.winner is None
    assert r.first_position_rate == 1.0
    assert r.consistent is False


def test_verdicts_of_a_mildly_biased_judge_are_consistent() -> None:
    # A bonus (0.5) below the smallest quality gap (1) never changes the pick: cand 1 always
    # wins, and it is shown first in exactly 1 of the 4 cyclic orders.
    quality = np.array([0.0, 3.0, 1.0, 2.0])
    bonus = np.array([0.5, 0.0, 0.0, 0.0])
    obs = [(p, int(np.argmax(_biased_judge(quality, bonus, p)))) for p in judge_orders(4)]
    r = aggregate_verdicts(obs)
    assert r.winner == 1
    assert r.order_winners == (1, 1, 1, 1)
    assert r.consistent is True
    assert r.first_position_rate == 0.25


# --- consistency_rate ---------------------------------------------------------------------------


def test_consistency_rate_over_items() -> None:
    results = [
        aggregate_verdicts([((0, 1), 0), ((1, 0), 1)]),  # (0, 0): consistent
        aggregate_verdicts([((0, 1), 0), ((1, 0), 0)]),  # (0, 1): not
        aggregate_verdicts([((0, 1), None), ((1, 0), None)]),  # (None, None): consistent
        aggregate_verdicts([((0, 1), None), ((1, 0), 1)]),  # (None, 0): not
        aggregate_verdicts(list(zip(CYC3, [1, 0, 2], strict=True))),  # (1, 1, 1), 3 orders
    ]
    # 3 of 5 consistent -> 60 %.
    assert consistency_rate(results) == pytest.approx(60.0)


def test_consistency_rate_agrees_with_the_per_item_flag() -> None:
    rng = np.random.default_rng(3)
    results = []
    for _ in range(50):
        k = int(rng.integers(2, 5))
        verdicts = [None if rng.random() < 0.2 else int(rng.integers(k)) for _ in range(k)]
        results.append(aggregate_verdicts(list(zip(judge_orders(k), verdicts, strict=True))))
    expected = 100.0 * sum(r.consistent for r in results) / len(results)
    assert 0.0 < expected < 100.0  # the sample exercises both outcomes
    assert consistency_rate(results) == pytest.approx(expected)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obs", "match"),
    [
        ([], "no orders"),
        ([((0,), 0)], r"2\.\.10"),
        ([(tuple(range(11)), 0)], r"2\.\.10"),
        ([((0, 0), 0)], "not a permutation of 2"),
        ([((0, 2), 0)], "not a permutation of 2"),
        ([((0, 1), 0), ((0, 1, 2), 0)], "order 1 .* not a permutation of 2"),
        ([((0, 1), 2)], r"only positions 0\.\.1"),
        ([((0, 1), -1)], r"only positions 0\.\.1"),
        ([((0, 1), True)], "displayed position"),
    ],
)
def test_aggregate_verdicts_errors(
    obs: list[tuple[tuple[int, ...], int | None]], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        aggregate_verdicts(obs)


@pytest.mark.parametrize(
    ("obs", "match"),
    [
        ([], "no orders"),
        ([((0, 1), [0.5, 0.3, 0.2])], "one score per candidate"),
        ([((0, 1, 2), [0.5, 0.5])], "one score per candidate"),
        ([((0, 1), [[0.5, 0.5]])], "one score per candidate"),
        ([((0, 1), [0.5, float("nan")])], "NaN or inf"),
        ([((0, 1), [0.5, 0.5]), ((1, 0, 2), [0.3, 0.3, 0.4])], "not a permutation of 2"),
    ],
)
def test_aggregate_scores_errors(obs: list[tuple[tuple[int, ...], object]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        aggregate_scores(obs)  # type: ignore[arg-type]


def test_consistency_rate_needs_results() -> None:
    with pytest.raises(ValueError, match="at least one"):
        consistency_rate([])
