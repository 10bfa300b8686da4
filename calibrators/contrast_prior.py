"""The ID-position prior learned from every question asked in two or more orders.

PriDe estimates the prior only from questions asked in all n cyclic orders. But any two orders
of one question already say something about it: under the model
``log p_s(j) = lp(j) + c(option shown at j) + z_s`` (position prior, content, normaliser), an
option seen at position a in one order and at b in another gives ``lp(a) - lp(b)`` up to the
normalisers — its content cancels. :class:`ContrastPrior` accumulates the least-squares normal
equations of that model with each question's content and normalisers projected out, so an
adaptive planner that asks a second order on most questions keeps refining the prior at no extra
cost. With only full cyclic questions the estimate is the mean of PriDe's per-question log priors.

How far to trust it: the spread of the per-question priors of the full-cyclic questions gives
the noise of one question's evidence; the accumulated normal equations turn it into the sampling
variance of the estimate, and :meth:`ContrastPrior.reliability` shrinks the prior toward uniform
(James-Stein) while that variance is large against the prior's own size — a weak bias seen
through noisy answers (a near-random model) is not divided out until the evidence is there.

Where every question's answer in the order shown is folded in too (:meth:`add_shown`), the
estimate and its variance are those of :class:`calibrators.shown_prior.ShownRegression`, which
regresses them on the full questions' priors (PriDe's mean while that adds nothing).

The state is a few small arrays and counters, JSON-serialisable for the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from calibrators.permutation import FloatArray, Perm, cyclic_permutations, normalise
from calibrators.shown_prior import ShownRegression


def _design(perms: Sequence[Perm], n: int) -> tuple[FloatArray, FloatArray]:
    """(X, M X): position indicators of every (order, position) observation, and the same with
    the question's content and per-order normalisers projected out."""
    k = len(perms)
    x = np.zeros((k * n, n))
    nuis = np.zeros((k * n, n + k))
    for s, perm in enumerate(perms):
        for j in range(n):
            x[s * n + j, j] = 1.0
            nuis[s * n + j, perm[j]] = 1.0
            nuis[s * n + j, n + s] = 1.0
    mx = x - nuis @ (np.linalg.pinv(nuis) @ x)
    return x, mx


_PRECISION: dict[int, float] = {}


def _inverse(gram: FloatArray) -> FloatArray:
    """Pseudo-inverse of the normal equations, which are singular by design (the prior is known
    up to a constant, and a kept-in-place position not at all). Summed over many questions,
    rounding leaves those null directions at ±1e-12 rather than 0; a cut-off relative to the
    largest eigenvalue drops them where numpy's default (a few ulps) inverts them."""
    return np.asarray(np.linalg.pinv(gram, rcond=1e-9, hermitian=True), dtype=np.float64)


