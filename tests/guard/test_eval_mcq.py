"""The offline MCQ evaluation on the real recorded ARC outputs of Llama-2-13b-chat.

The reference figures are those of shared/data/README.md; the adaptive ones are the targets of
the calibration-core issue. Everything here drives the same PermutationPlanner the proxy uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibrators.planner import PermutationPlanner
from guard.evaluation.mcq import (
    OrderNotRecordedError,
    adaptive_factory,
    cost_line,
    pride_paper_factory,
    replay_question,
    score_method,
)
from guard.evaluation.recorded import McqRecords, load_recorded


def _mcq_files(recorded: Path) -> list[McqRecords]:
    recs = [load_recorded(p) for p in sorted(recorded.glob("*.jsonl"))]
    return [r for r in recs if isinstance(r, McqRecords)]


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


def test_adaptive_at_its_default_budget_beats_the_targets(arc: McqRecords) -> None:
    row = score_method(arc, "adaptive", adaptive_factory(PermutationPlanner(4).budget), 20)
    assert row.accuracy.mean >= 67.7
    assert row.balance.mean <= 5.6
    assert row.calls.hi <= 2.0  # every one of the 20 arrival orders, not just on average


def test_adaptive_is_on_or_above_the_pride_to_cyclic_line_on_every_file(recorded_dir: Path) -> None:
    files = _mcq_files(recorded_dir)
    assert files, "no MCQ recordings found"
    for rec in files:
        pride = score_method(rec, "pride", pride_paper_factory(len(rec)), 20)
        cyc = score_method(rec, "cyclic", lambda n: PermutationPlanner(n, "cyclic"), 1)
        for budget in (1.5, 2.0, 3.0):
            row = score_method(rec, "adaptive", adaptive_factory(budget), 20)
            at = row.calls.mean
            assert row.accuracy.mean >= cost_line(pride, cyc, at, "accuracy"), (rec.name, budget)
            assert row.balance.mean <= cost_line(pride, cyc, at, "balance"), (rec.name, budget)


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
