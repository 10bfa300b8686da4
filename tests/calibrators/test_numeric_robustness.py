"""Adversarial numeric inputs: what one bad upstream answer may and may not do to a key's state.

A key's planner state lives for the whole deployment, so an answer that slips a NaN into it
spoils every later question of the key, and a state with NaN in it is not valid JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from calibrators.permutation import normalise
from calibrators.planner import PermutationPlanner, QuestionRun


def _answer_all(run: QuestionRun, first: list[float]) -> None:
    """Answer the first order handed out with ``first``, every other one uniformly."""
    given = False
    while batch := run.pending():
        for perm in batch:
            if not given:
                given = True
                run.observe(perm, first)
            else:
                run.observe(perm, [0.25, 0.25, 0.25, 0.25])


@pytest.mark.parametrize(
    "bad",
    [
        [float("nan"), 0.3, 0.3, 0.4],
        [float("inf"), 1.0, 1.0, 1.0],
        [0.2, 0.3, float("nan"), float("inf")],
    ],
)
def test_non_finite_answer_is_refused_and_leaves_the_key_state_clean(bad: list[float]) -> None:
    # Before: accepted; the warm-up question's NaN went into PriDe's estimate and the contrast
    # prior, every later answer of the key came out NaN, and to_dict() was no longer JSON.
    planner = PermutationPlanner(4, "adaptive")
    run = planner.start()
    (perm, *rest) = run.pending()
    with pytest.raises(ValueError, match="finite"):
        run.observe(perm, bad)
    # The order stays outstanding: the caller can drop it and the question rests on the rest.
    run.drop(perm)
    for p in rest:
        run.observe(p, [0.1, 0.2, 0.3, 0.4])
    while batch := run.pending():
        for p in batch:
            run.observe(p, [0.1, 0.2, 0.3, 0.4])
    assert np.all(np.isfinite(run.result().probs))
    assert np.all(np.isfinite(planner.current_prior()))
    json.dumps(planner.to_dict(), allow_nan=False)
    nxt = planner.start()
    _answer_all(nxt, [0.7, 0.1, 0.1, 0.1])
    assert np.all(np.isfinite(nxt.result().probs))


def test_normalise_survives_a_sum_that_overflows() -> None:
    # Before: the sum overflowed to inf and every entry became 0 (not a distribution).
    out = normalise([1e308, 1e308, 1.0, 1.0])
    assert np.all(np.isfinite(out))
    assert out.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(out[:2], [0.5, 0.5])
    rows = normalise([[1e308, 1e308, 1.0], [1.0, 2.0, 1.0]])
    np.testing.assert_allclose(rows.sum(axis=-1), [1.0, 1.0])
    np.testing.assert_allclose(rows[1], [0.25, 0.5, 0.25])


def test_huge_unnormalised_answer_keeps_its_favourite() -> None:
    # Unnormalised weights (exp of large logits) that overflow when summed: the result used to
    # be the uniform distribution, and the stored order probabilities all zero.
    planner = PermutationPlanner(4, "none")
    run = planner.start()
    (perm,) = run.pending()
    run.observe(perm, [1.0, 1.7e308, 1.7e308, 1.0])
    res = run.result()
    assert res.order_probs[0].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(res.probs, [0.0, 0.5, 0.5, 0.0], atol=1e-9)


def test_an_unlimited_budget_does_not_stop_extra_orders() -> None:
    # A request's guard.budget of 1e400 parses to inf. Before: the guard's share for questions
    # in flight was 0 * inf = NaN, so no extra order was ever affordable and an unlimited budget
    # asked fewer orders than budget 2 (only the warm-up's).
    from guard.testing.simulated import simulation_family

    model = simulation_family()[2]  # sim-mid-skewed: unsure answers, extra orders wanted
    planner = PermutationPlanner(4, "adaptive", budget=float("inf"))
    extra = 0
    for q in range(60):
        run = planner.start()
        while batch := run.pending():
            for perm in batch:
                run.observe(perm, model.answer(q, perm))
        res = run.result()
        if res.role == "adaptive":
            extra += res.calls - 1
    assert extra > 0
    assert math.isfinite(planner.threshold)


@pytest.mark.parametrize(
    "setting", ["budget", "threshold", "max_threshold", "lr", "prior_confidence"]
)
def test_nan_settings_are_refused(setting: str) -> None:
    # Before: accepted, and the online threshold became NaN (stored as NaN: not valid JSON).
    kwargs: dict[str, Any] = {setting: float("nan")}
    with pytest.raises(ValueError, match=setting):
        PermutationPlanner(4, "adaptive", **kwargs)


def test_an_infinite_learning_rate_is_refused() -> None:
    # Before: lr * (target - extras) is inf * 0 = NaN when the two meet: a NaN threshold.
    with pytest.raises(ValueError, match="lr"):
        PermutationPlanner(4, "adaptive", lr=float("inf"))


@pytest.mark.parametrize(
    ("handling", "fixed"),
    [("kept_in_place", (7,)), ("kept_in_place", (-1,)), ("undebiased", (9,)), ("bogus", ())],
)
def test_a_refused_question_leaves_the_state_as_it_was(
    handling: str, fixed: tuple[int, ...]
) -> None:
    # Before: the ValueError came after the question was counted (started + 1, no calls), so
    # every refused question was credit the budget guard later spent; an unknown handling was
    # taken as a permuted question.
    planner = PermutationPlanner(4, "adaptive")
    before = json.dumps(planner.to_dict())
    with pytest.raises(ValueError, match=r"handling|out of range"):
        planner.start(handling, fixed)  # type: ignore[arg-type]
    assert json.dumps(planner.to_dict()) == before
