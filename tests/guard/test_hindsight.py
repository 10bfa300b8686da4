"""The hindsight gauges: what two calls a question can reach when the prior is known."""

from __future__ import annotations

import numpy as np
import pytest

from guard.evaluation import hindsight
from guard.evaluation.hindsight import (
    alternating_share,
    hindsight_logs,
    prior_paid_answers,
    prior_paid_far_pair,
    two_call_answers,
    two_call_ceiling,
)
from guard.evaluation.recorded import McqRecords
from guard.testing.simulated import simulation_family


def test_every_order_goes_to_the_least_certain_questions_at_two_calls_a_question() -> None:
    rng = np.random.default_rng(0)
    q, n = 30, 4
    margins = rng.permutation(np.linspace(0.1, 3.0, q))
    logs = np.zeros((q, n, n))
    # The shown order favours option 0 by each question's margin over its runner-up, option 2
    # (whose own level varies, so the top log alone would rank them otherwise); the other
    # orders favour option 1 strongly enough that every order pooled picks it.
    runner_up = rng.uniform(0.5, 2.0, q)  # above the other two options (0)
    logs[:, 0, 0] = runner_up + margins
    logs[:, 0, 2] = runner_up
    logs[:, 1:, 1] = 10.0
    answers = two_call_answers(logs)
    moved = np.flatnonzero(answers["every order, least certain"] == 1)
    assert len(moved) == q // (n - 1)  # 1 + (n - 1) / (n - 1): two calls a question
    assert set(moved) == set(np.argsort(margins)[: q // (n - 1)])
    assert (answers["far pair"] == 1).all()  # far: 0 + 10 on option 1 beats option 0


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


def test_paying_for_the_prior_leaves_fewer_questions_every_order() -> None:
    q, n = 300, 4
    rng = np.random.default_rng(1)
    logs = np.zeros((q, n, n))
    logs[:, 0, 0] = rng.uniform(0.1, 3.0, q)  # the shown order: option 0 by the margin
    logs[:, 1:, 1] = 5.0  # every order pooled: option 1
    paid = prior_paid_answers(logs)  # warm-up 4, refresh 1 in 50, budget 2
    full = np.flatnonzero(paid == 1)
    assert set(range(4)) <= set(full)  # the warm-up asks every order, whatever its margin
    assert {53, 103, 153, 203, 253} <= set(full)  # the refresh: every 50th after it
    assert q + len(full) * (n - 1) <= 2.0 * q  # within two calls a question
    assert len(full) == 100  # (600 - 300) // 3: the budget is spent
    prior = set(range(4)) | {53, 103, 153, 203, 253}
    others = np.array(sorted(set(range(q)) - prior))
    least = others[np.argsort(logs[others, 0, 0])[: 100 - len(prior)]]
    assert set(full) - prior == set(least)  # what is left goes to the least certain
    assert (prior_paid_answers(logs, budget=1.0) == 1).sum() == 9  # nothing left but the prior


def test_the_paid_far_pair_counts_each_way_by_the_share_of_questions_it_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    q, n = 300, 4
    gold = np.zeros(q, dtype=np.int64)
    logs = np.zeros((q, n, n))
    logs[:, 0, 1] = 1.0  # the shown order alone: wrong on every question
    logs[:, 2, 0] = 3.0  # every order pooled: right
    # the pair, as the planner would pool it: right (its accounting, not its pooling, is tested)
    monkeypatch.setattr(hindsight, "gaussian_far_pair", lambda lg: np.zeros(len(lg), np.int64))
    # the warm-up (4) and the refresh (5: every 50th after it) ask every order: 9 questions,
    # 27 extra calls; of the other 291 questions, 273 of the 300 extra calls buy the far pair
    assert prior_paid_far_pair(logs, gold) == pytest.approx(100.0 * (9 + 273) / 300)
    assert prior_paid_far_pair(logs, gold, warmup=24) == pytest.approx(100.0 * (29 + 213) / 300)
    assert prior_paid_far_pair(logs, gold, budget=1.0) == pytest.approx(100.0 * 9 / 300)
    assert prior_paid_far_pair(logs, gold, alpha=0.0, warmup=0) == pytest.approx(100.0)


def test_the_alternating_share_is_a_third_for_isotropic_biases_and_reads_the_pattern() -> None:
    model = next(m for m in simulation_family() if m.name == "sim-strong-skewed")
    share = np.mean(
        [alternating_share(hindsight_logs(model.redrawn(d).record(300))) for d in range(3)]
    )
    assert abs(share - 1 / 3) < 0.04, share  # per-question priors drawn independently per position
    q, n = 200, 4
    rng = np.random.default_rng(2)
    content = rng.normal(0, 1, (q, 1, n))
    for pattern, expected in ((np.array([1.0, -1, 1, -1]), 1.0), (np.array([1.0, 1, -1, -1]), 0.0)):
        bias = rng.normal(0, 0.5, (q, 1)) * pattern  # each question's own position bias
        pos = (np.arange(n)[None, :] - np.arange(n)[:, None]) % n  # order k, option i -> position
        logs = content + bias[:, pos]
        assert alternating_share(logs) == pytest.approx(expected, abs=1e-9)
    assert np.isnan(alternating_share(np.zeros((3, 5, 5))))  # five options: no such pattern
