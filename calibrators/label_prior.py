"""Label-prior correction for classification with label words.

A model asked to answer with one of L label words carries a prior over those words (it says
"Positive" more often than its inputs warrant). Every method here estimates that prior as a
distribution over the labels and divides it out:

- contextual calibration (Zhao et al., 2021): the model's answer on content-free probes;
- domain-context calibration (Fei et al., 2023): its answer on strings of random in-domain words;
- batch calibration (Zhou et al., 2024): the mean label distribution over the inputs seen;
- prior matching: the EM fixed point (Saerens et al., 2002) at which the mean calibrated
  posterior equals a target prior (uniform by default).

A prior is a ``log_prior`` vector of length L with ``exp(log_prior)`` summing to 1;
:func:`apply_prior` divides it out. Turning an API's top log-probabilities into label scores
(surface forms, missing labels) is :mod:`calibrators.label_scores`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Space = Literal["prob", "log"]


CONTENT_FREE: tuple[str, ...] = ("N/A", "", "[MASK]")
"""Zhao et al.'s content-free probe inputs."""


def _lse(x: FloatArray) -> FloatArray:
    # Folding logaddexp over the few label columns is several times faster than reducing along
    # the last axis, and the online calibrators call this once per request.
    cols = x.T
    out = cols[0]
    for col in cols[1:]:
        out = np.logaddexp(out, col)
    return np.asarray(out)


def _normalised(x: FloatArray) -> FloatArray:
    return np.asarray(x - _lse(x)[..., None])


def _log_mean(lq: FloatArray) -> FloatArray:
    return np.asarray(np.logaddexp.reduce(lq, axis=0) - math.log(lq.shape[0]))


def _scores(x: npt.ArrayLike, name: str = "logprobs", ndim: int | None = None) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim not in (1, 2) or (ndim is not None and a.ndim != ndim) or a.size == 0:
        want = {1: "(L,)", 2: "(N, L)"}.get(ndim or 0, "(L,) or (N, L)")
        raise ValueError(f"{name} must have shape {want}, got {a.shape}")
    if a.shape[-1] < 2:
        raise ValueError(f"{name} must hold at least 2 labels, got {a.shape[-1]}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} holds NaN or infinite values; bound missing labels first")
    return a


def _rows(x: npt.ArrayLike, n_labels: int) -> FloatArray:
    a = _scores(x)
    if a.shape[-1] != n_labels:
        raise ValueError(f"expected {n_labels} label scores per input, got {a.shape[-1]}")
    return _normalised(a.reshape(-1, n_labels))


def log_normalise(logprobs: npt.ArrayLike) -> FloatArray:
    """Log-softmax over the labels (last axis): vocabulary-level scores -> label distribution."""
    return _normalised(_scores(logprobs))


def apply_prior(logprobs: npt.ArrayLike, log_prior: npt.ArrayLike) -> FloatArray:
    """Divide a prior out of label scores, (L,) or (N, L), and renormalise (log space)."""
    a, p = _scores(logprobs), _scores(log_prior, "log_prior", ndim=1)
    if p.shape[0] != a.shape[-1]:
        raise ValueError(f"log_prior has {p.shape[0]} labels but logprobs has {a.shape[-1]}")
    return _normalised(a - p)


def probe_prompts(prompt: str, input_text: str, probes: Sequence[str] = CONTENT_FREE) -> list[str]:
    """The prompt with its test input replaced by each probe (content-free or random words).

    The last occurrence is replaced: the test input follows any instructions and examples.
    """
    at = prompt.rfind(input_text) if input_text else -1
    if at < 0:
        raise ValueError("input_text must be the part of the prompt that is the test input")
    if isinstance(probes, str) or not probes:
        raise ValueError("probes must be a non-empty list of strings")
    return [prompt[:at] + p + prompt[at + len(input_text) :] for p in probes]


