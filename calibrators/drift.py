"""Whether a key's answers changed under it: a label-free check for drift.

A calibration key lives as long as a deployment, and what it learned (the prior, the pooling's
covariances, the harm and value evidence) sums every question it has seen: after thousands of
questions, a change of model behind the same name, of prompt template or of question mix would
take thousands more to be followed. Every question is answered in the order shown, so the mean
shown answer is watched at no extra call: it carries the key's position bias (and the mix's
content), and it moves when either does.

Every :data:`WINDOW` questions (a look), :class:`DriftCheck` compares the mean shown answer (the
centred log probabilities, floored at :data:`FLOOR` so that a window's mean stays near normal)
of the last 1, 2, 4, ... :data:`SCALES` windows with that of every question before them since the
key (re)started, by Hotelling's T² with the earlier questions' covariance: a large change shows
in one window, a small one once enough windows after it are pooled. The k-th look is held to a
false-alarm chance of ``alpha * 6 / (pi² k²)``, split evenly among its comparisons; these sum to
``alpha``, so however long the key lives, the chance that the check ever trips on answers that
did not change is at most ``alpha`` (union bound). When it trips, the planner learns afresh
(:meth:`calibrators.planner.PermutationPlanner.relearn`). The state is a few sums per window.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from calibrators.permutation import FloatArray, normalise

WINDOW = 100  # questions per look
SCALES = 5  # the recent part compared: the last 1, 2, 4, 8 or 16 windows
# Windows before the recent part, at the least: the earlier questions' covariance and the
# normal approximation are rough on fewer (false alarms at 200-500 questions on the recordings).
MIN_BEFORE = 4
ALPHA = 0.01  # chance of ever tripping on a key whose answers did not change
FLOOR = 1e-6  # probabilities are floored here before the log: a window's mean stays near normal


def chi2_sf(x: float, k: int) -> float:
    """P(X > x) for X ~ chi-square with ``k`` (integer >= 1) degrees of freedom, in closed form."""
    if x <= 0.0:
        return 1.0
    if k % 2 == 0:
        term = total = 1.0
        for i in range(1, k // 2):
            term *= (x / 2.0) / i
            total += term
        return math.exp(-x / 2.0) * total
    root = math.sqrt(x)
    total, term = 0.0, root
    for i in range(1, (k - 1) // 2 + 1):
        total += term
        term *= x / (2 * i + 1)
    return (
        math.erfc(root / math.sqrt(2.0))
        + 2.0 * math.exp(-x / 2.0) / math.sqrt(2.0 * math.pi) * total
    )


class _Sums:
    """Count, sum and sum of outer products of some questions' centred log shown answers."""

    def __init__(self, k: int) -> None:
        self.count = 0
        self.sum = np.zeros(k)
        self.outer = np.zeros((k, k))

    def add(self, other: _Sums) -> None:
        self.count += other.count
        self.sum = self.sum + other.sum
        self.outer = self.outer + other.outer

    def to_list(self) -> list[Any]:
        return [self.count, self.sum.tolist(), self.outer.tolist()]

    @classmethod
    def from_list(cls, k: int, d: list[Any]) -> _Sums:
        s = cls(k)
        s.count = int(d[0])
        s.sum = np.asarray(d[1], dtype=np.float64).reshape(k)
        s.outer = np.asarray(d[2], dtype=np.float64).reshape(k, k)
        return s


def _p_value(before: _Sums, recent: _Sums) -> float:
    """Hotelling's two-sample test of ``recent``'s mean against ``before``'s, with ``before``'s
    covariance (what the answers spread by while nothing changed)."""
    mean = before.sum / before.count
    cov = (before.outer - before.count * np.outer(mean, mean)) / (before.count - 1)
    d = recent.sum / recent.count - mean
    w, v = np.linalg.eigh(cov * (1.0 / recent.count + 1.0 / before.count))
    keep = w > max(float(w.max()), 0.0) * 1e-9
    if not keep.any():
        # Every earlier answer the same: any move at all is a change.
        return 0.0 if np.abs(d).max() > 1e-9 else 1.0
    proj = v[:, keep].T @ d
    return chi2_sf(float(np.sum(proj**2 / w[keep])), int(keep.sum()))


class DriftCheck:
    """Running sums of a key's shown answers: the questions since it (re)started, in the most
    recent windows and before them."""

    def __init__(self, n: int, window: int = WINDOW, alpha: float = ALPHA) -> None:
        self.n = n
        self.window = window
        self.alpha = alpha
        self.looks = 0
        k = n - 1  # the centred logs sum to zero: n - 1 coordinates say everything
        self.before = _Sums(k)  # every question older than the recent windows
        self.recent: list[_Sums] = []  # the last 2**(SCALES-1) full windows, oldest first
        self.current = _Sums(k)  # the window filling now

    def add(self, shown: FloatArray) -> bool:
        """Fold in one question's answer in the order shown; True when the window it completes
        says the answers changed."""
        lp = np.log(np.maximum(normalise(np.asarray(shown, dtype=np.float64)), FLOOR))
        x = (lp - lp.mean())[: self.n - 1]
        if not np.all(np.isfinite(x)):
            return False
        self.current.count += 1
        self.current.sum = self.current.sum + x
        self.current.outer = self.current.outer + np.outer(x, x)
        if self.current.count < self.window:
            return False
        self.recent.append(self.current)
        self.current = _Sums(self.n - 1)
        changed = self._look()
        if len(self.recent) > 2 ** (SCALES - 1):
            self.before.add(self.recent.pop(0))
        return changed

    def _look(self) -> bool:
        """Whether the last 1, 2, 4, ... windows differ from every question before them."""
        self.looks += 1
        level = self.alpha * 6.0 / (math.pi**2 * self.looks**2) / SCALES
        for s in range(SCALES):
            m = 2**s
            if m >= len(self.recent) + (self.before.count > 0):
                break
            before, recent = _Sums(self.n - 1), _Sums(self.n - 1)
            before.add(self.before)
            for w in self.recent[:-m]:
                before.add(w)
            for w in self.recent[-m:]:
                recent.add(w)
            if before.count >= MIN_BEFORE * self.window and _p_value(before, recent) < level:
                return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "alpha": self.alpha,
            "looks": self.looks,
            "before": self.before.to_list(),
            "recent": [w.to_list() for w in self.recent],
            "current": self.current.to_list(),
        }

    @classmethod
    def from_dict(cls, n: int, d: dict[str, Any]) -> DriftCheck:
        c = cls(n, int(d["window"]), float(d["alpha"]))
        c.looks = int(d["looks"])
        c.before = _Sums.from_list(n - 1, d["before"])
        c.recent = [_Sums.from_list(n - 1, w) for w in d["recent"]]
        c.current = _Sums.from_list(n - 1, d["current"])
        return c
