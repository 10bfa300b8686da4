"""The simulated biased model: deterministic, and biased exactly as documented."""

from __future__ import annotations

import numpy as np

from calibrators.metrics import accuracy
from calibrators.permutation import cyclic_shift, question_prior
from guard.testing.simulated import SimulatedMcqModel, simulation_family


def test_same_question_same_order_same_answer() -> None:
    m = SimulatedMcqModel(seed=3)
    np.testing.assert_array_equal(m.answer(7, (1, 2, 3, 0)), m.answer(7, (1, 2, 3, 0)))
    assert not np.allclose(m.answer(7, (1, 2, 3, 0)), m.answer(8, (1, 2, 3, 0)))
    assert m.question(7)[0] == SimulatedMcqModel(seed=3).question(7)[0]


def test_without_order_noise_pride_recovers_the_prior_exactly() -> None:
    m = SimulatedMcqModel(prior=(0.1, 0.2, 0.3, 0.4), order_noise=0.0)
    for q in range(5):
        p = np.stack([m.answer(q, cyclic_shift(4, k)) for k in range(4)])
        np.testing.assert_allclose(question_prior(p), [0.1, 0.2, 0.3, 0.4], atol=1e-9)


def test_strength_buys_accuracy_and_zero_strength_is_chance() -> None:
    accs = []
    for s in (0.0, 2.0, 6.0):
        rec = SimulatedMcqModel(prior=(0.25,) * 4, strength=s, order_noise=0.0).record(400)
        accs.append(accuracy(rec.probs_cyclic[:, 0].argmax(axis=1), rec.gold))
    assert 15 < accs[0] < 35  # 4 options: 25 % ± sampling noise of 400 questions
    assert accs[0] < accs[1] < accs[2]
    assert accs[2] > 95


def test_order_penalty_makes_every_order_but_the_shown_one_worse() -> None:
    m = SimulatedMcqModel(strength=2.0, order_penalty=1.0, order_noise=0.3)
    rec = m.record(400)
    per_order = [
        accuracy(np.roll(rec.probs_cyclic[:, k], k, axis=1).argmax(axis=1), rec.gold)
        for k in range(4)
    ]
    assert min(per_order[0] - a for a in per_order[1:]) > 5.0
    # The shown order is the only one that keeps the full pull toward the right option.
    plain = SimulatedMcqModel(strength=2.0, order_noise=0.3).record(400)
    np.testing.assert_allclose(rec.probs_cyclic[:, 0], plain.probs_cyclic[:, 0])


def test_prior_spread_moves_each_questions_prior_but_not_the_keys() -> None:
    m = SimulatedMcqModel(prior=(0.1, 0.2, 0.3, 0.4), order_noise=0.0, prior_spread=0.5)
    priors = [
        question_prior(np.stack([m.answer(q, cyclic_shift(4, k)) for k in range(4)]))
        for q in range(300)
    ]
    assert not np.allclose(priors[0], priors[1])
    log_mean = np.log(priors).mean(axis=0)
    centred = log_mean - log_mean.mean()
    want = np.log([0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(centred, want - want.mean(), atol=0.1)


def test_the_simulation_family_is_named_and_varied() -> None:
    family = simulation_family()
    names = [m.name for m in family]
    assert len(set(names)) == len(names) >= 6
    assert any(m.order_penalty > 0 for m in family)
    assert min(m.strength for m in family) < 0.5 < 3.0 <= max(m.strength for m in family)
    assert family[0].record(5).name == names[0]
