"""Tests for calibrators/permutation.py.

Convention: ``perm[j]`` is the original option shown at displayed ID position j; the cyclic shift
by k is ``perm[j] = (j + k) % n``. Every expected value is worked out by hand in the comment next to
it, or follows from the simulated model's construction -- never from the code under test.

The simulated model is PriDe's own assumption made exact: for order ``perm`` it answers
``p_obs[j] ∝ prior[j] * content[perm[j]]``, i.e. its only bias is a preference for ID positions.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from calibrators.permutation import (
    EPS,
    PriorEstimator,
    apply_permutation,
    average_orders,
    count_full_permutations,
    cyclic_permutations,
    cyclic_shift,
    debias,
    full_permutations,
    normalise,
    question_prior,
    to_original,
)

ALL_N = range(2, 11)


def simulate(prior: np.ndarray, content: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
    """What a model whose only bias is the ID prior shows under ``perm`` (displayed-ID space)."""
    p = prior * content[list(perm)]
    return p / p.sum()


def random_case(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))


def is_permutation(perm: tuple[int, ...], n: int) -> bool:
    return sorted(perm) == list(range(n))


# --- cyclic shifts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "k", "fixed", "expected"),
    [
        # perm[j] = (j + 1) % 4 -> (1, 2, 3, 0): position A shows original option 1.
        (4, 1, (), (1, 2, 3, 0)),
        (4, 2, (), (2, 3, 0, 1)),
        (4, 3, (), (3, 0, 1, 2)),
        (2, 1, (), (1, 0)),
        # Shifts wrap around in both directions: k = 4 is k = 0, k = -1 is k = 3.
        (4, 4, (), (0, 1, 2, 3)),
        (4, -1, (), (3, 0, 1, 2)),
        # Position 3 fixed: the shift runs over movable [0, 1, 2]: perm[0] = 1, perm[1] = 2,
        # perm[2] = 0, perm[3] = 3.
        (4, 1, (3,), (1, 2, 0, 3)),
        (4, 2, (3,), (2, 0, 1, 3)),
        # Position 1 fixed: movable [0, 2, 3]; k = 1 -> perm[0] = 2, perm[2] = 3, perm[3] = 0.
        (4, 1, (1,), (2, 1, 3, 0)),
        # Positions 0, 4 fixed: movable [1, 2, 3]; k = 1 -> perm[1] = 2, perm[2] = 3, perm[3] = 1.
        (5, 1, (0, 4), (0, 2, 3, 1, 4)),
        # Only one movable position: nothing can move.
        (3, 1, (0, 2), (0, 1, 2)),
    ],
)
def test_cyclic_shift_hand_examples(
    n: int, k: int, fixed: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    assert cyclic_shift(n, k, fixed) == expected


def test_cyclic_permutations_hand_examples() -> None:
    assert cyclic_permutations(3) == [(0, 1, 2), (1, 2, 0), (2, 0, 1)]
    # Option 3 ("all of the above", say) stays at D; the other three rotate.
    assert cyclic_permutations(4, fixed=(3,)) == [(0, 1, 2, 3), (1, 2, 0, 3), (2, 0, 1, 3)]


@pytest.mark.parametrize("n", ALL_N)
def test_cyclic_permutations_are_n_distinct_permutations(n: int) -> None:
    perms = cyclic_permutations(n)
    assert len(perms) == n
    assert len(set(perms)) == n
    assert all(is_permutation(p, n) for p in perms)
    assert perms[0] == tuple(range(n))  # shift 0 is the identity
    for k, perm in enumerate(perms):
        assert perm == tuple((j + k) % n for j in range(n))
        assert cyclic_shift(n, k) == perm
    # Over the n shifts every option is shown at every position exactly once.
    for j in range(n):
        assert sorted(p[j] for p in perms) == list(range(n))


@pytest.mark.parametrize(
    ("n", "fixed"),
    [(3, (0,)), (4, (3,)), (5, (0, 4)), (6, (2,)), (8, (1, 6)), (10, (9,)), (10, (0, 5, 9))],
)
def test_fixed_positions_stay_and_the_others_cycle(n: int, fixed: tuple[int, ...]) -> None:
    perms = cyclic_permutations(n, fixed)
    movable = [j for j in range(n) if j not in fixed]
    assert len(perms) == n - len(fixed)
    assert len(set(perms)) == len(perms)
    assert perms[0] == tuple(range(n))
    for perm in perms:
        assert is_permutation(perm, n)
        assert all(perm[f] == f for f in fixed)
    # Every movable option visits every movable position exactly once.
    for j in movable:
        assert sorted(p[j] for p in perms) == movable


# --- full permutations --------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "count"), [(2, 2), (3, 6), (4, 24), (5, 120)])
def test_full_permutations_are_all_n_factorial_orders(n: int, count: int) -> None:
    perms = list(full_permutations(n))
    assert len(perms) == count
    assert count_full_permutations(n) == count
    assert set(perms) == set(itertools.permutations(range(n)))


@pytest.mark.parametrize(
    ("n", "fixed", "count"),
    [
        (3, (), 6),
        (10, (), 3_628_800),  # 10!: counted, never enumerated here
        (4, (3,), 6),  # 3!
        (5, (0, 4), 6),  # 3!
        (5, (2,), 24),  # 4!
        (10, (9,), 362_880),  # 9!
        (3, (0, 1, 2), 1),  # nothing moves: only the identity
    ],
)
def test_count_full_permutations(n: int, fixed: tuple[int, ...], count: int) -> None:
    assert count_full_permutations(n, fixed) == count


@pytest.mark.parametrize(("n", "fixed", "count"), [(4, (3,), 6), (5, (0, 4), 6), (5, (2,), 24)])
def test_full_permutations_with_fixed_positions(n: int, fixed: tuple[int, ...], count: int) -> None:
    perms = list(full_permutations(n, fixed))
    assert len(perms) == count  # (n - |fixed|)!
    assert len(set(perms)) == count
    for perm in perms:
        assert is_permutation(perm, n)
        assert all(perm[f] == f for f in fixed)


# --- apply_permutation / to_original ------------------------------------------------------------


def test_apply_permutation_and_to_original_hand_example() -> None:
    # perm (1, 2, 3, 0): A shows option 1 ("x"), B shows 2, C shows 3, D shows 0 ("w").
    assert apply_permutation(["w", "x", "y", "z"], (1, 2, 3, 0)) == ["x", "y", "z", "w"]
    # Displayed [0.1, 0.2, 0.3, 0.4]: A (option 1) 0.1, B (option 2) 0.2, C (option 3) 0.3,
    # D (option 0) 0.4 -> original [0.4, 0.1, 0.2, 0.3].
    np.testing.assert_array_equal(
        to_original([0.1, 0.2, 0.3, 0.4], (1, 2, 3, 0)), [0.4, 0.1, 0.2, 0.3]
    )


@pytest.mark.parametrize("n", ALL_N)
def test_apply_permutation_and_to_original_are_inverse(n: int) -> None:
    rng = np.random.default_rng(n)
    perms = [
        *cyclic_permutations(n),
        *(tuple(int(i) for i in rng.permutation(n)) for _ in range(5)),
    ]
    for perm in perms:
        x = rng.random(n)
        # Original -> displayed -> original.
        np.testing.assert_array_equal(to_original(apply_permutation(list(x), perm), perm), x)
        # Displayed -> original -> displayed.
        np.testing.assert_array_equal(apply_permutation(list(to_original(x, perm)), perm), x)
        # The same convention in both: all mass on displayed j lands on the option shown there.
        for j in range(n):
            assert int(np.argmax(to_original(np.eye(n)[j], perm))) == perm[j]


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 11, 12])
def test_option_count_out_of_range_is_rejected(n: int) -> None:
    with pytest.raises(ValueError, match=rf"2\.\.10, got {n}"):
        cyclic_shift(n, 0)
    with pytest.raises(ValueError, match=rf"2\.\.10, got {n}"):
        cyclic_permutations(n)
    with pytest.raises(ValueError, match=rf"2\.\.10, got {n}"):
        # A generator: the check runs when the first order is asked for, not at the call.
        next(full_permutations(n))
    with pytest.raises(ValueError, match=rf"2\.\.10, got {n}"):
        PriorEstimator(n)


@pytest.mark.parametrize("n", [1, 11])
def test_count_full_permutations_rejects_out_of_range_counts(n: int) -> None:
    with pytest.raises(ValueError, match=r"2\.\.10"):
        count_full_permutations(n)


@pytest.mark.parametrize(("n", "fixed"), [(4, (4,)), (4, (-1,)), (3, (0, 3)), (10, (10,))])
def test_fixed_positions_out_of_range_are_rejected(n: int, fixed: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"out of range for \d+ options"):
        cyclic_shift(n, 1, fixed)
    with pytest.raises(ValueError, match="out of range"):
        cyclic_permutations(n, fixed)
    with pytest.raises(ValueError, match="out of range"):
        next(full_permutations(n, fixed))
    with pytest.raises(ValueError, match="out of range"):
        count_full_permutations(n, fixed)


@pytest.mark.parametrize(
    ("options", "perm"),
    [
        (["a", "b", "c"], (0, 0, 1)),  # repeats an option
        (["a", "b", "c"], (1, 2, 3)),  # 3 is not an option
        (["a", "b", "c"], (0, 1)),  # too short
        (["a", "b"], (0, 1, 2)),  # too long
        (["a", "b", "c"], (0, 1, -1)),  # a negative index is not an option either
    ],
)
def test_apply_permutation_rejects_bad_perm(options: list[str], perm: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="is not a permutation of"):
        apply_permutation(options, perm)


@pytest.mark.parametrize(
    ("p", "perm", "shape"),
    [
        ([0.5, 0.5], (0, 1, 2), r"\(2,\), expected \(3,\)"),
        ([0.2, 0.3, 0.5], (1, 0), r"\(3,\), expected \(2,\)"),
        ([[0.5, 0.5], [0.5, 0.5]], (0, 1), r"\(2, 2\), expected \(2,\)"),
    ],
)
def test_to_original_rejects_wrong_shape(p: list[float], perm: tuple[int, ...], shape: str) -> None:
    with pytest.raises(ValueError, match=shape):
        to_original(p, perm)


@pytest.mark.parametrize("perm", [(0, 0, 1), (0, 1, 5), (0, 1, -1)])
def test_to_original_rejects_bad_perm(perm: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="not a permutation"):
        to_original([0.2, 0.3, 0.5], perm)


# --- normalise ----------------------------------------------------------------------------------


def test_eps_floor_value() -> None:
    assert EPS == 1e-12


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        # Already a distribution: unchanged.
        ([0.25, 0.75], [0.25, 0.75]),
        # Scaled: [2, 6] / 8.
        ([2.0, 6.0], [0.25, 0.75]),
        # A zero is floored at EPS: [EPS, 1] / (1 + EPS).
        ([0.0, 1.0], [EPS / (1 + EPS), 1 / (1 + EPS)]),
        # All zeros: every entry EPS -> uniform.
        ([0.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]),
        # A negative (rounding noise from an API) is floored like a zero.
        ([-0.1, 0.5, 0.5], [EPS / (1 + EPS), 0.5 / (1 + EPS), 0.5 / (1 + EPS)]),
    ],
)
def test_normalise(p: list[float], expected: list[float]) -> None:
    out = normalise(p)
    np.testing.assert_allclose(out, expected, rtol=1e-15, atol=0)
    assert np.all(np.isfinite(out))
    assert np.all(out > 0)


def test_normalise_works_row_wise() -> None:
    # Rows [1, 3] / 4 and [0, 0] -> uniform.
    np.testing.assert_allclose(normalise([[1.0, 3.0], [0.0, 0.0]]), [[0.25, 0.75], [0.5, 0.5]])


def test_zeros_never_make_inf_or_nan_downstream() -> None:
    # An API that rounds small probabilities to 0 in some runs and the prior to 0 somewhere.
    runs = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    q = question_prior(runs)
    assert np.all(np.isfinite(q))
    # Each column holds one 1 and two EPS floors: equal geometric means -> uniform.
    np.testing.assert_allclose(q, [1 / 3, 1 / 3, 1 / 3])
    d = debias([0.0, 1.0, 0.0], [0.5, 0.0, 0.5])
    assert np.all(np.isfinite(d))
    # 1 / EPS dwarfs EPS / 0.5: everything on position 1.
    np.testing.assert_allclose(d, [0.0, 1.0, 0.0], atol=1e-9)


# --- question_prior -----------------------------------------------------------------------------


def test_question_prior_2x2_by_hand() -> None:
    # Column geometric means: sqrt(0.8 * 0.5) = sqrt(0.4), sqrt(0.2 * 0.5) = sqrt(0.1);
    # their ratio is sqrt(4) = 2, so the prior is [2/3, 1/3].
    np.testing.assert_allclose(question_prior([[0.8, 0.2], [0.5, 0.5]]), [2 / 3, 1 / 3])


def test_question_prior_3x3_by_hand() -> None:
    runs = [[0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [0.5, 0.25, 0.25]]
    # Column products: 0.5 * 0.25 * 0.5 = 1/16, 0.25 * 0.5 * 0.25 = 1/32, 0.25^3 = 1/64.
    # Cube roots relative to the last: 4^(1/3), 2^(1/3), 1 -> normalised.
    w = np.array([4 ** (1 / 3), 2 ** (1 / 3), 1.0])
    np.testing.assert_allclose(question_prior(runs), w / w.sum(), rtol=1e-12)


def test_question_prior_of_a_content_only_model_is_uniform() -> None:
    # Option 0 gets 0.8 wherever it is shown: under shift k it is at position (-k) % 3.
    runs = [[0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.1, 0.8, 0.1]]
    # Every column holds 0.8, 0.1, 0.1 -> equal geometric means -> uniform.
    np.testing.assert_allclose(question_prior(runs), [1 / 3, 1 / 3, 1 / 3])


def test_question_prior_ignores_row_scale() -> None:
    # Row 1 of the 2x2 case above, unnormalised ([1, 1] is [0.5, 0.5]): still [2/3, 1/3].
    np.testing.assert_allclose(question_prior([[0.8, 0.2], [1.0, 1.0]]), [2 / 3, 1 / 3])


@pytest.mark.parametrize("shape", [(3,), (3, 4), (4, 3), (2, 2, 2)])
def test_question_prior_rejects_non_square(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"\(n, n\) array of the n cyclic runs"):
        question_prior(np.full(shape, 0.5))


@pytest.mark.parametrize("n", ALL_N)
def test_question_prior_does_not_depend_on_row_order(n: int) -> None:
    prior, content = random_case(n, 100 + n)
    runs = np.array([simulate(prior, content, perm) for perm in cyclic_permutations(n)])
    shuffled = runs[np.random.default_rng(n).permutation(n)]
    np.testing.assert_allclose(question_prior(shuffled), question_prior(runs), rtol=1e-12)


# --- the simulated prior-only model: PriDe recovers everything ----------------------------------


@pytest.mark.parametrize("n", ALL_N)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pride_recovers_the_prior_from_one_question(n: int, seed: int) -> None:
    prior, content = random_case(n, 10 * n + seed)
    # log p_k[j] = log prior[j] + log content[(j + k) % n] - log Z_k. Averaged over k the content
    # term is the same for every j, so the normalised geometric mean is exactly the prior.
    runs = [simulate(prior, content, perm) for perm in cyclic_permutations(n)]
    np.testing.assert_allclose(question_prior(runs), prior, rtol=0, atol=1e-9)


@pytest.mark.parametrize("n", ALL_N)
def test_prior_estimator_over_many_questions_recovers_the_prior(n: int) -> None:
    rng = np.random.default_rng(1000 + n)
    prior = rng.dirichlet(np.ones(n))
    est = PriorEstimator(n)
    for _ in range(30):
        content = rng.dirichlet(np.ones(n))  # a fresh question each time
        runs = [simulate(prior, content, perm) for perm in cyclic_permutations(n)]
        q = est.update_from_cyclic(runs)
        np.testing.assert_allclose(q, prior, rtol=0, atol=1e-9)
    assert est.count == 30
    np.testing.assert_allclose(est.prior, prior, rtol=0, atol=1e-9)


@pytest.mark.parametrize("n", ALL_N)
def test_debias_then_to_original_recovers_the_content_for_every_order(n: int) -> None:
    prior, content = random_case(n, 500 + n)
    rng = np.random.default_rng(n)
    orders = [
        *cyclic_permutations(n),
        *(tuple(int(i) for i in rng.permutation(n)) for _ in range(3)),
    ]
    for perm in orders:
        # p_obs[j] / prior[j] ∝ content[perm[j]]; renormalised and mapped back: the content.
        recovered = to_original(debias(simulate(prior, content, perm), prior), perm)
        np.testing.assert_allclose(recovered, content, rtol=0, atol=1e-9)


def test_debias_by_hand() -> None:
    # [0.5 / 0.8, 0.5 / 0.2] = [0.625, 2.5]; / 3.125 -> [0.2, 0.8].
    np.testing.assert_allclose(debias([0.5, 0.5], [0.8, 0.2]), [0.2, 0.8])
    # A uniform prior changes nothing.
    np.testing.assert_allclose(debias([0.1, 0.6, 0.3], [1 / 3] * 3), [0.1, 0.6, 0.3])


def test_debias_rejects_mismatched_sizes() -> None:
    with pytest.raises(ValueError, match="observation has 3 options but the prior has 4"):
        debias([0.2, 0.3, 0.5], [0.25] * 4)


# --- average_orders -----------------------------------------------------------------------------


def test_average_orders_by_hand() -> None:
    # (0, 1): [0.8, 0.2] as is. (1, 0): A shows option 1 -> original [0.4, 0.6].
    # Mean [0.6, 0.4].
    obs = [((0, 1), [0.8, 0.2]), ((1, 0), [0.6, 0.4])]
    np.testing.assert_allclose(average_orders(obs), [0.6, 0.4])


def test_average_orders_normalises_each_observation() -> None:
    # [8, 2] is [0.8, 0.2]; [3, 2] is [0.6, 0.4] -> [0.4, 0.6] original. Mean [0.6, 0.4].
    np.testing.assert_allclose(average_orders([((0, 1), [8, 2]), ((1, 0), [3, 2])]), [0.6, 0.4])


@pytest.mark.parametrize("n", ALL_N)
def test_average_orders_does_not_depend_on_listing_order(n: int) -> None:
    rng = np.random.default_rng(2000 + n)
    perms = [
        *cyclic_permutations(n),
        *(tuple(int(i) for i in rng.permutation(n)) for _ in range(4)),
    ]
    obs = [(perm, rng.dirichlet(np.ones(n))) for perm in perms]
    reference = average_orders(obs)
    for _ in range(3):
        shuffled = [obs[i] for i in rng.permutation(len(obs))]
        np.testing.assert_allclose(average_orders(shuffled), reference, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", ALL_N)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cyclic_average_keeps_the_content_argmax(n: int, seed: int) -> None:
    # Cyclic averaging gives option i content[i] * w_i / n with w_i = sum_k prior[.] / Z_k.
    # Each Z_k is a convex combination of prior values, so 1 / max(prior) <= w_i <=
    # 1 / min(prior): the argmax is kept whenever the content's top-to-second ratio exceeds
    # max(prior) / min(prior). Build cases that satisfy it (prior ratio < 2, content ratio > 2).
    rng = np.random.default_rng(3000 + 10 * n + seed)
    prior = rng.uniform(1.0, 2.0, n)
    prior /= prior.sum()
    content = rng.uniform(0.1, 1.0, n)
    top = int(rng.integers(n))
    content[top] = 2.01 * np.delete(content, top).max()
    content /= content.sum()
    obs = [(perm, simulate(prior, content, perm)) for perm in cyclic_permutations(n)]
    assert int(np.argmax(average_orders(obs))) == top


def test_cyclic_average_can_lose_the_content_argmax_under_a_strong_prior() -> None:
    # Not a bug in average_orders: a known limit of cyclic averaging that PriDe's division does not
    # have. prior (0.05, 0.1, 0.85), content (0.05, 0.5, 0.45): content says option 1.
    prior = np.array([0.05, 0.1, 0.85])
    content = np.array([0.05, 0.5, 0.45])
    # k=0 (0,1,2): (0.0025, 0.05, 0.3825) / 0.435   -> opt1 0.05/0.435,  opt2 0.3825/0.435
    # k=1 (1,2,0): (0.025, 0.045, 0.0425) / 0.1125  -> opt1 0.025/0.1125, opt2 0.045/0.1125
    # k=2 (2,0,1): (0.0225, 0.005, 0.425) / 0.4525  -> opt1 0.425/0.4525, opt2 0.0225/0.4525
    # opt1: 0.11494 + 0.22222 + 0.93923 = 1.27639; opt2: 0.87931 + 0.4 + 0.04972 = 1.32903.
    obs = [(perm, simulate(prior, content, perm)) for perm in cyclic_permutations(3)]
    avg = average_orders(obs)
    assert int(np.argmax(avg)) == 2
    np.testing.assert_allclose(avg[1:], [1.27639 / 3, 1.32903 / 3], atol=1e-5)
    # PriDe with the exact prior recovers option 1 from the first observation alone.
    assert int(np.argmax(to_original(debias(obs[0][1], prior), obs[0][0]))) == 1


def test_average_orders_needs_an_observation() -> None:
    with pytest.raises(ValueError, match="at least one observation"):
        average_orders([])


# --- PriorEstimator -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", ALL_N)
def test_estimator_is_uniform_before_updates(n: int) -> None:
    est = PriorEstimator(n)
    assert est.count == 0
    np.testing.assert_array_equal(est.prior, np.full(n, 1 / n))


def test_estimator_running_mean_by_hand() -> None:
    est = PriorEstimator(2)
    est.update([0.7, 0.3])
    # First update has weight 1: the uniform start is forgotten.
    np.testing.assert_allclose(est.prior, [0.7, 0.3])
    est.update([0.5, 0.5])
    # Mean of [0.7, 0.3] and [0.5, 0.5].
    np.testing.assert_allclose(est.prior, [0.6, 0.4])
    est.update([0.1, 0.9])
    # (0.7 + 0.5 + 0.1) / 3 = 1.3 / 3, (0.3 + 0.5 + 0.9) / 3 = 1.7 / 3.
    np.testing.assert_allclose(est.prior, [1.3 / 3, 1.7 / 3])
    assert est.count == 3


def test_estimator_max_count_makes_it_an_ema() -> None:
    est = PriorEstimator(2, max_count=2)
    est.update([0.7, 0.3])  # weight 1   -> [0.7, 0.3]
    est.update([0.5, 0.5])  # weight 1/2 -> [0.6, 0.4]
    np.testing.assert_allclose(est.prior, [0.6, 0.4])
    est.update([0.1, 0.9])  # weight stays 1/2: 0.6 + (0.1 - 0.6) / 2 = 0.35
    np.testing.assert_allclose(est.prior, [0.35, 0.65])
    est.update([0.1, 0.9])  # 0.35 + (0.1 - 0.35) / 2 = 0.225
    np.testing.assert_allclose(est.prior, [0.225, 0.775])
    assert est.count == 4  # count keeps counting; only the weight is capped


def test_estimator_max_count_one_keeps_only_the_last() -> None:
    est = PriorEstimator(3, max_count=1)
    est.update([0.2, 0.3, 0.5])
    est.update([0.6, 0.2, 0.2])
    np.testing.assert_allclose(est.prior, [0.6, 0.2, 0.2])


def test_estimator_normalises_what_it_is_given() -> None:
    est = PriorEstimator(2)
    est.update([3.0, 1.0])  # -> [0.75, 0.25]
    np.testing.assert_allclose(est.prior, [0.75, 0.25])


def test_estimator_prior_is_a_copy() -> None:
    est = PriorEstimator(2)
    est.prior[0] = 99.0
    np.testing.assert_array_equal(est.prior, [0.5, 0.5])


def test_update_from_cyclic_returns_and_folds_in_the_question_prior() -> None:
    est = PriorEstimator(2)
    # The 2x2 hand case: [2/3, 1/3].
    q = est.update_from_cyclic([[0.8, 0.2], [0.5, 0.5]])
    np.testing.assert_allclose(q, [2 / 3, 1 / 3])
    np.testing.assert_allclose(est.prior, [2 / 3, 1 / 3])
    assert est.count == 1


@pytest.mark.parametrize("max_count", [None, 1, 5])
def test_estimator_round_trips_through_json_exactly(max_count: int | None) -> None:
    est = PriorEstimator(4, max_count=max_count)
    for p in ([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.7, 0.1, 0.1, 0.1]):
        est.update(p)
    d = est.to_dict()
    assert set(d) == {"n", "max_count", "count", "mean"}
    restored = PriorEstimator.from_dict(json.loads(json.dumps(d)))
    assert restored.to_dict() == d
    assert restored.n == 4
    assert restored.max_count == max_count
    assert restored.count == 3
    np.testing.assert_array_equal(restored.prior, est.prior)
    # The restored one carries on exactly as the original would.
    est.update([0.25, 0.25, 0.25, 0.25])
    restored.update([0.25, 0.25, 0.25, 0.25])
    np.testing.assert_array_equal(restored.prior, est.prior)


def test_fresh_estimator_round_trips() -> None:
    d = PriorEstimator(3).to_dict()
    assert d == {"n": 3, "max_count": None, "count": 0, "mean": [1 / 3, 1 / 3, 1 / 3]}
    assert PriorEstimator.from_dict(d).to_dict() == d


def test_estimator_rejects_wrong_shape() -> None:
    est = PriorEstimator(2)
    with pytest.raises(ValueError, match=r"prior has shape \(3,\), expected \(2,\)"):
        est.update([0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match=r"\(n, n\) array"):
        est.update_from_cyclic([[0.5, 0.5]])
    assert est.count == 0  # a rejected update leaves the state alone


@pytest.mark.parametrize("max_count", [0, -1])
def test_estimator_rejects_max_count_below_one(max_count: int) -> None:
    with pytest.raises(ValueError, match=rf"max_count must be >= 1, got {max_count}"):
        PriorEstimator(3, max_count=max_count)


def test_from_dict_rejects_a_stored_prior_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="stored prior has 3 entries, expected 2"):
        PriorEstimator.from_dict({"n": 2, "max_count": None, "count": 1, "mean": [0.2, 0.3, 0.5]})
    with pytest.raises(ValueError, match="max_count must be >= 1"):
        PriorEstimator.from_dict({"n": 2, "max_count": 0, "count": 1, "mean": [0.5, 0.5]})


def test_estimator_over_questions_with_math_reference() -> None:
    # Three 2-option questions whose per-question priors are, by the 2x2 rule above, [2/3, 1/3],
    # [1/2, 1/2] (content-only), and [0.8, 0.2] ([[0.8, 0.2], [0.8, 0.2]]: every run the same).
    est = PriorEstimator(2)
    est.update_from_cyclic([[0.8, 0.2], [0.5, 0.5]])
    est.update_from_cyclic([[0.9, 0.1], [0.1, 0.9]])
    est.update_from_cyclic([[0.8, 0.2], [0.8, 0.2]])
    expected0 = (2 / 3 + 1 / 2 + 0.8) / 3
    np.testing.assert_allclose(est.prior, [expected0, 1 - expected0])
    assert math.isclose(float(est.prior.sum()), 1.0)
