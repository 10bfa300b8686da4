"""Which option order an adaptive question asks next."""

from __future__ import annotations

import numpy as np
import pytest

from calibrators.order_design import Design, next_order
from calibrators.permutation import cyclic_permutations, cyclic_shift

SKEWED = np.array([0.1, 0.5, 0.3, 0.1])
FLAT = np.array([0.22, 0.3, 0.26, 0.22])
SHOWN = cyclic_shift(4, 0)


@pytest.mark.parametrize(
    ("design", "prior", "want"),
    [
        ("far", SKEWED, cyclic_shift(4, 2)),  # every option two positions away
        ("far", FLAT, cyclic_shift(4, 2)),
        ("auto", FLAT, cyclic_shift(4, 2)),  # a flat prior says nothing about where to go
        ("auto", SKEWED, cyclic_shift(4, 3)),  # option 3 to position 0, the least favoured
        ("adversarial", FLAT, cyclic_shift(4, 3)),  # position 0 (0.22, first of the least)
    ],
)
def test_second_order(design: Design, prior: np.ndarray, want: tuple[int, ...]) -> None:
    remaining = cyclic_permutations(4)[1:]
    assert next_order(design, prior, [SHOWN], remaining, favourite=3) == want


@pytest.mark.parametrize("design", ["far", "auto", "adversarial"])
def test_later_orders_move_the_favourite_where_the_prior_favours_it_least(design: Design) -> None:
    remaining = [cyclic_shift(4, 1), cyclic_shift(4, 3)]
    got = next_order(design, SKEWED, [SHOWN, cyclic_shift(4, 2)], remaining, favourite=1)
    assert SKEWED[got.index(1)] == min(SKEWED[p.index(1)] for p in remaining)