def probe_prior(probe_logprobs: npt.ArrayLike) -> FloatArray:
    """The prior from the label scores (P, L) of the model's answers on the probes: the mean
    probe label distribution (contextual and domain-context calibration)."""
    return _normalised(_log_mean(log_normalise(_scores(probe_logprobs, "probe_logprobs", 2))))


def batch_prior(logprobs: npt.ArrayLike, space: Space = "prob") -> FloatArray:
    """Full-batch calibration prior of (N, L) scores: the mean label distribution ("prob", the
    paper's estimator) or the normalised mean label log-probability ("log", a geometric mean)."""
    lq = log_normalise(_scores(logprobs, ndim=2))
    if space not in ("prob", "log"):
        raise ValueError(f"space must be 'prob' or 'log', got {space!r}")
    return _normalised(_log_mean(lq) if space == "prob" else lq.mean(axis=0))


def _check(n_labels: int, pseudo_count: float) -> None:
    if n_labels < 2:
        raise ValueError(f"n_labels must be >= 2, got {n_labels}")
    if not (pseudo_count >= 0 and math.isfinite(pseudo_count)):
        raise ValueError(f"pseudo_count must be a finite number >= 0, got {pseudo_count}")


def _vector(values: Any, n_labels: int, name: str) -> FloatArray:
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (n_labels,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must hold {n_labels} finite numbers, got {values!r}")
    return v


def _shrunk(log_prior: FloatArray, n: npt.ArrayLike, pseudo_count: float) -> FloatArray:
    # Tempering the prior by n / (n + k) shrinks the correction toward none while few inputs are
    # seen: with the input itself in the batch, one input's estimate would cancel its evidence.
    c = np.asarray(n, dtype=np.float64)
    f = np.divide(c, c + pseudo_count, out=np.zeros_like(c), where=c > 0)
    return _normalised(_normalised(log_prior) * f[..., None])


class BatchCalibrator:
    """Online batch calibration (Zhou et al., 2024) for one calibration key.

    Keeps the running mean label distribution of the inputs seen, in log space (``space="prob"``:
    the log of the mean probability, the paper's estimator; ``"log"``: the mean log-probability,
    a geometric mean) and divides it out. The batch includes the input being classified: call
    :meth:`update` before :meth:`calibrate`, or use :meth:`stream`. ``pseudo_count`` inputs'
    worth of "no bias" shrink the correction while the key is new. The state is JSON-ready:
    ``to_dict`` / ``from_dict`` round-trip exactly.
    """

    def __init__(self, n_labels: int, *, space: Space = "prob", pseudo_count: float = 1.0) -> None:
        _check(n_labels, pseudo_count)
        if space not in ("prob", "log"):
            raise ValueError(f"space must be 'prob' or 'log', got {space!r}")
        self.n_labels, self.space, self.pseudo_count = n_labels, space, float(pseudo_count)
        self.count = 0
        self.stat = np.zeros(n_labels)

    def _running(self, lq: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The statistic and count after each row of ``lq`` is added, in order."""
        n0 = self.count
        counts = n0 + np.arange(1.0, lq.shape[0] + 1.0)
        if self.space == "prob":
            acc = np.logaddexp.accumulate(lq, axis=0)
            if n0:
                acc = np.logaddexp(acc, self.stat + math.log(n0))
            return acc - np.log(counts)[:, None], counts
        return (np.cumsum(lq, axis=0) + self.stat * n0) / counts[:, None], counts

    def update(self, logprobs: npt.ArrayLike) -> None:
        """Add one input's label scores (L,) or several (N, L)."""
        stats, counts = self._running(_rows(logprobs, self.n_labels))
        self.stat, self.count = stats[-1], int(counts[-1])

    def stream(self, logprobs: npt.ArrayLike, *, include_current: bool = True) -> FloatArray:
        """Calibrate (N, L) inputs arriving in this order and learn from them: row i is
        calibrated with the state after the rows before it (and row i itself when
        ``include_current``) -- :meth:`update` then :meth:`calibrate` per row, vectorised."""
        lq = _rows(logprobs, self.n_labels)
        stats, counts = self._running(lq)
        if include_current:
            seen, prev = stats, counts
        else:
            seen, prev = np.vstack([self.stat[None], stats[:-1]]), counts - 1
        out = _normalised(lq - _shrunk(seen, prev, self.pseudo_count))
        self.stat, self.count = stats[-1], int(counts[-1])
        return out

    @property
    def log_prior(self) -> FloatArray:
        """The prior divided out now (uniform before any input)."""
        return _shrunk(self.stat, self.count, self.pseudo_count)

    def calibrate(self, logprobs: npt.ArrayLike) -> FloatArray:
        """Calibrated log label distribution of (L,) or (N, L) scores; does not update."""
        return apply_prior(logprobs, self.log_prior)

    def to_dict(self) -> dict[str, Any]:
        return {"n_labels": self.n_labels, "space": self.space, "pseudo_count": self.pseudo_count,
                "count": self.count, "stat": [float(v) for v in self.stat]}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BatchCalibrator:
        cal = cls(int(d["n_labels"]), space=d["space"], pseudo_count=float(d["pseudo_count"]))
        cal.count, cal.stat = int(d["count"]), _vector(d["stat"], cal.n_labels, "stat")
        return cal


def _log_target(target: npt.ArrayLike | None, n_labels: int) -> FloatArray:
    if target is None:
        return np.full(n_labels, -math.log(n_labels))
    t = np.asarray(target, dtype=np.float64)
    if t.shape != (n_labels,) or not np.all(t > 0) or not np.all(np.isfinite(t)):
        raise ValueError(f"target must be {n_labels} positive numbers, got {target!r}")
    return np.asarray(np.log(t / t.sum()))


def _em_step(lq: FloatArray, w: FloatArray, log_target: FloatArray) -> tuple[FloatArray, float]:
    step = _log_mean(_normalised(lq - w)) - log_target
    return _normalised(w + step), float(np.max(np.abs(step)))


@dataclass(frozen=True)
class PriorMatch:
    """Result of :func:`prior_match`: the prior, the EM iterations run and whether they met tol."""

    log_prior: FloatArray
    iterations: int
    converged: bool


def prior_match(
    logprobs: npt.ArrayLike,
    target: npt.ArrayLike | None = None,
    *,
    init: npt.ArrayLike | None = None,
    tol: float = 1e-10,
    max_iter: int = 10_000,
) -> PriorMatch:
    """The prior whose removal makes the mean calibrated posterior of (N, L) scores equal
    ``target`` (uniform by default): EM fixed-point iteration from ``init`` (uniform), until the
    largest log-step is below ``tol``."""
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    lq = log_normalise(_scores(logprobs, ndim=2))
    lt = _log_target(target, lq.shape[1])
    w = np.zeros(lq.shape[1]) if init is None else _vector(init, lq.shape[1], "init")
    for i in range(1, max_iter + 1):
        w, change = _em_step(lq, w, lt)
        if change < tol:
            return PriorMatch(w, i, True)
    return PriorMatch(w, max_iter, False)


class PriorMatcher:
    """Online prior matching for one calibration key.

    Keeps the label distributions of the ``capacity`` most recent inputs and, per update, takes
    up to ``em_steps`` EM steps toward their fixed point, warm-started from the last one (it moves
    little per input, so one step tracks it). The batch includes the input being classified:
    call :meth:`update` before :meth:`calibrate`, or use :meth:`stream`. ``pseudo_count`` shrinks
    the correction while the key is new, as in :class:`BatchCalibrator`. The state (reservoir
    included) is JSON-ready: ``to_dict`` / ``from_dict`` round-trip exactly.
    """

    def __init__(
        self,
        n_labels: int,
        *,
        target: npt.ArrayLike | None = None,
        capacity: int = 256,
        pseudo_count: float = 1.0,
        em_steps: int = 1,
        tol: float = 1e-10,
    ) -> None:
        _check(n_labels, pseudo_count)
        if capacity < 1 or em_steps < 1:
            raise ValueError(f"capacity and em_steps must be >= 1, got {capacity}, {em_steps}")
        self.n_labels, self.capacity, self.em_steps = n_labels, capacity, em_steps
        self.pseudo_count, self.tol = float(pseudo_count), float(tol)
        # Kept as given so that to_dict / from_dict round-trip exactly (no renormalising drift).
        self._target = None if target is None else [float(v) for v in np.ravel(target)]
        self._log_target = _log_target(target, n_labels)
        self.weights = np.full(n_labels, -math.log(n_labels))
        self.count = 0
        self._buf = np.zeros((capacity, n_labels))
        self._size = self._next = 0

    @property
    def target(self) -> FloatArray:
        """The label distribution the mean calibrated posterior is matched to."""
        return np.exp(self._log_target)

    def _add(self, row: FloatArray) -> None:
        self._buf[self._next] = row
        self._next = (self._next + 1) % self.capacity
        self._size, self.count = min(self._size + 1, self.capacity), self.count + 1

    def _solve(self) -> None:
        recent = self._buf[: self._size]  # EM is order-free: no need to unroll the ring
        for _ in range(self.em_steps):
            self.weights, change = _em_step(recent, self.weights, self._log_target)
            if change < self.tol:
                break

    def update(self, logprobs: npt.ArrayLike) -> None:
        """Add one input's label scores (L,) or several (N, L), then take the EM steps."""
        for row in _rows(logprobs, self.n_labels):
            self._add(row)
        self._solve()

    def stream(self, logprobs: npt.ArrayLike, *, include_current: bool = True) -> FloatArray:
        """Calibrate (N, L) inputs arriving in this order and learn from them, one at a time:
        row i is calibrated after the rows before it (and row i itself when ``include_current``)
        were added and solved for."""
        lq = _rows(logprobs, self.n_labels)
        out = np.empty_like(lq)
        for i, row in enumerate(lq):
            if include_current:
                self._add(row)
                self._solve()
            out[i] = row - self.log_prior
            if not include_current:
                self._add(row)
                self._solve()
        return _normalised(out)

    @property
    def log_prior(self) -> FloatArray:
        """The prior divided out now (uniform before any input)."""
        return _shrunk(self.weights, self._size, self.pseudo_count)

    def calibrate(self, logprobs: npt.ArrayLike) -> FloatArray:
        """Calibrated log label distribution of (L,) or (N, L) scores; does not update."""
        return apply_prior(logprobs, self.log_prior)

    def to_dict(self) -> dict[str, Any]:
        # The ring is saved slot by slot with its write position: EM sums over the slots, so a
        # reordered copy would drift from the original in the last bits.
        return {"n_labels": self.n_labels, "target": self._target, "capacity": self.capacity,
                "pseudo_count": self.pseudo_count, "em_steps": self.em_steps, "tol": self.tol,
                "count": self.count, "weights": [float(v) for v in self.weights],
                "recent": self._buf[: self._size].tolist(), "next": self._next}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PriorMatcher:
        keys = ("target", "capacity", "pseudo_count", "em_steps", "tol")
        pm = cls(int(d["n_labels"]), **{k: d[k] for k in keys})
        recent = np.asarray(d["recent"], dtype=np.float64).reshape(-1, pm.n_labels)
        size, nxt = recent.shape[0], int(d["next"])
        if size > pm.capacity or not np.all(np.isfinite(recent)):
            raise ValueError(f"recent must hold at most {pm.capacity} rows of finite numbers")
        if nxt != size % pm.capacity and not (size == pm.capacity and 0 <= nxt < size):
            raise ValueError(f"next={nxt} is not a write position for {size} saved rows")
        pm._buf[:size] = recent
        pm._size, pm._next = size, nxt
        pm.weights, pm.count = _vector(d["weights"], pm.n_labels, "weights"), int(d["count"])
        return pm
