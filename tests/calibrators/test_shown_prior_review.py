"""Review of the shown-answer prior (commit 79939da): a state stored before it."""

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


@pytest.mark.xfail(
    strict=True,
    reason="not fixed: W taking only warm-up/refresh questions removes the bias but raises the "
    "mean squared error (0.106 -> 0.160 here); the docstring's 'unbiased' claim is what is wrong",
)
def test_the_full_questions_are_chosen_by_the_schedule_not_by_their_answers() -> None:
    # The module's premise for "unbiased": W is the warm-up and refresh questions. An adaptive
    # question unsure enough to ask every cyclic order joins W too (24 of 34 on
    # Llama-2-13b-chat): chosen by its answers. Averaged over 12 arrival orders the estimate
    # then sits off the recording's own prior by a squared bias (0.081) larger than the
    # variance it reports (0.049); without those questions in W, 0.015.
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
    ests, variances = [], []
    for order in arrival_orders(len(rec.probs_cyclic), 12):
        p = PermutationPlanner(rec.n_options, "adaptive")
        for qi in order:
            replay_question(p, rec.probs_cyclic[qi])
        ests.append(p.contrast.log_prior())
        variances.append(p.contrast.variance())
    bias2 = float(np.sum((np.mean(ests, axis=0) - truth) ** 2))
    assert bias2 < float(np.mean(variances)), (bias2, float(np.mean(variances)))
