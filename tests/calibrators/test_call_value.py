"""What one more option order is worth: the margin from which it seldom changes the answer."""

from __future__ import annotations

import json

import pytest

from calibrators.call_value import CallValue


def fill(v: CallValue, stage: int, margin: float, asked: int, changed: int) -> None:
    for i in range(asked):
        v.record(stage, margin, i < changed)


def test_no_threshold_before_enough_questions_or_with_the_floor_off() -> None:
    v = CallValue(0.1, min_questions=10)
    fill(v, 0, 2.0, 9, 0)
    assert v.threshold(0) is None
    fill(v, 0, 2.0, 1, 0)
    assert v.threshold(0) == 2.0
    off = CallValue(0.0)
    fill(off, 0, 2.0, 50, 0)
    assert off.threshold(0) is None


def test_threshold_is_where_the_change_rate_falls_under_the_floor() -> None:
    v = CallValue(0.1)
    fill(v, 0, 0.1, 20, 10)  # half the answers change at small margins
    fill(v, 0, 0.6, 20, 4)  # 20 %
    fill(v, 0, 1.1, 20, 1)  # 5 %: under the floor from here
    fill(v, 0, 1.6, 20, 0)
    assert v.threshold(0) == 1.0  # the lower edge of the bin of margin 1.1
    assert v.threshold(1) is None  # the stages are kept apart


def test_a_lone_quiet_bin_below_a_busy_one_is_pooled_not_believed() -> None:
    # Fitted non-increasing in the margin: a bin that changed nothing, followed by one that
    # changed a lot, is pooled with it rather than read as the place to stop.
    v = CallValue(0.1, min_support=3)
    fill(v, 0, 0.1, 20, 10)
    fill(v, 0, 0.6, 5, 0)
    fill(v, 0, 0.9, 10, 5)
    fill(v, 0, 2.1, 20, 0)
    assert v.threshold(0) == 2.0


def test_too_few_questions_in_a_quiet_block_are_not_enough() -> None:
    v = CallValue(0.1, min_support=3)
    fill(v, 0, 0.1, 20, 10)
    fill(v, 0, 3.1, 2, 0)
    assert v.threshold(0) is None


def test_margins_beyond_the_last_bin_are_counted_there() -> None:
    v = CallValue(0.1, bin_width=0.25, bins=8)
    fill(v, 1, 100.0, 12, 0)
    assert v.threshold(1) == 7 * 0.25


def test_stage_of_each_decision() -> None:
    assert [CallValue.stage(k) for k in (1, 2, 3, 9)] == [0, 1, 1, 1]


def test_state_round_trips_through_json() -> None:
    v = CallValue(0.05)
    fill(v, 0, 0.3, 7, 3)
    fill(v, 1, 4.0, 5, 1)
    back = CallValue.from_dict(json.loads(json.dumps(v.to_dict())))
    assert back.to_dict() == v.to_dict()
    assert back.threshold(0) == v.threshold(0)


def test_a_floor_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match="floor"):
        CallValue(1.0)
