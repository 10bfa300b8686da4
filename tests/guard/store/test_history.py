"""The history's spacing (every point a key keeps was written when it was due, never more than
the cap) and what a point reads out of a state."""

from __future__ import annotations

import numpy as np
import pytest

from calibrators.label_prior import BatchCalibrator
from calibrators.planner import PermutationPlanner
from guard.store.history import due, point_of, stride, summary
from tests.guard.store.states import pride_question


@pytest.mark.parametrize("points", [2, 3, 8, 64])
def test_the_points_kept_are_few_written_and_spread_over_the_whole_life(points: int) -> None:
    written: list[int] = []
    for v in range(1, 5000):
        if due(v, points):
            written.append(v)
        s = stride(v, points)
        kept = [m for m in written if m % s == 0]  # what the store keeps after thinning
        assert kept == list(range(s, v + 1, s))  # every multiple of the stride was written
        assert len(kept) <= points
        assert v - kept[-1] < s if kept else v < s  # the last point is at most a stride old
        assert len(kept) >= min(v, points // 2)  # never thinned below half the cap
    # Writes grow with the log of the traffic, not with it.
    assert len(written) < points + (points // 2 + 1) * 13


def test_no_history_at_zero_points() -> None:
    assert not any(due(v, 0) for v in range(1, 100))
    assert point_of(1, {"pride": {}}, 0) is None


def test_a_summary_holds_the_learned_priors_and_nothing_else() -> None:
    state, _ = pride_question(None)
    for _ in range(5):
        state, _ = pride_question(state)
    batch = BatchCalibrator(2)
    batch.update(np.log([0.8, 0.2]))
    state.update({
        "cyclic": PermutationPlanner(4, "cyclic").to_dict(),  # learns no prior
        "batch": batch.to_dict(),
        "contextual": {"log_prior": list(np.log([0.25, 0.75]))},
        "seen": 9,
        "pool": {"capacity": 1, "words": []},
        "traffic": {"pride": {"requests": 6, "calls": 24}},
        "adaptive": {"n": 4, "method": "adaptive"},  # unreadable: left out, not an error
    })  # fmt: skip
    got = summary(state)
    assert sorted(got) == ["batch", "contextual", "pride"]
    assert got["pride"]["seen"] == 6
    assert got["pride"]["prior"][1] == max(got["pride"]["prior"])  # the bias it learned
    assert got["batch"]["seen"] == 1
    assert got["contextual"] == {"seen": 9, "prior": [0.25, 0.75]}
    assert point_of(2, state, 64) == got
    assert point_of(3, state, 2) is None  # not due: 3 is past 2 points of stride 1
