"""Review of the shown-answer prior: a state stored before it, and full questions chosen by
their answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calibrators.contrast_prior import ContrastPrior
from calibrators.permutation import cyclic_permutations, normalise


def _full_question(
    rng: np.random.Generator, key: np.ndarray
) -> list[tuple[tuple[int, ...], np.ndarray]]:
    # A content-heavy question (a strong model): its shown answer says little of its prior.
    content = rng.normal(scale=1.5, size=4)
    own = key + rng.normal(scale=0.3, size=4)
    obs = []
    for perm in cyclic_permutations(4):
        lp = own + content[list(perm)] + rng.normal(scale=0.2, size=4)
        obs.append((perm, normalise(np.exp(lp - lp.max()))))
    return obs


def test_an_upgraded_key_does_not_drop_the_full_questions_it_had() -> None:
    # A key stored before the shown-answer prior, with 40 full questions: the regression starts
    # afresh. Four refreshes later it must not replace the 44-question estimate by one resting
    # on 4 full questions (a variance several times larger: the prior shrinks away).
    rng = np.random.default_rng(7)
    key = np.log([0.15, 0.4, 0.3, 0.15])
    cp = ContrastPrior(4)
    for _ in range(40):
        cp.update(_full_question(rng, key))
    old = json.loads(json.dumps(cp.to_dict()))
    del old["regression"]
    cp = ContrastPrior.from_dict(4, old)
    classic = ContrastPrior.from_dict(4, old)  # the same key without the shown answers
    for k in range(200):
        obs = _full_question(rng, key)
        if k % 50 == 0:
            cp.update(obs)
            classic.update(obs)
        cp.add_shown(obs[0][1])
    assert cp.regression.paired.count == 4
    classic_var = classic.variance()
    assert classic_var is not None
    var = cp.variance()
    assert var is not None
    assert var <= classic_var * 1.01, (var, classic_var)


def test_the_regression_takes_out_part_of_the_bias_of_answer_chosen_full_questions() -> None:
    # Not only the warm-up and refresh questions ask every order: an adaptive question unsure
    # enough asks them all too (24 of 34 full questions on Llama-2-13b-chat), chosen by its
    # answers, so the full questions' mean prior is biased. The shown answers of *all*
    # questions take out the part of that selection they explain: over 12 arrival orders the
    # squared bias against the recording's own prior is 0.081, against 0.187 for the full
    # questions alone (the prior before the shown answers).
    from calibrators.permutation import question_prior
    from calibrators.planner import PermutationPlanner
    from calibrators.shown_prior import centred_log
    from guard.evaluation.mcq import arrival_orders, replay_question
    from guard.evaluation.recorded import load_recorded
    from tests.conftest import RECORDED

    path = RECORDED / "arc_0s_Llama-2-13b-chat-hf.jsonl"
    if not path.exists():
        pytest.skip("shared data not beside the checkout")
    rec = load_recorded(path)
    truth = np.mean([centred_log(question_prior(q)) for q in rec.probs_cyclic], axis=0)

    def bias2(shown_prior: bool) -> float:
        ests = []
        for order in arrival_orders(len(rec.probs_cyclic), 12):
            p = PermutationPlanner(rec.n_options, "adaptive", shown_prior=shown_prior)
            for qi in order:
                replay_question(p, rec.probs_cyclic[qi])
            ests.append(p.contrast.log_prior())
        return float(np.sum((np.mean(ests, axis=0) - truth) ** 2))

    with_shown, without = bias2(True), bias2(False)
    assert with_shown < 0.7 * without, (with_shown, without)
