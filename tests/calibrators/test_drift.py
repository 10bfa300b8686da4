"""The drift check: a key whose model changed under it learns afresh (calibrators.drift)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from calibrators.drift import DriftCheck, chi2_sf
from calibrators.metrics import rstd
from calibrators.planner import PermutationPlanner
from calibrators.planner_state import NEWER_SETTINGS
from guard.evaluation.mcq import replay_question
from guard.testing.simulated import SimulatedMcqModel, simulation_family


@pytest.mark.parametrize(
    ("x", "k", "p"),
    [(3.841, 1, 0.05), (5.991, 2, 0.05), (7.815, 3, 0.05), (13.277, 4, 0.01), (20.515, 5, 0.001)],
)
def test_the_chi_square_tail_is_right_for_odd_and_even_degrees(x: float, k: int, p: float) -> None:
    assert chi2_sf(x, k) == pytest.approx(p, abs=2e-5)
    assert chi2_sf(0.0, k) == 1.0


def _model(name: str) -> SimulatedMcqModel:
    return next(m for m in simulation_family() if m.name == name)


def _shown(model: SimulatedMcqModel, questions: int) -> np.ndarray:
    return model.record(questions).probs_cyclic[:, 0]


def test_answers_that_do_not_change_do_not_trip_it() -> None:
    # Five keys of 2,000 questions each, the model never changing: the chance of any trip over
    # a key's whole life is at most 1 % (calibrators.drift.ALPHA); these seeds trip none.
    shown = _shown(_model("sim-mid-skewed"), 2000)
    for seed in range(5):
        check = DriftCheck(4)
        order = np.random.default_rng(seed).permutation(len(shown))
        assert not any(check.add(s) for s in shown[order]), seed
    assert check.looks == 16  # the first four windows only build the earlier questions up


def test_a_model_swapped_behind_the_key_trips_it_soon_after() -> None:
    # 1,000 questions of one model, then its position bias reversed: tripped within 800.
    before = _model("sim-mid-skewed")
    after = replace(before, prior=tuple(reversed(before.prior)), seed=7)
    check = DriftCheck(4)
    assert not any(check.add(s) for s in _shown(before, 1000))
    tripped = [i for i, s in enumerate(_shown(after, 1000)) if check.add(s)]
    assert tripped, "the swap went unnoticed"
    assert tripped[0] < 800


def _run(planner: PermutationPlanner, model: SimulatedMcqModel, questions: int) -> np.ndarray:
    rec = model.record(questions)
    pred = np.array([replay_question(planner, rec.probs_cyclic[q]).index for q in range(questions)])
    return np.asarray(rstd(pred, rec.gold, model.n))


def test_the_planner_learns_the_new_prior_after_a_swap_and_balances_better() -> None:
    before = _model("sim-skewed-interaction")
    after = replace(before, prior=tuple(reversed(before.prior)), seed=9)
    watched = PermutationPlanner(4, "adaptive")
    blind = PermutationPlanner(4, "adaptive", drift_check=False)
    for p in (watched, blind):
        _run(p, before, 1200)
    assert watched.relearned == 0
    balance = {id(p): float(_run(p, after, 800)) for p in (watched, blind)}
    assert watched.relearned == 1
    assert blind.relearned == 0
    # The new model's own prior, against what each key divides out after the swap.
    true = np.log(after.prior) - np.log(after.prior).mean()

    def error(p: PermutationPlanner) -> float:
        lp = np.log(p.current_prior())
        return float(np.sum((lp - lp.mean() - true) ** 2))

    assert error(watched) < error(blind) / 2
    assert balance[id(watched)] < balance[id(blind)]


def test_relearning_keeps_the_settings_and_the_spending() -> None:
    p = PermutationPlanner(5, "adaptive", budget=2.5, value_floor=0.05, pooling="mean")
    _run(p, _model("sim5-strong"), 120)
    spent, started, threshold = p.spent, p.started, p.threshold
    p.relearn()
    assert (p.spent, p.started, p.threshold) == (spent, started, threshold)
    assert (p.budget, p.value.floor, p.pooling, p.n) == (2.5, 0.05, "mean", 5)
    assert p.warmed == 0
    assert p.sure_at is None
    assert p.contrast.full == 0
    assert p.warming()  # the next question warms up again
    assert p.relearned == 1


def test_the_check_survives_a_json_round_trip_mid_window() -> None:
    model = _model("sim-strong-skewed")
    a = PermutationPlanner(4, "adaptive")
    _run(a, model, 450)  # four windows and half of the fifth
    b = PermutationPlanner.from_dict(json.loads(json.dumps(a.to_dict())))
    assert b.drift.to_dict() == a.drift.to_dict()
    later = replace(model, prior=tuple(reversed(model.prior)), seed=3)
    for p in (a, b):
        _run(p, later, 900)
    assert a.to_dict() == b.to_dict()
    assert a.relearned == b.relearned


def test_a_state_stored_before_the_check_starts_watching_now() -> None:
    p = PermutationPlanner(4, "adaptive")
    _run(p, _model("sim-strong-skewed"), 60)
    d = p.to_dict()
    for key in ("drift_check", "drift", "relearned"):
        del d[key]
    old = PermutationPlanner.from_dict(d)
    assert "drift_check" in NEWER_SETTINGS
    assert old.drift_check
    assert old.relearned == 0
    assert old.drift.looks == 0
    assert old.drift.current[0] == 0


def test_a_question_planned_before_a_relearn_does_not_cut_the_new_warm_up_short() -> None:
    # Several workers share a key: a question planned on a snapshot before another question's
    # adoption made the key learn afresh is adopted (or reserved) after it. Its planning
    # counted against the old warm-up and refresh schedule; counted against the new one, it
    # set after_warmup > 0 and the new warm-up ended at ``warmup`` questions, never extended
    # while the prior is unsure (max_warmup).
    model = _model("sim-near-random")
    store = PermutationPlanner(4, "adaptive")
    _run(store, model, 200)
    snapshot = PermutationPlanner.from_dict(store.to_dict())
    in_flight = snapshot.start()
    rec = model.record(1)
    while batch := in_flight.pending():
        for perm in batch:
            k = next(k for k in range(4) if perm == tuple((i + k) % 4 for i in range(4)))
            in_flight.observe(perm, rec.probs_cyclic[0][k])
    assert in_flight.counted["after_warmup"] == 1
    quiet = PermutationPlanner.from_dict(store.to_dict())
    quiet.relearn()
    busy = PermutationPlanner.from_dict(quiet.to_dict())
    busy.adopt(in_flight)
    assert (busy.warmed, busy.after_warmup, busy.sure_at) == (0, 0, None)
    assert busy.started == quiet.started + 1  # its calls still count against the budget
    assert busy.spent == quiet.spent + in_flight.calls
    _run(quiet, model, 40)
    _run(busy, model, 40)
    assert busy.warmed == quiet.warmed > quiet.warmup


def test_a_copy_with_a_request_budget_below_the_refresh_cost_can_learn_afresh() -> None:
    # The proxy plans a request's own guard.budget (1.0: no extra orders, taken as given) on a
    # copy of the key's state; the drift check tripping on that copy made result() raise the
    # settings check's ValueError (budget below the refresh's cost) after every call was made.
    p = PermutationPlanner(4, "adaptive")
    _run(p, _model("sim-strong-skewed"), 60)
    p.budget = 1.0
    p.relearn()
    assert (p.budget, p.relearned, p.warmed) == (1.0, 1, 0)
