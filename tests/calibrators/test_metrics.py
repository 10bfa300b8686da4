"""Tests for calibrators/metrics.py. Every expected number is worked out by hand in a comment."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibrators.metrics import (
    accuracy,
    expected_calibration_error,
    kl_from_uniform,
    macro_f1,
    order_consistency,
    recall_per_class,
    rstd,
)

# --- accuracy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        ([0, 1, 2, 1], [0, 1, 1, 1], 75.0),  # 3 of 4 right
        ([2, 2, 2], [2, 2, 2], 100.0),
        ([0, 0], [1, 1], 0.0),
        ([3], [3], 100.0),
        (np.array([1, 0, 1, 0, 1]), np.array([1, 1, 1, 1, 1]), 60.0),  # 3 of 5
        ([[0, 1], [1, 1]], [0, 1, 0, 1], 75.0),  # flattened: 0=0, 1=1, 1!=0, 1=1
    ],
)
def test_accuracy(pred: list[int], gold: list[int], expected: float) -> None:
    assert accuracy(pred, gold) == pytest.approx(expected)
    assert isinstance(accuracy(pred, gold), float)


def test_accuracy_errors() -> None:
    with pytest.raises(ValueError, match="pred has 3 items but gold has 2"):
        accuracy([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="empty set is undefined"):
        accuracy([], [])


# --- recall_per_class / rstd --------------------------------------------------------------------


def test_recall_per_class_by_hand() -> None:
    pred = [0, 0, 1, 1, 2]
    gold = [0, 1, 1, 1, 2]
    # class 0: gold at 0 -> pred 0: 1/1. class 1: gold at 1, 2, 3 -> preds 0, 1, 1: 2/3.
    # class 2: gold at 4 -> pred 2: 1/1. class 3: never gold -> NaN.
    rec = recall_per_class(pred, gold, 4)
    np.testing.assert_allclose(rec[:3], [1.0, 2 / 3, 1.0])
    assert math.isnan(rec[3])


@pytest.mark.parametrize(
    ("pred", "gold", "n_classes", "expected"),
    [
        # Recalls 0.5 (class 0: 1 of 2) and 1.0 (class 1: 2 of 2): mean 0.75, each 0.25 away,
        # population std 0.25 -> 25.0. (The sample std would be 35.36.)
        ([0, 1, 1, 1], [0, 0, 1, 1], 2, 25.0),
        # Same, with classes 2 and 3 never gold: left out, still 25.0.
        ([0, 1, 1, 1], [0, 0, 1, 1], 4, 25.0),
        # Recalls 0, 0.5, 1: mean 0.5, variance (0.25 + 0 + 0.25) / 3 = 1/6 -> 100 / sqrt(6).
        ([1, 1, 2, 2], [0, 1, 1, 2], 3, 100 / math.sqrt(6)),
        # Always "A" on a balanced set: recalls 1, 0, 0, 0; mean 0.25; variance
        # (0.5625 + 3 * 0.0625) / 4 = 0.1875 -> sqrt(0.1875) = 0.4330 -> 43.30.
        ([0, 0, 0, 0], [0, 1, 2, 3], 4, 100 * math.sqrt(0.1875)),
        # Perfect, or equally wrong everywhere: no spread.
        ([0, 1, 2], [0, 1, 2], 3, 0.0),
        ([1, 2, 0], [0, 1, 2], 3, 0.0),
    ],
)
def test_rstd(pred: list[int], gold: list[int], n_classes: int, expected: float) -> None:
    assert rstd(pred, gold, n_classes) == pytest.approx(expected)


# --- macro_f1 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "gold", "n_classes", "expected"),
    [
        # gold [0,0,0,1,1,2], pred [0,0,1,1,2,2]:
        #   class 0: tp 2, fp 0, fn 1 -> 4/5 = 0.8
        #   class 1: tp 1, fp 1 (item 2), fn 1 (item 4) -> 2/4 = 0.5
        #   class 2: tp 1, fp 1 (item 4), fn 0 -> 2/3
        #   mean (0.8 + 0.5 + 2/3) / 3 = 0.65556 -> 65.56
        ([0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 2], 3, 100 * (0.8 + 0.5 + 2 / 3) / 3),
        # Class 3 neither predicted nor gold: left out, same score.
        ([0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 2], 4, 100 * (0.8 + 0.5 + 2 / 3) / 3),
        # Class 1 predicted but never gold: F1 0. Class 0: tp 1, fn 1 -> 2/3. Mean 1/3.
        ([0, 1], [0, 0], 2, 100 / 3),
        ([0, 1, 2], [0, 1, 2], 3, 100.0),
        # All wrong: every class has tp 0.
        ([1, 0], [0, 1], 2, 0.0),
    ],
)
def test_macro_f1(pred: list[int], gold: list[int], n_classes: int, expected: float) -> None:
    assert macro_f1(pred, gold, n_classes) == pytest.approx(expected)


# Shorter pred than gold is silently broadcast or crashes with an IndexError instead of the
# ValueError that accuracy raises for the same mistake.
MISMATCH = [
    pytest.param(recall_per_class, id="recall_per_class"),
    pytest.param(rstd, id="rstd"),
    pytest.param(macro_f1, id="macro_f1"),
]


@pytest.mark.parametrize("fn", MISMATCH)
def test_class_metrics_reject_mismatched_lengths(fn: object) -> None:
    with pytest.raises(ValueError, match="1 items but gold has 3"):
        fn([0], [0, 1, 1], 2)  # type: ignore[operator]


# --- expected_calibration_error -----------------------------------------------------------------


def test_ece_two_bins_by_hand() -> None:
    probs = [
        [0.8, 0.1, 0.1],  # conf 0.8, pred 0, gold 0: right  -> bin (0.5, 1]
        [0.6, 0.3, 0.1],  # conf 0.6, pred 0, gold 1: wrong  -> bin (0.5, 1]
        [0.4, 0.3, 0.3],  # conf 0.4, pred 0, gold 0: right  -> bin (0, 0.5]
        [0.2, 0.45, 0.35],  # conf 0.45, pred 1, gold 2: wrong -> bin (0, 0.5]
    ]
    gold = [0, 1, 0, 2]
    # Low bin: weight 2/4, accuracy 1/2, mean conf 0.425 -> 0.5 * 0.075 = 0.0375.
    # High bin: weight 2/4, accuracy 1/2, mean conf 0.7 -> 0.5 * 0.2 = 0.1.
    assert expected_calibration_error(probs, gold, n_bins=2) == pytest.approx(0.1375)
    # Rows need not be normalised: scaling one row changes nothing.
    scaled = [[8.0, 1.0, 1.0], *probs[1:]]
    assert expected_calibration_error(scaled, gold, n_bins=2) == pytest.approx(0.1375)


@pytest.mark.parametrize(
    ("probs", "gold", "n_bins", "expected"),
    [
        # Four at conf 0.75, three right: accuracy equals confidence -> 0.
        ([[0.75, 0.25]] * 4, [0, 0, 0, 1], 10, 0.0),
        # One bin holding everything: |mean acc - mean conf| = |1/2 - (0.9 + 0.7) / 2| = 0.3.
        ([[0.9, 0.1], [0.3, 0.7]], [0, 0], 1, 0.3),
        # Always confidently wrong: conf 1.0 in the top bin, accuracy 0 -> 1.0.
        ([[1.0, 0.0], [0.0, 1.0]], [1, 0], 10, 1.0),
    ],
)
def test_ece_table(probs: list[list[float]], gold: list[int], n_bins: int, expected: float) -> None:
    assert expected_calibration_error(probs, gold, n_bins) == pytest.approx(expected)


def test_ece_boundary_sends_half_to_the_lower_bin() -> None:
    # Rows at conf 0.5 (right) and 0.6 (wrong). Lower bin (0, 0.5]: |1 - 0.5| = 0.5, upper bin
    # (0.5, 1]: |0 - 0.6| = 0.6; total 0.5 * 0.5 + 0.5 * 0.6 = 0.55. Were 0.5 put in the upper bin
    # with 0.6: |0.5 - 0.55| = 0.05.
    probs = [[0.5, 0.3, 0.2], [0.6, 0.4, 0.0]]
    assert expected_calibration_error(probs, [0, 1], n_bins=2) == pytest.approx(0.55)


@pytest.mark.parametrize("shape", [(4,), (2, 2, 2)])
def test_ece_rejects_non_2d(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"probs must be 2-D \(N, C\)"):
        expected_calibration_error(np.full(shape, 0.5), [0, 1])


# --- kl_from_uniform ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(2, 11))
def test_kl_uniform_is_zero_and_one_hot_is_log_n(n: int) -> None:
    assert kl_from_uniform(np.full(n, 1 / n)) == pytest.approx(0.0, abs=1e-12)
    assert kl_from_uniform(np.eye(n)[n - 1]) == pytest.approx(math.log(n))


@pytest.mark.parametrize(
    ("prior", "expected"),
    [
        # Half on each of 2 of 4: 2 * 0.5 * log(0.5 * 4) = log 2.
        ([0.5, 0.5, 0.0, 0.0], math.log(2)),
        # 0.75 log(1.5) + 0.25 log(0.5) = 0.304099 - 0.173287 = 0.130812.
        ([0.75, 0.25], 0.75 * math.log(1.5) + 0.25 * math.log(0.5)),
        # Unnormalised input is normalised first: [3, 1] is [0.75, 0.25].
        ([3.0, 1.0], 0.75 * math.log(1.5) + 0.25 * math.log(0.5)),
        ([2.0, 2.0, 2.0], 0.0),
    ],
)
def test_kl_from_uniform_table(prior: list[float], expected: float) -> None:
    assert kl_from_uniform(prior) == pytest.approx(expected, abs=1e-12)


# --- order_consistency --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        # Items 0 and 2 agree across the three orders, items 1 and 3 do not: 2 of 4.
        ([[0, 0, 0], [1, 1, 0], [2, 2, 2], [1, 0, 1]], 50.0),
        # One order per item: trivially consistent.
        ([[0], [1], [2]], 100.0),
        ([[0, 1], [1, 0]], 0.0),
        # Judge verdicts as strings work too: 1 of 3.
        ([["A", "A"], ["A", "B"], ["tie", "B"]], 100 / 3),
    ],
)
def test_order_consistency(verdicts: list[list[object]], expected: float) -> None:
    assert order_consistency(verdicts) == pytest.approx(expected)


@pytest.mark.parametrize("verdicts", [[0, 1, 2], np.zeros((0, 3)), np.zeros((2, 2, 2))])
def test_order_consistency_errors(verdicts: object) -> None:
    with pytest.raises(ValueError, match=r"non-empty \(N, K\) array"):
        order_consistency(verdicts)  # type: ignore[arg-type]
