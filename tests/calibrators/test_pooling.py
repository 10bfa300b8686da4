"""Pooling with the question's own position bias fitted (calibrators/pooling.py)."""

from __future__ import annotations

import numpy as np
import pytest

from calibrators.permutation import cyclic_shift
from calibrators.planner import PermutationPlanner
from calibrators.pooling import position_free


def _answers(content: np.ndarray, bias: np.ndarray, shifts: list[int]) -> np.ndarray:
    n = len(content)
    rows = []
    for k in shifts:
        perm = cyclic_shift(n, k)
        shown = np.array([content[perm[j]] + bias[j] for j in range(n)]) + 0.3 * k  # a level
        rows.append([shown[perm.index(i)] for i in range(n)])  # back to original order
    return np.array(rows)


@pytest.mark.parametrize("n", [4, 5])
def test_three_orders_give_back_the_content_whatever_the_bias(n: int) -> None:
    rng = np.random.default_rng(n)
    content, bias = rng.normal(size=n), 2.0 * rng.normal(size=n)
    shifts = [0, n // 2, 1]
    logs = _answers(content, bias, shifts)
    got = position_free(logs, [cyclic_shift(n, k) for k in shifts], np.ones(3))
    assert got is not None
    np.testing.assert_allclose(got, content - content.mean(), atol=1e-9)
    # the plain mean of the same three orders keeps part of the bias
    mean = logs.mean(axis=0)
    assert not np.allclose(mean - mean.mean(), content - content.mean(), atol=1e-3)


def test_two_orders_cannot_tell_content_from_bias() -> None:
    logs = _answers(np.zeros(4), np.ones(4), [0, 2])
    assert position_free(logs, [cyclic_shift(4, k) for k in (0, 2)], np.ones(2)) is None
    # an option kept in place never moves: its content and its position's bias are one
    same = [(0, 1, 2, 3), (2, 0, 1, 3), (1, 2, 0, 3)]
    assert position_free(np.zeros((3, 4)), same, np.ones(3)) is None


def test_the_pooling_setting_is_stored_and_an_old_state_takes_todays_default() -> None:
    planner = PermutationPlanner(4, "adaptive", pooling="position_free")
    assert PermutationPlanner.from_dict(planner.to_dict()).pooling == "position_free"
    old = planner.to_dict()
    del old["pooling"]  # stored before the setting existed
    assert PermutationPlanner.from_dict(old).pooling == "gaussian"
    # a key stored with the mean (the default before the Gaussian pooling) keeps it
    mean = PermutationPlanner(4, "adaptive", pooling="mean").to_dict()
    assert PermutationPlanner.from_dict(mean).pooling == "mean"
