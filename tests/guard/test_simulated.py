"""The simulated biased model: deterministic, and biased exactly as documented."""

from __future__ import annotations

import numpy as np

from calibrators.metrics import accuracy
from calibrators.permutation import cyclic_shift, question_prior
from guard.testing.simulated import SimulatedMcqModel


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
