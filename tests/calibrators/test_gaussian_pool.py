"""Pooling some orders by the posterior mean of the content (calibrators/gaussian_pool.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calibrators.gaussian_pool import MIN_FULL, GaussianPool
from calibrators.permutation import cyclic_shift, debias, to_original
from calibrators.planner import PermutationPlanner
from calibrators.question import McqResult

N = 4
PERMS = [cyclic_shift(N, k) for k in range(N)]


def _question(
    rng: np.random.Generator, content_sd: float, bias_sd: np.ndarray, noise_sd: float
) -> tuple[np.ndarray, np.ndarray]:
    """(content, (n, n) logs of every cyclic order in original option order): the model of
    the module, with a position bias whose spread differs by position."""
    content = content_sd * rng.normal(size=N)
    bias = bias_sd * rng.normal(size=N)
    logs = np.empty((N, N))
    for k, perm in enumerate(PERMS):
        # noise, and a level per order
        shown = content[list(perm)] + bias + noise_sd * rng.normal(size=N) + 0.7 * k
        logs[k, list(perm)] = shown  # back to original option order
    return content, logs


# A question's own bias varies far more at positions 0 and 2 than at 1 and 3, so the shown
# order and the far one (shift 2) leave A + C against B + D, which they cannot tell from content.
SPREAD_BY_POSITION = np.array([2.0, 0.3, 2.0, 0.3])


def _learned(rng: np.random.Generator, questions: int, noise_sd: float = 0.2) -> GaussianPool:
    pool = GaussianPool(N)
    for _ in range(questions):
        pool.add_full(_question(rng, 1.0, SPREAD_BY_POSITION, noise_sd)[1], PERMS)
    return pool


def test_the_far_pair_pooled_by_the_posterior_finds_the_favourite_more_often_than_the_mean() -> (
    None
):
    rng = np.random.default_rng(0)
    pool = _learned(rng, 60)
    hits = {"mean": 0, "posterior": 0}
    for _ in range(2000):
        content, logs = _question(rng, 1.0, SPREAD_BY_POSITION, 0.2)
        pair = logs[[0, 2]]
        best = int(np.argmax(content))
        hits["mean"] += int(np.argmax(pair.mean(axis=0))) == best
        hits["posterior"] += int(np.argmax(pool.pooled(pair, [PERMS[0], PERMS[2]]))) == best
    # measured: 1,499 against 1,414 of 2,000 (seeds 0-3: +51 to +95)
    assert hits["posterior"] > hits["mean"] + 40, hits


def test_the_covariances_are_learned_from_questions_asked_in_every_order() -> None:
    rng = np.random.default_rng(1)
    pool = _learned(rng, 3000, noise_sd=0.3)
    content, bias, noise = pool._covariances()
    cen = np.eye(N) - 1.0 / N
    np.testing.assert_allclose(np.trace(content), 1.0 * (N - 1), rtol=0.1)
    true_bias = cen @ np.diag(SPREAD_BY_POSITION**2) @ cen
    np.testing.assert_allclose(bias, true_bias, atol=0.1)
    np.testing.assert_allclose(noise, 0.3**2 * cen, atol=0.02)


def test_the_pool_prefers_no_option_letter() -> None:
    """Content is exchangeable: relabelling the options relabels the answer, nothing else."""
    rng = np.random.default_rng(2)
    pool = _learned(rng, 40)
    _, logs = _question(rng, 1.0, SPREAD_BY_POSITION, 0.2)
    perms = [PERMS[0], PERMS[2]]
    got = pool.pooled(logs[[0, 2]], perms)
    relabel = [2, 0, 3, 1]  # new option r is old option relabel[r]
    inverse = [relabel.index(i) for i in range(N)]
    moved = [tuple(inverse[i] for i in p) for p in perms]
    np.testing.assert_allclose(pool.pooled(logs[[0, 2]][:, relabel], moved), got[relabel])


def test_the_state_round_trips_through_json() -> None:
    rng = np.random.default_rng(3)
    pool = _learned(rng, 12)
    again = GaussianPool.from_dict(N, json.loads(json.dumps(pool.to_dict())))
    logs = _question(rng, 1.0, SPREAD_BY_POSITION, 0.2)[1][[0, 2]]
    np.testing.assert_array_equal(
        again.pooled(logs, [PERMS[0], PERMS[2]]), pool.pooled(logs, [PERMS[0], PERMS[2]])
    )


def _answered(planner: PermutationPlanner, logs: np.ndarray) -> McqResult:
    """One question through the planner, every order it asks answered from ``logs``."""
    run = planner.start()
    while batch := run.pending():
        for perm in batch:
            p = np.exp(logs[PERMS.index(perm)][list(perm)])
            run.observe(perm, p / p.sum())
    return run.result()


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()  # type: ignore[no-any-return]


@pytest.mark.parametrize("pooling", ["gaussian", "mean"])
def test_the_planner_pools_a_question_asked_in_some_orders_by_the_posterior(pooling: str) -> None:
    """Every question the planner asked in two or three orders, once the pool was ready,
    answers with the posterior mean of its debiased logs; with ``pooling="mean"`` with their
    mean."""
    rng = np.random.default_rng(4)
    # without the harm check every order weighs alike (a weighed-down pair keeps the mean)
    planner = PermutationPlanner(N, "adaptive", pooling=pooling, harm_check=False)  # type: ignore[arg-type]
    checked = differs = 0
    for _ in range(200):
        ready = planner.gauss.ready
        res = _answered(planner, _question(rng, 0.6, SPREAD_BY_POSITION, 0.2)[1])
        if not 1 < len(res.orders) < N or not ready:
            continue
        assert res.prior is not None
        logs = np.log(
            [
                to_original(debias(p, res.prior), perm)
                for perm, p in zip(res.orders, res.order_probs, strict=True)
            ]
        )
        plain = _softmax(logs.mean(axis=0))
        if pooling == "mean":
            np.testing.assert_allclose(res.probs, plain, atol=1e-9)
        else:
            want = _softmax(planner.gauss.pooled(logs, list(res.orders)))
            np.testing.assert_allclose(res.probs, want, atol=1e-9)
            differs += int(not np.allclose(res.probs, plain, atol=1e-3))
        checked += 1
    assert checked >= 20, checked
    assert pooling == "mean" or differs == checked


def test_the_planner_keeps_the_mean_until_it_has_seen_enough_full_questions() -> None:
    planner = PermutationPlanner(N, "adaptive")
    assert planner.pooling == "gaussian"
    assert not planner.gauss.ready
    rng = np.random.default_rng(5)
    for _ in range(MIN_FULL - 1):
        planner.gauss.add_full(_question(rng, 1.0, SPREAD_BY_POSITION, 0.2)[1], PERMS)
    assert not planner.gauss.ready


def test_full_questions_of_a_run_feed_the_pool_and_the_state_keeps_it() -> None:
    planner = PermutationPlanner(N, "adaptive")
    rng = np.random.default_rng(6)
    for _ in range(3):  # the warm-up asks every order
        _, logs = _question(rng, 1.0, SPREAD_BY_POSITION, 0.2)
        run = planner.start()
        while batch := run.pending():
            for perm in batch:
                p = np.exp(logs[PERMS.index(perm)][list(perm)])
                run.observe(perm, p / p.sum())
        run.result()
    assert planner.gauss.count == 3
    state = json.loads(json.dumps(planner.to_dict()))
    assert PermutationPlanner.from_dict(state).gauss.to_dict() == planner.gauss.to_dict()
    del state["gauss"]  # stored before the Gaussian pooling: learned afresh
    assert PermutationPlanner.from_dict(state).gauss.count == 0


def _heteroscedastic(
    rng: np.random.Generator, n: int, noise_sd: np.ndarray, bias_sd: np.ndarray
) -> np.ndarray:
    """(n, n) logs of every cyclic order: content, a bias and noise whose spreads differ by
    position."""
    perms = [cyclic_shift(n, k) for k in range(n)]
    content, bias = rng.normal(size=n), bias_sd * rng.normal(size=n)
    logs = np.empty((n, n))
    for k, perm in enumerate(perms):
        shown = content[list(perm)] + bias + noise_sd * rng.normal(size=n)
        logs[k, list(perm)] = shown  # back to original option order
    return logs


@pytest.mark.parametrize("n", [4, 5, 10])
def test_the_bias_covariance_leaves_out_the_noise_share(n: int) -> None:
    """A question's bias read off its cyclic orders carries 1/n of the order noise: the
    covariance of the bias alone leaves it out (review: it was 0.25 too large here)."""
    rng = np.random.default_rng(8)
    perms = [cyclic_shift(n, k) for k in range(n)]
    bias_sd, noise_sd = np.full(n, 0.3), np.full(n, np.sqrt(n) * 0.5)  # noise/n: 0.25
    pool = GaussianPool(n)
    for _ in range(2000):
        pool.add_full(_heteroscedastic(rng, n, noise_sd, bias_sd), perms)
    _, bias, noise = pool._covariances()
    cen = np.eye(n) - 1.0 / n
    np.testing.assert_allclose(noise, n * 0.25 * cen, atol=0.05 * n)
    np.testing.assert_allclose(bias, 0.09 * cen, atol=0.05)


@pytest.mark.xfail(
    strict=True,
    reason="the noise's shape is learned mixed with the other positions' (0.16 where 0.08 is "
    "true, 0.33 where 0.44 is); undoing the mix measured worse on the recordings (the module)",
)
def test_the_noise_keeps_its_shape_by_position() -> None:
    """Noise that varies by position, learned with its shape."""
    n = N
    rng = np.random.default_rng(9)
    perms = [cyclic_shift(n, k) for k in range(n)]
    noise_sd = np.linspace(0.2, 0.8, n)
    pool = GaussianPool(n)
    for _ in range(2000):
        pool.add_full(_heteroscedastic(rng, n, noise_sd, np.full(n, 0.5)), perms)
    _, bias, noise = pool._covariances()
    cen = np.eye(n) - 1.0 / n
    np.testing.assert_allclose(noise, cen @ np.diag(noise_sd**2) @ cen, atol=0.02)
    np.testing.assert_allclose(bias, 0.25 * cen, atol=0.04)


def test_with_no_bias_of_its_own_the_covariances_stay_positive() -> None:
    """Taking the noise's share out of the bias can leave an estimate under zero (no bias of
    the question's own, few questions): it is held at zero, and the pooling stays finite."""
    rng = np.random.default_rng(10)
    pool = GaussianPool(N)
    for _ in range(MIN_FULL):
        pool.add_full(_heteroscedastic(rng, N, np.full(N, 0.5), np.zeros(N)), PERMS)
    content, bias, noise = pool._covariances()
    for cov in (content, bias, noise):
        assert np.linalg.eigvalsh(cov).min() >= -1e-12
    logs = _heteroscedastic(rng, N, np.full(N, 0.5), np.zeros(N))[[0, 2]]
    assert np.isfinite(pool.pooled(logs, [PERMS[0], PERMS[2]])).all()


