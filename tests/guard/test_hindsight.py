"""The hindsight gauges: what two calls a question can reach when the prior is known."""

from __future__ import annotations

import numpy as np

from guard.evaluation.hindsight import hindsight_logs, two_call_answers, two_call_ceiling
from guard.evaluation.recorded import McqRecords
from guard.testing.simulated import simulation_family


def test_every_order_goes_to_the_least_certain_questions_at_two_calls_a_question() -> None:
    rng = np.random.default_rng(0)
    q, n = 30, 4
    margins = rng.permutation(np.linspace(0.1, 3.0, q))
    logs = np.zeros((q, n, n))
    # The shown order favours option 0 by each question's margin; the other orders favour
    # option 1 strongly enough that every order pooled picks it.
    logs[:, 0, 0] = margins
    logs[:, 1:, 1] = 5.0
    answers = two_call_answers(logs)
    moved = np.flatnonzero(answers["every order, least certain"] == 1)
    assert len(moved) == q // (n - 1)  # 1 + (n - 1) / (n - 1): two calls a question
    assert set(moved) == set(np.argsort(margins)[: q // (n - 1)])
    assert (answers["far pair"] == 1).all()  # far: 0 + 5 on option 1 beats the margin


def test_concentrating_the_calls_beats_the_far_pair_where_order_noise_is_independent() -> None:
    # sim-strong-skewed: cyclic averaging 94.4 % over 10 draws, the far pair on every question
    # 93.2 %, every order for the least certain third 94.1 % (README, "What limits it").
    model = next(m for m in simulation_family() if m.name == "sim-strong-skewed")
    gains = []
    for d in range(3):
        rec = model.redrawn(d).record(300)
        answers = two_call_answers(hindsight_logs(rec))
        acc = {k: float(np.mean(v == rec.gold) * 100) for k, v in answers.items()}
        gains.append(acc["every order, least certain"] - acc["far pair"])
        assert two_call_ceiling(rec) == max(acc.values())
    assert np.mean(gains) > 0.5, gains


def test_the_ceiling_uses_the_labels_only_to_choose_between_the_two(arc: McqRecords) -> None:
    answers = two_call_answers(hindsight_logs(arc))
    shuffled = McqRecords(arc.name, arc.probs_cyclic, np.roll(arc.gold, 1), arc.options)
    assert two_call_answers(hindsight_logs(shuffled)).keys() == answers.keys()
    for k, pred in two_call_answers(hindsight_logs(shuffled)).items():
        np.testing.assert_array_equal(pred, answers[k])  # the answers never read the labels
