"""The offline MCQ evaluation on the real recorded ARC outputs.

The reference figures are those of shared/data/README.md. Adaptive debiasing is judged, on every
recorded model, against the goals of issue 10 at its default budget (the same verdict as the
summary line of ``calguard eval-offline``). Everything here drives the same PermutationPlanner the
proxy uses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calibrators.planner import PermutationPlanner
from guard.evaluation.mcq import (
    AdaptiveVerdict,
    OrderNotRecordedError,
    judge_adaptive,
    pride_paper_factory,
    replay_question,
    score_method,
)
from guard.evaluation.recorded import McqRecords, load_recorded
from guard.evaluation.table import Row, Stat


def test_row0_argmax_and_cyclic_average_match_the_reference(arc: McqRecords) -> None:
    none = score_method(arc, "none", lambda n: PermutationPlanner(n, "none"), 1)
    cyc = score_method(arc, "cyclic", lambda n: PermutationPlanner(n, "cyclic"), 1)
    assert none.accuracy.mean == pytest.approx(63.6, abs=0.05)
    assert none.balance.mean == pytest.approx(13.8, abs=0.05)
    assert none.calls.mean == 1.0
    assert cyc.accuracy.mean == pytest.approx(68.2, abs=0.05)
    assert cyc.balance.mean == pytest.approx(5.6, abs=0.05)
    assert cyc.calls.mean == 4.0


def test_pride_with_5_percent_estimation_matches_the_paper_protocol(arc: McqRecords) -> None:
    row = score_method(arc, "pride", pride_paper_factory(len(arc)), 20)
    assert row.accuracy.runs == 20
    assert row.accuracy.mean == pytest.approx(65.0, abs=1.0)
    assert row.balance.mean == pytest.approx(7.8, abs=1.0)
    assert row.calls.mean <= 1.16


RECORDED_MCQ = [
    "arc_0s_Llama-2-13b-chat-hf.jsonl",
    "arc_0s_Llama-2-7b-chat-hf.jsonl",
    "arc_0s_SmolLM2-135M-Instruct.jsonl",
    "arc_0s_llama-65b.jsonl",
]
# Goals the default planner is known to miss, and why (the README's table shows the figures):
# {(file, goal): reason}. strict: such a test fails once the goal is met, so that this list is
# kept honest. SmolLM2 missed "above the line" by 0.1 pt from the shown-answer prior to the
# Gaussian pooling, which meets it (+1.5) and raises the gauge of what two calls reach.
KNOWN_MISSES: dict[tuple[str, str], str] = {
    ("arc_0s_SmolLM2-135M-Instruct.jsonl", "near cyclic"): (
        "28.3 %, 1.15 pt under cyclic's 29.5 where the Gaussian-pooled far pair on every "
        "question reaches 28.8 % with hindsight (the prior and the covariances free); the "
        "planner pays for a 24-question warm-up out of the same two calls"
    ),
}

_verdicts: dict[str, AdaptiveVerdict] = {}


def verdict(recorded: Callable[[str], Path], name: str) -> AdaptiveVerdict:
    """Adaptive with the planner's own defaults at its default budget, over 20 arrival orders,
    with the baselines it is judged against (computed once per file)."""
    if name not in _verdicts:
        rec = load_recorded(recorded(name))
        assert isinstance(rec, McqRecords)
        _verdicts[name] = judge_adaptive(rec, 20, PermutationPlanner(rec.n_options).budget)
    return _verdicts[name]


def goal_cases(goal: str) -> list[Any]:
    return [
        pytest.param(
            name,
            id=name.removeprefix("arc_0s_").removesuffix(".jsonl"),
            marks=[pytest.mark.xfail(reason=KNOWN_MISSES[name, goal], strict=True)]
            if (name, goal) in KNOWN_MISSES
            else [],
        )
        for name in RECORDED_MCQ
    ]


@pytest.mark.parametrize("name", goal_cases("budget"))
def test_adaptive_stays_within_its_default_budget_on_every_arrival_order(
    recorded: Callable[[str], Path], name: str
) -> None:
    v = verdict(recorded, name)
    assert v.adaptive.calls.hi <= v.budget + 1e-9, v.summary()


@pytest.mark.parametrize("name", goal_cases("line"))
def test_adaptive_is_never_half_a_point_under_the_pride_to_cyclic_line(
    recorded: Callable[[str], Path], name: str
) -> None:
    v = verdict(recorded, name)
    assert v.vs_line >= -0.5, v.summary()


@pytest.mark.parametrize("name", goal_cases("above line"))
def test_where_cyclic_gains_a_point_adaptive_is_half_a_point_above_the_line(
    recorded: Callable[[str], Path], name: str
) -> None:
    v = verdict(recorded, name)
    if v.cyclic_gain < 1.0:
        pytest.skip(f"cyclic gains {v.cyclic_gain:+.1f} pt over PriDe here: the goal is the line")
    assert v.vs_line >= 0.5, v.summary()


@pytest.mark.parametrize("name", goal_cases("near cyclic"))
def test_where_cyclic_gains_a_point_in_reach_adaptive_is_within_a_point_of_it(
    recorded: Callable[[str], Path], name: str
) -> None:
    v = verdict(recorded, name)
    if v.cyclic_gain < 1.0:
        pytest.skip(f"cyclic gains {v.cyclic_gain:+.1f} pt over PriDe here")
    if not v.cyclic_in_reach:
        pytest.skip(
            f"two calls a question reach {v.ceiling:.1f}% with hindsight; cyclic's "
            f"{v.cyclic.accuracy.mean:.1f}% needs more"
        )
    assert v.vs_cyclic >= -1.0, v.summary()


@pytest.mark.parametrize("name", goal_cases("balance"))
def test_adaptive_balance_is_no_worse_than_prides(
    recorded: Callable[[str], Path], name: str
) -> None:
    v = verdict(recorded, name)
    assert v.adaptive.balance.mean <= v.pride.balance.mean, v.summary()


@pytest.mark.parametrize("name", goal_cases("no harm"))
def test_adaptive_is_never_half_a_point_under_the_better_of_raw_and_pride(
    recorded: Callable[[str], Path], name: str
) -> None:
    v = verdict(recorded, name)
    assert v.vs_best >= -0.5, v.summary()


def _row(acc: float, rstd: float, calls: float) -> Row:
    return Row("m", Stat.of([acc]), "RStd", Stat.of([rstd]), Stat.of([calls]))


def test_the_goals_can_fail() -> None:
    # The verdict is not a formality: PriDe's accuracy at twice PriDe's cost misses them.
    pride, cyc, raw = _row(65.0, 7.0, 1.15), _row(68.0, 5.0, 4.0), _row(63.0, 13.0, 1.0)
    worse = AdaptiveVerdict(2.0, _row(65.0, 8.0, 2.0), raw, pride, cyc)
    assert worse.vs_line == pytest.approx(65.0 - (65.0 + 3.0 * 0.85 / 2.85))
    # under the line, not above it, RStd over PriDe's, 3 points under cyclic (in reach)
    assert len(worse.misses()) == 4, worse.misses()
    assert AdaptiveVerdict(2.0, _row(67.5, 6.0, 2.0), raw, pride, cyc).misses() == []
    harmful = AdaptiveVerdict(2.0, _row(62.0, 6.0, 2.0), raw, pride, _row(64.0, 5.0, 4.0))
    assert harmful.best_cheap is pride
    assert "-3.00 pt under m" in harmful.misses()
    over = AdaptiveVerdict(2.0, _row(67.5, 6.0, 2.1), raw, pride, cyc)
    assert any("budget" in m for m in over.misses())


def _spread(accs: list[float], rstd: float, calls: float) -> Row:
    return Row("m", Stat.of(accs), "RStd", Stat.of([rstd] * len(accs)), Stat.of([calls]))


def test_the_standard_error_is_that_of_the_mean_over_arrival_orders() -> None:
    accs = [67.0, 69.5, 68.0, 66.5, 70.0]
    assert Stat.of(accs).se == pytest.approx(np.std(accs, ddof=1) / np.sqrt(len(accs)))
    assert Stat.of([68.0]).se == 0.0  # one run (cyclic averaging, raw): nothing varies


def test_the_summary_names_the_goals_another_set_of_orders_could_flip() -> None:
    # Adaptive 0.1 pt above "within a point of cyclic" with a standard error of 0.5: met, but a
    # coin flip; the line, PriDe and raw are far from their bars.
    pride, cyc, raw = _row(60.0, 7.0, 1.15), _row(68.0, 5.0, 4.0), _row(55.0, 13.0, 1.0)
    accs = [67.1 + d for d in (-1.0, 1.0, -1.0, 1.0, 0.0)]
    v = AdaptiveVerdict(2.0, _spread(accs, 5.0, 2.0), raw, pride, cyc)
    assert v.misses() == []
    assert v.se_cyclic == pytest.approx(Stat.of(accs).se)
    assert [c.split(" (")[0] for c in v.close_calls()] == ["within a point of cyclic"]
    assert "within one standard error of its bar: within a point of cyclic" in v.summary()
    # The same mean from one arrival order has no standard error, so nothing is a close call.
    assert AdaptiveVerdict(2.0, _row(67.1, 5.0, 2.0), raw, pride, cyc).close_calls() == []
    # PriDe's own spread counts, by its share of the line at adaptive's cost.
    noisy = _spread([59.0, 61.0, 59.0, 61.0], 7.0, 1.15)
    w = (4.0 - 2.0) / (4.0 - 1.15)
    v2 = AdaptiveVerdict(2.0, _spread(accs, 5.0, 2.0), raw, noisy, cyc)
    assert v2.se_line == pytest.approx(np.hypot(Stat.of(accs).se, w * noisy.accuracy.se))


def test_replay_refuses_an_order_that_was_not_recorded(arc: McqRecords) -> None:
    planner = PermutationPlanner(4, "full")
    with pytest.raises(OrderNotRecordedError, match="not a recorded cyclic shift"):
        replay_question(planner, arc.probs_cyclic[0])


def test_replay_answers_each_order_with_its_recorded_row(arc: McqRecords) -> None:
    # Cyclic averaging through the planner equals the average of the recorded rows mapped back.
    p = arc.probs_cyclic[0]
    res = replay_question(PermutationPlanner(4, "cyclic"), p)
    # Row k shows option (j + k) % 4 at position j: rolling by k puts it back; each recorded row
    # is normalised first (they sum to 0.9997..1).
    by_hand = np.mean([np.roll(p[k] / p[k].sum(), k) for k in range(4)], axis=0)
    np.testing.assert_allclose(res.probs, by_hand / by_hand.sum(), atol=1e-9)