def _planned_then_answered(
    planner: PermutationPlanner, logs: np.ndarray, others: np.random.Generator | None
) -> McqResult:
    """One question on a copy of ``planner``; with ``others``, full questions finish on that
    copy while its orders are out."""
    copy = PermutationPlanner.from_dict(planner.to_dict())
    run = copy.start()
    while batch := run.pending():
        for _ in range(20 if others is not None else 0):
            assert others is not None
            copy.gauss.add_full(_question(others, 3.0, SPREAD_BY_POSITION, 2.0)[1], PERMS)
        for perm in batch:
            p = np.exp(logs[PERMS.index(perm)][list(perm)])
            run.observe(perm, p / p.sum())
    return run.result()


def test_a_question_pools_with_the_covariances_of_the_state_it_was_planned_on() -> None:
    """As with the prior it divides out, a question's answer rests on the key's state when it
    was planned: full questions finished by others meanwhile (in this process, or adopted from
    another worker and reserved on a fresh copy) do not change it (review: they did)."""
    rng = np.random.default_rng(11)
    planner = PermutationPlanner(N, "adaptive", harm_check=False, budget=4.0)
    for _ in range(30):  # past the warm-up
        _answered(planner, _question(rng, 1.0, SPREAD_BY_POSITION, 0.2)[1])
    while not planner.gauss.ready:
        planner.gauss.add_full(_question(rng, 1.0, SPREAD_BY_POSITION, 0.2)[1], PERMS)
    pooled = 0
    for _ in range(20):
        logs = _question(rng, 0.3, SPREAD_BY_POSITION, 0.2)[1]
        alone = _planned_then_answered(planner, logs, None)
        if not 1 < len(alone.orders) < N:
            continue
        pooled += 1
        meanwhile = _planned_then_answered(planner, logs, np.random.default_rng(12))
        assert meanwhile.orders == alone.orders
        np.testing.assert_array_equal(meanwhile.probs, alone.probs)
    assert pooled >= 3, pooled


