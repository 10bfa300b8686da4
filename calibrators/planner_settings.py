"""A :class:`~calibrators.planner.PermutationPlanner`'s settings, checked when it is made and
read back (to make a planner with the same ones), and the check of what a question asks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

from calibrators.referential import Handling

if TYPE_CHECKING:
    from calibrators.planner import PermutationPlanner

Method = Literal["none", "pride", "cyclic", "full", "adaptive"]
METHODS: tuple[str, ...] = get_args(Method)
MAX_FULL_ORDERS = 120  # 5! — beyond that, full-permutation averaging is not a serving option


def check_question(n: int, handling: str, fixed: Sequence[int]) -> tuple[int, ...]:
    """The positions kept in place, sorted; ValueError for a ``handling`` or ``fixed`` that no
    question of ``n`` options can be planned with."""
    if handling not in get_args(Handling):
        raise ValueError(f"unknown handling {handling!r}")
    fixed_t = tuple(sorted(set(fixed)))
    if handling == "permuted" and fixed_t:
        raise ValueError("fixed positions given but handling is 'permuted'")
    if any(not 0 <= f < n for f in fixed_t):
        raise ValueError(f"fixed positions {list(fixed_t)} out of range for {n} options")
    return fixed_t


def check_settings(
    n: int,
    method: str,
    *,
    warmup: int,
    alpha: float,
    budget: float,
    threshold: float = 3.0,
    max_threshold: float = 4.0,
    lr: float = 0.2,
    prior_confidence: float = 0.8,
) -> None:
    """Raise ValueError for settings no planner can run with."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    # A NaN setting would be stored as NaN and turn the online threshold NaN for good.
    for name, value in (
        ("budget", budget),
        ("threshold", threshold),
        ("max_threshold", max_threshold),
        ("lr", lr),
        ("prior_confidence", prior_confidence),
    ):
        if math.isnan(value):
            raise ValueError(f"{name} must be a number, got {value}")
    if not math.isfinite(lr):
        raise ValueError(f"lr must be finite, got {lr}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if method == "full" and math.factorial(n) > MAX_FULL_ORDERS:
        raise ValueError(
            f"full-permutation averaging needs {math.factorial(n)} calls for {n} options; "
            f"it is offered up to {MAX_FULL_ORDERS} calls (5 options) — use 'cyclic' instead"
        )
    if method == "adaptive" and budget < 1.0 + alpha * (n - 1):
        raise ValueError(
            f"budget {budget} is below the cost of the prior refresh alone "
            f"(1 + alpha * (n - 1) = {1.0 + alpha * (n - 1):.2f}); raise it or lower alpha"
        )


def planner_settings(p: PermutationPlanner) -> dict[str, Any]:
    """The keyword settings ``p`` was made with (its method and number of options aside)."""
    return {
        "warmup": p.warmup,
        "alpha": p.alpha,
        "budget": p.budget,
        "threshold": p.threshold,
        "max_threshold": p.max_threshold,
        "lr": p.lr,
        "max_count": p.estimator.max_count,
        "max_warmup": p.max_warmup,
        "prior_confidence": p.prior_confidence,
        "design": p.design,
        "harm_check": p.harm_check,
        "pair_prior": p.pair_prior,
        "value_floor": p.value.floor,
        "pooling": p.pooling,
        "shown_prior": p.shown_prior,
        "drift_check": p.drift_check,
    }
