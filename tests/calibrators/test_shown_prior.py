"""Every question's shown answer sharpens the key's prior (double sampling,
``calibrators.shown_prior``), by what it is worth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calibrators.contrast_prior import ContrastPrior
from calibrators.permutation import cyclic_permutations, normalise, question_prior
from calibrators.planner import PermutationPlanner
from calibrators.shown_prior import MIN_PAIRED, ShownRegression, centred_log
from guard.evaluation.mcq import replay_question
from guard.testing.simulated import FLAT_NEAR_RANDOM as FLAT
from guard.testing.simulated import SimulatedMcqModel


def _dist(lp: np.ndarray) -> np.ndarray:
    return normalise(np.exp(lp - lp.max()))


def test_the_moments_are_those_numpy_computes() -> None:
    rng = np.random.default_rng(0)
    r = ShownRegression(4)
    cs = rng.normal(size=(9, 4))
    ss = cs + rng.normal(scale=0.5, size=(9, 4))
    for c, s in zip(cs, ss, strict=True):
        r.add_paired(c, _dist(s))
    c_centred = cs - cs.mean(axis=1, keepdims=True)
    s_centred = ss - ss.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(r.paired.means[0], c_centred.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(r.paired.means[1], s_centred.mean(axis=0), atol=1e-12)
    full = np.cov(np.hstack([c_centred, s_centred]).T)
    cov = r.paired.cov()
    assert cov[0, 0] == pytest.approx(np.trace(full[:4, :4]))
    assert cov[0, 1] == pytest.approx(np.trace(full[:4, 4:]))
    assert cov[1, 1] == pytest.approx(np.trace(full[4:, 4:]))


def test_it_adds_nothing_until_there_are_full_questions_and_questions_beyond_them() -> None:
    r = ShownRegression(4)
    lp = np.log([0.1, 0.4, 0.3, 0.2])
    for k in range(MIN_PAIRED):
        assert r.beta() is None
        r.add_paired(lp + 0.1 * k, _dist(lp + 0.1 * k))
        r.add_shown(_dist(lp + 0.1 * k))
    assert r.beta() is not None
    assert r.estimate() is None  # every question seen so far was asked in every order
    r.add_shown(_dist(lp))
    assert r.estimate() is not None


def test_where_the_shown_answer_is_the_prior_every_question_counts_in_full() -> None:
    # s = c exactly: beta is 1 and the estimate is the mean shown answer of all questions, with
    # the variance of a mean over all of them.
    rng = np.random.default_rng(1)
    r = ShownRegression(4)
    priors = rng.normal(size=(200, 4))
    for k, lp in enumerate(priors):
        if k < 8:
            r.add_paired(lp, _dist(lp))
        r.add_shown(_dist(lp))
    assert r.beta() == pytest.approx(1.0)
    assert r.r_squared() == pytest.approx(1.0)
    est = r.estimate()
    assert est is not None
    lp, var = est
    np.testing.assert_allclose(lp, centred_log(_dist(priors.mean(axis=0))), atol=1e-9)
    paired_var = r.paired.cov()[0, 0]
    assert var == pytest.approx(paired_var / 200)


def test_where_the_shown_answer_says_nothing_it_is_the_full_questions_mean() -> None:
    # Every shown answer the same: no covariance, beta 0, the estimate is PriDe's mean.
    rng = np.random.default_rng(2)
    r = ShownRegression(4)
    same = _dist(np.array([1.0, 0.0, 0.0, -1.0]))
    priors = rng.normal(size=(6, 4))
    for lp in priors:
        r.add_paired(lp, same)
        r.add_shown(same)
    for _ in range(50):
        r.add_shown(same)
    assert r.beta() == 0.0
    assert r.r_squared() == pytest.approx(0.0)
    est = r.estimate()
    assert est is not None
    np.testing.assert_allclose(
        est[0], (priors - priors.mean(axis=1, keepdims=True)).mean(axis=0), atol=1e-12
    )
    assert est[1] == pytest.approx(r.paired.cov()[0, 0] / 6)


def test_it_stays_unbiased_when_the_shown_answers_lean_toward_the_gold_letters() -> None:
    # Content (here: every question's right option at A, shown first) moves the mean shown
    # answer, not the estimate: only the difference of two means of s enters it.
    rng = np.random.default_rng(3)
    key = np.log([0.2, 0.35, 0.3, 0.15])
    r = ShownRegression(4)
    for k in range(4000):
        lp = key + rng.normal(scale=0.4, size=4)
        shown = lp + np.array([0.8, 0.0, 0.0, 0.0]) + rng.normal(scale=0.1, size=4)
        if k % 10 == 0:
            r.add_paired(lp, _dist(shown))
        r.add_shown(_dist(shown))
    est = r.estimate()
    assert est is not None
    np.testing.assert_allclose(est[0], key - key.mean(), atol=0.03)
    naive = r.shown.means[0]
    assert abs(naive[0] - (key[0] - key.mean())) > 0.5  # the mean shown answer alone is off


def test_contrast_prior_keeps_it_through_json() -> None:
    rng = np.random.default_rng(4)
    cp = ContrastPrior(4)
    for k in range(30):
        p = np.stack([_dist(rng.normal(size=4)) for _ in range(4)])
        if k < 6:
            cp.update(list(zip(cyclic_permutations(4), p, strict=True)))
        cp.add_shown(p[0])
    again = ContrastPrior.from_dict(4, json.loads(json.dumps(cp.to_dict())))
    np.testing.assert_array_equal(again.prior(), cp.prior())
    assert again.variance() == cp.variance()
    assert cp.regression.estimate() is not None


def test_a_contrast_prior_stored_before_it_loads_and_learns_it_afresh() -> None:
    cp = ContrastPrior(4)
    old = cp.to_dict()
    del old["regression"]
    again = ContrastPrior.from_dict(4, old)
    assert again.regression.shown.count == 0


def _run(model: SimulatedMcqModel, questions: int, **kw: object) -> PermutationPlanner:
    planner = PermutationPlanner(model.n, "adaptive", **kw)  # type: ignore[arg-type]
    rec = model.record(questions)
    for q in rec.probs_cyclic:
        replay_question(planner, q)
    return planner


def _error(planner: PermutationPlanner, model: SimulatedMcqModel, questions: int) -> float:
    # Against the prior of every question (PriDe's, from every order of each)
    truth = np.mean(
        [np.log(question_prior(q)) for q in model.record(questions).probs_cyclic], axis=0
    )
    return float(np.sum((planner.contrast.log_prior() - (truth - truth.mean())) ** 2))


def test_on_a_model_of_position_bias_the_planner_learns_the_prior_from_every_question() -> None:
    with_shown = _run(FLAT, 600)
    without = _run(FLAT, 600, shown_prior=False)
    assert with_shown.contrast.regression.shown.count == 600
    assert without.contrast.regression.shown.count == 0
    # The same warm-up and refresh schedule (36 and 38 full questions), a far sharper prior:
    # squared error 0.0002 against 0.0145, and trusted (reliability 0.97 against 0: without it
    # the noise of 36 questions is as large as this weak prior, which stays undivided)
    assert _error(with_shown, FLAT, 600) < _error(without, FLAT, 600) / 5
    assert with_shown.contrast.variance() < without.contrast.variance() / 5  # type: ignore[operator]
    assert with_shown.prior_reliability() > 0.9 > without.prior_reliability()


def test_a_planner_state_stored_before_it_loads_with_it_on() -> None:
    planner = _run(FLAT, 40)
    state = json.loads(json.dumps(planner.to_dict()))
    del state["shown_prior"]
    del state["contrast"]["regression"]
    again = PermutationPlanner.from_dict(state)
    assert again.shown_prior
    assert again.contrast.regression.shown.count == 0
    replay_question(again, FLAT.record(41).probs_cyclic[40])
    assert again.contrast.regression.shown.count == 1


def test_a_kept_in_place_question_is_not_counted() -> None:
    # Its fixed option never moves, so its shown answer is not a draw of the same kind as a
    # full question's: both sides of the regression leave it out.
    planner = PermutationPlanner(4, "adaptive")
    run = planner.start("kept_in_place", fixed=(3,))
    while batch := run.pending():
        for perm in batch:
            run.observe(perm, normalise(np.array([0.4, 0.3, 0.2, 0.1])))
    run.result()
    assert planner.contrast.regression.shown.count == 0
    assert planner.contrast.regression.paired.count == 0
