"""How each key's learned prior moved: a bounded history the store writes as the key learns.

A store keeps, beside each calibration key's state, history points: per method, how many
questions (or inputs) the key had seen and the prior it divided out then. The store writes a
point inside the transaction that updates the key (no round trip of its own), when the key's
state version (its update count) is a multiple of :func:`stride`. The stride starts at 1 and
doubles each time the key's history would hold more than ``points`` points; the points that are
then off the new stride are deleted in the same transaction. So a key holds at most ``points``
points, spread evenly over its whole life, and a long-lived key writes a point ever more rarely
(about ``points / 2`` more points each time its traffic doubles).

:func:`summary` reads the priors out of a state: the MCQ planners' (except ``none``, ``cyclic``
and ``full``, which learn none), the online label calibrators' and the probe-based ones'
(``contextual``, ``domain``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from calibrators.planner import PermutationPlanner
from guard.calibrations import CALIBRATIONS

HISTORY_POINTS = 64  # most history points a key keeps
NOT_LEARNED = ("none", "cyclic", "full")  # MCQ methods that learn no prior


@dataclass(frozen=True)
class HistoryPoint:
    """One point of a key's history: the state version it was taken at, when (epoch seconds),
    and per method ``{"seen": questions or inputs, "prior": [p per option ID or label]}``."""

    version: int
    time: float
    methods: dict[str, dict[str, Any]]


def stride(version: int, points: int = HISTORY_POINTS) -> int:
    """The spacing, in versions, of the points a key keeps at ``version``: the least power of
    two that fits ``version // stride`` points into ``points``."""
    s = 1
    while version > s * points:
        s *= 2
    return s


def due(version: int, points: int = HISTORY_POINTS) -> bool:
    """Whether the update that takes a key to ``version`` writes a history point."""
    return points > 0 and version > 0 and version % stride(version, points) == 0


def _prior(method: str, state: Any) -> tuple[list[float], int | None] | None:
    """(the prior over option IDs or labels, questions or inputs seen; None: the key's count)
    for one method's state, or None when it learns no prior or cannot be read."""
    if not isinstance(state, dict) or method in NOT_LEARNED:
        return None
    try:
        if "n" in state and "method" in state:  # an MCQ planner
            planner = PermutationPlanner.from_dict(state)
            return _floats(planner.current_prior()), int(planner.started)
        if "log_prior" in state:  # contextual, domain: the probes' prior
            return _floats(_softmax(state["log_prior"])), None
        kind = CALIBRATIONS["classify"].get(method)
        if kind is None:
            return None
        cal = kind.from_dict(state)
        return _floats(_softmax(cal.log_prior)), int(state.get("count", 0))
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None  # a state this version cannot read


def summary(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per method of a key's state, ``{"seen", "prior"}`` (rounded to 6 places)."""
    out = {}
    for method, sub in state.items():
        found = _prior(method, sub)
        if found is not None:
            prior, seen = found
            if seen is None:  # contextual, domain: the key counts its inputs
                seen = int(state.get("seen", 0))
            out[method] = {"seen": seen, "prior": [round(p, 6) for p in prior]}
    return out


def point_of(version: int, state: Any, points: int) -> dict[str, dict[str, Any]] | None:
    """What the update to ``version`` writes to the history, or None (not due, or no prior)."""
    if not due(version, points) or not isinstance(state, dict):
        return None
    return summary(state) or None


def _softmax(log_p: Any) -> Any:
    lp = np.asarray(log_p, dtype=np.float64).reshape(-1)
    p = np.exp(lp - lp.max())
    return p / p.sum()


def _floats(x: Any) -> list[float]:
    out = [float(v) for v in x]
    if not all(math.isfinite(v) for v in out):
        raise ValueError("a prior that is not finite")
    return out


__all__ = [
    "HISTORY_POINTS",
    "HistoryPoint",
    "due",
    "point_of",
    "stride",
    "summary",
]
