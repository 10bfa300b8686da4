"""Whether a key's answers changed under it: a label-free check for drift.

A calibration key lives as long as a deployment, and what it learned (the prior, the pooling's
covariances, the harm and value evidence) sums every question it has seen: after thousands of
questions, a change of model behind the same name, of prompt template or of question mix would
take thousands more to be followed. Every question is answered in the order shown, so the mean
shown answer is watched at no extra call: it carries the key's position bias (and the mix's
content), and it moves when either does.

Every :data:`WINDOW` questions, :class:`DriftCheck` compares the mean shown answer (the centred
log probabilities, floored at :data:`FLOOR`) of the last 1, 2, 4, ... :data:`SCALES` windows with
that of every question before them since the key (re)started, at least :data:`MIN_BEFORE`
windows of them, by Hotelling's T² in its large-sample (chi-square) form, with the covariance of
all of them: a large change shows in one window, a small one once enough windows after it are
pooled. The k-th look that can compare is held to a false-alarm chance of
``alpha * 6 / (pi² k²)``, split evenly among its comparisons; these sum to ``alpha``, so the
chance that the check ever trips on answers that did not change is at most ``alpha`` between
two relearnings, however long the key lives (union bound), as far as a window's mean is near
normal: shown answers that arrive in a non-random order (sorted by subject or difficulty) are
a change for this check, and answers that are nearly fixed (a one-hot answer whose rare
positions come up once in hundreds of questions) are far from normal, and trip it more often
than ``alpha`` says. When it trips, the planner learns afresh
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


def _p_value(
    before: tuple[int, FloatArray], recent: tuple[int, FloatArray], cov: FloatArray
) -> float:
    """Hotelling's two-sample test of ``recent``'s mean against ``before``'s ((count, sum)
    each), the answers' covariance ``cov``."""
    d = recent[1] / recent[0] - before[1] / before[0]
    w, v = np.linalg.eigh(cov * (1.0 / recent[0] + 1.0 / before[0]))
    keep = w > max(float(w.max()), 0.0) * 1e-9
    if not keep.any():
        # Every answer the same: any move at all is a change.
        return 0.0 if np.abs(d).max() > 1e-9 else 1.0
    proj = v[:, keep].T @ d
    return chi2_sf(float(np.sum(proj**2 / w[keep])), int(keep.sum()))


class DriftCheck:
    """Running sums of a key's shown answers since it (re)started: the count and sum of the
    questions before the recent windows, of each recent window and of the window filling now,
    and the sum of every question's outer products (the covariance)."""

    def __init__(self, n: int, window: int = WINDOW, alpha: float = ALPHA) -> None:
        self.n = n
        self.window = window
        self.alpha = alpha
        self.looks = 0
        k = n - 1  # the centred logs sum to zero: n - 1 coordinates say everything
        self.before = (0, np.zeros(k))  # every question older than the recent windows
        self.recent: list[tuple[int, FloatArray]] = []  # the last 2**(SCALES-1) full windows
        self.current = (0, np.zeros(k))  # the window filling now
        self.outer = np.zeros((k, k))  # every question's (at a look: every full window's)

    def add(self, shown: FloatArray) -> bool:
        """Fold in one question's answer in the order shown; True when the window it completes
        says the answers changed."""
        lp = np.log(np.maximum(normalise(np.asarray(shown, dtype=np.float64)), FLOOR))
        x = (lp - lp.mean())[: self.n - 1]
        if not np.all(np.isfinite(x)):
            return False
        self.current = (self.current[0] + 1, self.current[1] + x)
        self.outer = self.outer + np.outer(x, x)
        if self.current[0] < self.window:
            return False
        self.recent.append(self.current)
        self.current = (0, np.zeros(self.n - 1))
        changed = self._look()
        if len(self.recent) > 2 ** (SCALES - 1):
            count, total = self.recent.pop(0)
            self.before = (self.before[0] + count, self.before[1] + total)
        return changed

    def _look(self) -> bool:
        """Whether the last 1, 2, 4, ... windows differ from every question before them. A look
        counts (and spends its share of ``alpha``) only once a comparison can be made."""
        count = self.before[0] + sum(c for c, _ in self.recent)
        if count - self.recent[-1][0] < MIN_BEFORE * self.window:
            return False
        self.looks += 1
        level = self.alpha * 6.0 / (math.pi**2 * self.looks**2) / SCALES
        total = self.before[1] + sum((t for _, t in self.recent), np.zeros(self.n - 1))
        mean = total / count
        cov = (self.outer - count * np.outer(mean, mean)) / (count - 1)
        recent = (0, np.zeros(self.n - 1))
        for m in range(1, len(self.recent) + 1):
            recent = (recent[0] + self.recent[-m][0], recent[1] + self.recent[-m][1])
            if m & (m - 1) or m > 2 ** (SCALES - 1):
                continue  # only the last 1, 2, 4, ... windows
            before = (count - recent[0], total - recent[1])
            if before[0] >= MIN_BEFORE * self.window and _p_value(before, recent, cov) < level:
                return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "alpha": self.alpha,
            "looks": self.looks,
            "before": [self.before[0], self.before[1].tolist()],
            "recent": [[c, t.tolist()] for c, t in self.recent],
            "current": [self.current[0], self.current[1].tolist()],
            "outer": self.outer.tolist(),
        }

    @classmethod
    def from_dict(cls, n: int, d: dict[str, Any]) -> DriftCheck:
        c = cls(n, int(d["window"]), float(d["alpha"]))
        c.looks = int(d["looks"])

        def sums(x: list[Any]) -> tuple[int, FloatArray]:
            return int(x[0]), np.asarray(x[1], dtype=np.float64).reshape(n - 1)

        c.before = sums(d["before"])
        c.recent = [sums(w) for w in d["recent"]]
        c.current = sums(d["current"])
        c.outer = np.asarray(d["outer"], dtype=np.float64).reshape(n - 1, n - 1)
        return c
