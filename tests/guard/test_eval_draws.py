"""Judging a simulated model over several draws of its questions (guard.evaluation.draws)."""

from __future__ import annotations

import numpy as np
import pytest

from guard.evaluation.draws import DrawsVerdict, judge_draws, pool_rows
from guard.evaluation.mcq import AdaptiveVerdict
from guard.evaluation.table import Row, Stat
from guard.testing.simulated import SimulatedMcqModel, simulation_family


def test_redrawn_keeps_the_model_and_draws_other_questions() -> None:
    model = SimulatedMcqModel(strength=1.0, seed=3, name="m")
    assert model.redrawn(0) == model
    other = model.redrawn(1)
    assert (other.prior, other.strength, other.name) == (model.prior, model.strength, "m")
    a, b = model.record(40), other.record(40)
    assert not np.array_equal(a.probs_cyclic, b.probs_cyclic)
    np.testing.assert_array_equal(other.record(40).probs_cyclic, b.probs_cyclic)


def _row(method: str, acc: float, rstd: float, calls: tuple[float, float]) -> Row:
    return Row(
        method,
        Stat(acc, 0.0, acc, acc, 3),
        "RStd",
        Stat(rstd, 0.0, rstd, rstd, 3),
        Stat(calls[0], 0.0, calls[0], calls[1], 3),
    )


def test_pool_rows_averages_the_draws_and_keeps_the_highest_calls() -> None:
    draws = [
        [_row("raw", 50.0, 4.0, (1.0, 1.0)), _row("adaptive", 60.0, 2.0, (1.9, 1.95))],
        [_row("raw", 54.0, 6.0, (1.0, 1.0)), _row("adaptive", 64.0, 3.0, (1.8, 2.01))],
    ]
    raw, adaptive = pool_rows(draws)
    assert (raw.method, raw.accuracy.mean, raw.balance.mean) == ("raw", 52.0, 5.0)
    assert adaptive.accuracy.mean == 62.0
    assert adaptive.balance.mean == 2.5
    assert adaptive.calls.mean == pytest.approx(1.85)
    assert adaptive.calls.hi == 2.01  # a budget is a cap: any order of any draw over it counts
    assert adaptive.accuracy.runs == 2
    with pytest.raises(ValueError, match="same methods"):
        pool_rows([draws[0], list(reversed(draws[1]))])


def test_judge_draws_pools_the_per_draw_verdicts() -> None:
    model = SimulatedMcqModel(strength=1.5, seed=11, prior_spread=0.3, name="sim-test")
    v = judge_draws(model.name, (model.redrawn(d).record(60) for d in range(3)), seeds=2)
    assert v.draws == 3
    per = v.per_draw
    assert v.pooled.adaptive.accuracy.mean == pytest.approx(
        np.mean([d.adaptive.accuracy.mean for d in per])
    )
    assert v.pooled.pride.balance.mean == pytest.approx(
        np.mean([d.pride.balance.mean for d in per])
    )
    assert v.balance_missed_draws() == sum(
        d.adaptive.balance.mean > d.pride.balance.mean for d in per
    )
    assert v.cyclic_balance_missed_draws() == sum(
        d.cyclic.balance.mean > d.pride.balance.mean for d in per
    )
    assert v.missed_draws() == sum(bool(d.misses()) for d in per)
    assert "sim-test over 3 draws" in v.summary()
    with pytest.raises(ValueError, match="at least one draw"):
        judge_draws("none", [], seeds=1)


def test_the_close_calls_over_draws_compare_the_methods_draw_by_draw() -> None:
    # Two draws, one ten points easier than the other for every method alike: adaptive sits
    # 0.2 pt over "the better of raw/PriDe"'s bar on both. Draw by draw that never varies, so
    # it is no close call; the rows' spreads over draws (10 pt apart) would make it one.
    def draw(shift: float) -> AdaptiveVerdict:
        return AdaptiveVerdict(
            2.0,
            _row("adaptive", 59.7 + shift, 3.0, (2.0, 2.0)),
            _row("raw", 50.0 + shift, 9.0, (1.0, 1.0)),
            _row("PriDe", 60.0 + shift, 5.0, (1.15, 1.15)),
            _row("cyclic", 61.0 + shift, 2.0, (4.0, 4.0)),
        )

    per = (draw(0.0), draw(10.0))
    raw, pride, cyc, adaptive = pool_rows([[v.raw, v.pride, v.cyclic, v.adaptive] for v in per])
    pooled = AdaptiveVerdict(2.0, adaptive, raw, pride, cyc)
    assert pooled.vs_best == pytest.approx(-0.3)
    v = DrawsVerdict("m", pooled, per)
    assert v.paired_errors()["the better of raw/PriDe"] == pytest.approx(0.0)
    assert not any("raw/PriDe" in c for c in pooled.close_calls(v.paired_errors()))
    assert any("raw/PriDe" in c for c in pooled.close_calls())  # unpaired: a close call
    assert "raw/PriDe (" not in v.summary()


def test_the_family_has_five_option_models() -> None:
    five = [m for m in simulation_family() if m.n == 5]
    assert len(five) >= 2
    assert min(m.strength for m in five) < 0.5 < 2.0 < max(m.strength for m in five)
    rec = five[0].record(4)
    assert rec.n_options == 5
    assert rec.probs_cyclic.shape == (4, 5, 5)
