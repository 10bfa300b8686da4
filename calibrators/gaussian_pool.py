"""Pooling some of a question's orders by what each direction of the answer is worth.

A question's answer in order ``k``, mapped back to the original options and taken in centred
logs, is modelled as ``c + M_k d + e_k``: its content ``c`` (option space), its own position
bias ``d`` (position space; ``M_k`` puts position ``j``'s entry on the option shown there) and
order noise ``e_k`` (position space too). A whole cycle of orders cancels ``d``; fewer do not,
and which part of it stays depends on the orders: the shown order and the far one (shift n/2)
leave the alternating pattern (for 4 options, A + C against B + D), which they cannot tell from
content, while their difference shows the rest of ``d`` free of content.

The plain mean of the orders asked weighs every direction alike. This module takes the
posterior mean of ``c`` instead (Gaussian, linear): each direction of the answer is weighed by
how much of it is content rather than the question's own bias or noise, with the three
covariances learned from the questions asked in every cyclic order (the warm-up and the
refresh), where ``c``, ``d`` and ``e`` separate exactly. The content's covariance is taken as
exchangeable (a multiple of the centring matrix): the options' original letters say nothing of
which is right, so what the data would say about them (a file's gold-letter skew) is not
learned. Position bias keeps its own shape (a model's first position can vary more than its
last), with the share of the order noise a question's bias read off its orders carries (1/n)
taken out. The noise is exact in total but only partly in shape: what is left of a full
question once content and bias are out mixes each position's noise with the others'
(``((n-3) S + C(S)) / (n-2)`` in expectation, ``C`` averaging along the cyclic diagonals).
Undoing that mix was measured and not kept (a review: on the recordings it moved llama-65b's
RStd from 2.58 to 2.66, over PriDe's 2.65, and SmolLM2 from 28.3 % to 28.0 %).

The covariances are running sums (JSON-serialisable), shrunk toward their exchangeable part
while few questions are seen; the pooling is used from :data:`MIN_FULL` full questions on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from calibrators.permutation import FloatArray, Perm

MIN_FULL = 8  # full questions before the covariances are used
SHRINK = 8.0  # pseudo-questions of the exchangeable shape each covariance is shrunk toward


def _placement(perm: Sequence[int], n: int) -> FloatArray:
    """``M[i, j] = 1`` where option ``i`` is shown at position ``j``."""
    m = np.zeros((n, n))
    for j, i in enumerate(perm):
        m[i, j] = 1.0
    return m


def _centre(x: FloatArray) -> FloatArray:
    return x - x.mean(axis=-1, keepdims=True)  # type: ignore[no-any-return]


def _psd(s: FloatArray) -> FloatArray:
    """``s`` with its negative eigenvalues (an estimate's sampling error) set to zero."""
    vals, vecs = np.linalg.eigh((s + s.T) / 2.0)
    return (vecs * np.maximum(vals, 0.0)) @ vecs.T  # type: ignore[no-any-return]


class GaussianPool:
    """Covariances of content, a question's own position bias and order noise, and the
    posterior mean of the content from any set of orders."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0  # full questions seen
        self.content = 0.0  # sum over questions of |c|^2 (centred)
        self.bias_mean = np.zeros(n)  # running mean of d (position space)
        self.bias_co = np.zeros((n, n))  # Welford co-moment of d
        self.noise = np.zeros((n, n))  # sum over questions and orders of e e^T

    def add_full(self, logs: FloatArray, perms: Sequence[Perm]) -> None:
        """Fold in one question asked in every cyclic order: ``logs`` (n, n), each order's
        log answer in original option order; ``perms`` the orders."""
        y = _centre(np.asarray(logs, dtype=np.float64))
        c = y.mean(axis=0)
        # position j of order k shows option perms[k][j]
        resid = np.stack([(y[k] - c)[list(p)] for k, p in enumerate(perms)])
        d = resid.mean(axis=0)
        e = resid - d
        self.count += 1
        # c still holds the noise's share (1/n of it per order); taken out in _covariances
        self.content += float(c @ c)
        delta = d - self.bias_mean
        self.bias_mean = self.bias_mean + delta / self.count
        self.bias_co = self.bias_co + np.outer(delta, d - self.bias_mean)
        self.noise = self.noise + e.T @ e

    @property
    def ready(self) -> bool:
        return self.count >= MIN_FULL

    def _covariances(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        n = self.n
        cen = np.eye(n) - 1.0 / n
        w = self.count / (self.count + SHRINK)

        def shrunk(s: FloatArray) -> FloatArray:
            s = cen @ s @ cen
            s = w * s + (1.0 - w) * np.trace(s) / (n - 1) * cen
            return _psd(s)

        # (n-1)(n-2) degrees of freedom a question: content and bias take 2(n-1) of n(n-1).
        # Exact in trace, not in shape (the module's docstring).
        noise = self.noise / (self.count * max(n - 2, 1))
        # A question's d read off its cyclic orders carries the mean of their noise, 1/n of it.
        bias = self.bias_co / max(self.count - 1, 1) - noise / n
        content = max(self.content / self.count - np.trace(noise) / n, 1e-6)
        return content / (n - 1) * cen, shrunk(bias), shrunk(noise)

    def gain(self, perms: Sequence[Perm]) -> FloatArray:
        """(n, k·n): the linear map from the answers in orders ``perms`` (each centred, in
        original option order, stacked) to the posterior mean of the content."""
        n, k = self.n, len(perms)
        sc, sd, se = self._covariances()
        cen = np.eye(n) - 1.0 / n
        place = [cen @ _placement(p, n) for p in perms]
        j = np.vstack([cen] * k)
        pm = np.vstack(place)
        cov = j @ sc @ j.T + pm @ sd @ pm.T
        for o, m in enumerate(place):
            cov[o * n : (o + 1) * n, o * n : (o + 1) * n] += m @ se @ m.T
        # Each order's answer is centred, so cov is singular along each block's all-ones
        # direction by design; rounding leaves those eigenvalues at ~1e-16, which numpy's
        # default cut-off would invert. A cut-off relative to the largest drops them.
        out: FloatArray = cen @ sc @ j.T @ np.linalg.pinv(cov, rcond=1e-9, hermitian=True)
        return out

    def pooled(self, logs: FloatArray, perms: Sequence[Perm]) -> FloatArray:
        """The posterior mean of the content (centred logs, original option order) given
        ``logs`` (k, n): the answers in orders ``perms``, the key's prior divided out. Also
        for many questions asked in the same orders at once: ``logs`` (q, k, n) gives (q, n)."""
        z = _centre(np.asarray(logs, dtype=np.float64))
        out: FloatArray = z.reshape(*z.shape[:-2], -1) @ self.gain(perms).T
        return out

    def copy(self) -> GaussianPool:
        g = GaussianPool(self.n)
        g.count, g.content = self.count, self.content
        g.bias_mean, g.bias_co = self.bias_mean.copy(), self.bias_co.copy()
        g.noise = self.noise.copy()
        return g

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "content": self.content,
            "bias_mean": self.bias_mean.tolist(),
            "bias_co": self.bias_co.tolist(),
            "noise": self.noise.tolist(),
        }

    @classmethod
    def from_dict(cls, n: int, d: dict[str, Any]) -> GaussianPool:
        g = cls(n)
        g.count = int(d["count"])
        g.content = float(d["content"])
        g.bias_mean = np.asarray(d["bias_mean"], dtype=np.float64).reshape(n)
        g.bias_co = np.asarray(d["bias_co"], dtype=np.float64).reshape(n, n)
        g.noise = np.asarray(d["noise"], dtype=np.float64).reshape(n, n)
        return g