@pytest.mark.parametrize("n", [4, 5, 6])
def test_the_posterior_ignores_the_directions_no_answer_has(n: int) -> None:
    # Each order's answer is centred, so its all-ones direction is empty; the covariance of the
    # stacked answers is singular there by design. Rounding left those eigenvalues at ~1e-16
    # rather than 0, above numpy's pseudo-inverse cut-off, and inverting them moved the
    # posterior by up to 4e-3 (5 and 6 options). Against the same posterior computed on a basis
    # of the centred answers alone, where the covariance is invertible:
    from calibrators.permutation import cyclic_permutations

    rng = np.random.default_rng(1)
    perms = cyclic_permutations(n)
    q = np.linalg.qr(np.eye(n) - 1.0 / n)[0][:, : n - 1]  # orthonormal basis, sums to 0
    worst = 0.0
    for _ in range(40):
        g = GaussianPool(n)
        scale = rng.uniform(0.5, 5.0)
        for _ in range(int(rng.integers(MIN_FULL, 60))):
            g.add_full(rng.normal(scale=scale, size=(n, n)) + rng.normal(size=n), perms)
        for k in range(2, n):
            asked = [perms[i] for i in sorted(rng.choice(n, size=k, replace=False))]
            sc, sd, se = g._covariances()
            cen = np.eye(n) - 1.0 / n
            place = [cen @ np.eye(n)[:, list(p)] for p in asked]
            cov = np.vstack([cen] * k) @ sc @ np.vstack([cen] * k).T
            cov += np.vstack(place) @ sd @ np.vstack(place).T
            for o, m in enumerate(place):
                cov[o * n : (o + 1) * n, o * n : (o + 1) * n] += m @ se @ m.T
            b = np.kron(np.eye(k), q)
            ref = sc @ np.vstack([cen] * k).T @ b @ np.linalg.solve(b.T @ cov @ b, b.T)
            z = rng.normal(size=(k, n))
            z -= z.mean(axis=1, keepdims=True)
            worst = max(worst, float(np.abs(g.gain(asked) @ z.ravel() - ref @ z.ravel()).max()))
    assert worst < 1e-8, worst
