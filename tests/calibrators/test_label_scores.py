"""Tests for calibrators/label_scores.py: surface forms, missing-label bounds, errors."""

from __future__ import annotations

import numpy as np
import pytest

from calibrators.label_scores import fill_missing, label_scores, surface_forms

log = np.log

# --- label scores -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("Positive", ("Positive", " Positive", "positive", " positive", "POSITIVE", " POSITIVE")),
        (" yes ", ("yes", " yes", "Yes", " Yes", "YES", " YES")),
        ("OK", ("OK", " OK", "ok", " ok", "Ok", " Ok")),
    ],
)
def test_surface_forms(word: str, expected: tuple[str, ...]) -> None:
    assert surface_forms(word) == expected


def test_surface_forms_rejects_blank() -> None:
    with pytest.raises(ValueError, match="empty or blank"):
        surface_forms("  ")


def test_label_scores_sums_surface_forms_per_label() -> None:
    top = {" Positive": log(0.3), "positive": log(0.1), " Negative": log(0.2), " the": log(0.05)}
    s = label_scores(top, ["negative", "positive"])
    np.testing.assert_allclose(s.logprobs, log([0.2, 0.4]))
    assert s.bounded.tolist() == [False, False]


def test_label_scores_bounds_a_missing_label_by_the_smallest_returned() -> None:
    top = {" Positive": log(0.5), " the": log(0.1), " a": log(0.05)}
    s = label_scores(top, ["Negative", "Positive"])
    np.testing.assert_allclose(s.logprobs, log([0.05, 0.5]))
    assert s.bounded.tolist() == [True, False]


def test_label_scores_uses_a_given_floor() -> None:
    s = label_scores({" Positive": -0.5, " a": -3.0}, ["Negative", "Positive"], floor=-20.0)
    assert s.logprobs.tolist() == [-20.0, -0.5]
    assert s.bounded.tolist() == [True, False]
    empty = label_scores({}, ["Negative", "Positive"], floor=-9.0)
    assert empty.logprobs.tolist() == [-9.0, -9.0]
    assert empty.bounded.tolist() == [True, True]


def test_label_scores_sums_repeated_tokens_and_takes_explicit_forms() -> None:
    pairs = [(" Pos", log(0.2)), (" Pos", log(0.1)), (" Neg", log(0.3)), (" Positive", log(0.4))]
    s = label_scores(pairs, {"neg": [" Neg"], "pos": [" Pos"]})
    np.testing.assert_allclose(s.logprobs, log([0.3, 0.3]))


@pytest.mark.parametrize(
    ("top", "labels", "error", "match"),
    [
        ({"a": -1.0}, "positive", TypeError, "not a single string"),
        ({"a": -1.0}, ["positive"], ValueError, "at least 2 labels"),
        ({"a": -1.0}, [], ValueError, "at least 2 labels"),
        ({"a": -1.0}, ["yes", "Yes"], ValueError, "belongs to labels 0 and 1"),
        ({"a": -1.0}, {"neg": [], "pos": ["p"]}, ValueError, "at least one surface form"),
        ({}, ["neg", "pos"], ValueError, "pass floor="),
        ({"neg": float("nan")}, ["neg", "pos"], ValueError, "finite"),
    ],
)
def test_label_scores_errors(top: dict, labels: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        label_scores(top, labels)  # type: ignore[arg-type]


def test_fill_missing_bounds_by_row_minimum_or_floor() -> None:
    a = [[-1.0, np.nan], [np.nan, -3.0], [-2.0, -0.5]]
    s = fill_missing(a)
    np.testing.assert_array_equal(s.logprobs, [[-1, -1], [-3, -3], [-2, -0.5]])
    np.testing.assert_array_equal(s.bounded, [[False, True], [True, False], [False, False]])
    np.testing.assert_array_equal(
        fill_missing(a, -10.0).logprobs, [[-1, -10], [-10, -3], [-2, -0.5]]
    )
    three = fill_missing([[-1.0, -4.0, np.nan]])  # bounded by the smallest score present
    np.testing.assert_array_equal(three.logprobs, [[-1, -4, -4]])
    per_row = fill_missing([[np.nan, np.nan], [-1.0, np.nan]], floor=[-5.0, -6.0])
    np.testing.assert_array_equal(per_row.logprobs, [[-5, -5], [-1, -6]])


@pytest.mark.parametrize(
    ("a", "floor", "match"),
    [
        ([[np.nan, np.nan]], None, r"rows \[0\] have no label score"),
        ([-1.0, np.nan], None, r"\(N, L\)"),
        ([[-1.0]], None, r"\(N, L\)"),
        ([[-1.0, np.inf]], None, "infinite"),
        ([[-1.0, np.nan], [-2.0, -1.0]], [-5.0, -6.0, -7.0], "one per row"),
    ],
)
def test_fill_missing_errors(a: list, floor: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fill_missing(a, floor)  # type: ignore[arg-type]


# --- normalising and dividing out a prior ------------------------------------------------------