class ContrastPrior:
    """Least-squares position prior from multi-order questions, with its own uncertainty."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.gram = np.zeros((n, n))  # sum over questions of X' M X
        self.moment = np.zeros(n)  # sum over questions of X' M y
        self.questions = 0  # questions that contributed (two or more orders)
        # Per-question log priors of full-cyclic questions (centred; Welford): the noise level.
        self.full = 0
        self.full_mean = np.zeros(n)
        self.full_m2 = np.zeros((n, n))
        # Every question's shown answer, regressed on the full questions' priors: a sharper
        # estimate where answers are mostly position bias (calibrators.shown_prior).
        self.regression = ShownRegression(n)
        self._prior: FloatArray | None = None  # prior(), until the next update

    @staticmethod
    def _one_question_precision(n: int) -> float:
        # trace of (X'MX)^+ for one question asked in every cyclic order: a constant per n
        cached = _PRECISION.get(n)
        if cached is None:
            _, mx = _design(cyclic_permutations(n), n)
            cached = _PRECISION[n] = float(np.trace(np.linalg.pinv(mx.T @ mx)))
        return cached

    def update(self, observations: Sequence[tuple[Perm, FloatArray]]) -> None:
        """Fold in one question's answered orders (distributions over displayed IDs)."""
        if len(observations) < 2:
            return
        self._prior = None
        perms = [tuple(p) for p, _ in observations]
        y = np.concatenate([np.log(normalise(p)) for _, p in observations])
        _, mx = _design(perms, self.n)
        self.gram += mx.T @ mx
        self.moment += mx.T @ y
        self.questions += 1
        if set(cyclic_permutations(self.n)) <= set(perms):
            self._full(observations)

    def _full(self, observations: Sequence[tuple[Perm, FloatArray]]) -> None:
        by_perm = {tuple(p): normalise(q) for p, q in observations}
        rows = np.stack([by_perm[c] for c in cyclic_permutations(self.n)])
        lq = np.log(rows).mean(axis=0)
        lq = lq - lq.mean()
        self.full += 1
        delta = lq - self.full_mean
        self.full_mean = self.full_mean + delta / self.full
        self.full_m2 = self.full_m2 + np.outer(delta, lq - self.full_mean)
        self.regression.add_paired(lq, by_perm[tuple(range(self.n))])

    def add_shown(self, shown: FloatArray) -> None:
        """Fold in one question's answer in the order shown (every question asked as shown,
        full ones included)."""
        self._prior = None
        self.regression.add_shown(shown)

    def _shown_estimate(self) -> tuple[FloatArray, float] | None:
        # The regression's estimate, where it is the better one. It has paired every full
        # question unless the state was stored before it existed: then it rests on the full
        # questions since, and is used only once its variance is below that of all of them.
        est = self.regression.estimate()
        if est is None or self.regression.paired.count >= self.full:
            return est
        classic = self._full_variance()
        return est if classic is not None and est[1] < classic else None

    def log_prior(self) -> FloatArray:
        """Centred log prior (zeros before any evidence)."""
        est = self._shown_estimate()
        if est is not None:
            return est[0]
        lp = _inverse(self.gram) @ self.moment
        return lp - lp.mean()  # type: ignore[no-any-return]

    def variance(self) -> float | None:
        """Summed sampling variance of :meth:`log_prior` (None: no noise estimate yet)."""
        est = self._shown_estimate()
        if est is not None:
            return est[1]
        return self._full_variance()

    def _full_variance(self) -> float | None:
        if self.full < 2:
            return None
        per_question = float(np.trace(self.full_m2)) / (self.full - 1)
        # One full-cyclic question's precision, to turn its spread into a noise level.
        sigma2 = per_question / self._one_question_precision(self.n)
        return sigma2 * float(np.trace(_inverse(self.gram)))

    def spread(self) -> FloatArray | None:
        """(n, n) covariance of one question's own log prior around the key's (None: fewer
        than two full-cyclic questions). What one question's answers carry of position bias
        that no key-wide prior can divide out."""
        if self.full < 2:
            return None
        return self.full_m2 / (self.full - 1)

    def reliability(self) -> float:
        """Share of the estimated log prior to divide out, in [0, 1] (positive-part James-Stein:
        1 - variance / squared size)."""
        var = self.variance()
        if var is None:
            return 0.0
        size = float(np.sum(self.log_prior() ** 2))
        return min(1.0, max(0.0, 1.0 - var / size)) if size > 0 else 0.0

    def prior(self) -> FloatArray:
        """The prior to divide out: the estimate shrunk toward uniform by :meth:`reliability`."""
        if self._prior is None:
            lp = self.reliability() * self.log_prior()
            self._prior = normalise(np.exp(lp - lp.max()))
        return self._prior.copy()

    def to_dict(self) -> dict[str, Any]:
        return {
            "gram": [[float(x) for x in row] for row in self.gram],
            "moment": [float(x) for x in self.moment],
            "questions": self.questions,
            "full": self.full,
            "full_mean": [float(x) for x in self.full_mean],
            "full_m2": [[float(x) for x in row] for row in self.full_m2],
            "regression": self.regression.to_dict(),
        }

    @classmethod
    def from_dict(cls, n: int, d: dict[str, Any]) -> ContrastPrior:
        c = cls(n)
        c.gram = np.asarray(d["gram"], dtype=np.float64).reshape(n, n)
        c.moment = np.asarray(d["moment"], dtype=np.float64).reshape(n)
        c.questions = int(d["questions"])
        c.full = int(d["full"])
        c.full_mean = np.asarray(d["full_mean"], dtype=np.float64).reshape(n)
        c.full_m2 = np.asarray(d["full_m2"], dtype=np.float64).reshape(n, n)
        if "regression" in d:  # stored before it existed: it starts afresh
            c.regression = ShownRegression.from_dict(n, d["regression"])
        return c
