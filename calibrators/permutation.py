"""Permutation debiasing for multiple-choice questions.

Conventions used throughout (they match the recorded data in ``shared/data/recorded``):

- An *order* (permutation) is a tuple ``perm`` of length n where ``perm[j]`` is the index of the
  original option shown at displayed ID position j (A, B, ... or 1, 2, ...).
- The cyclic shift by k is ``perm[j] = (j + k) % n``; shift 0 is the original order.
- A distribution over displayed IDs is mapped back to the original options by
  :func:`to_original`: ``out[perm[j]] = p[j]``.

PriDe (Zheng et al., ICLR 2024) models the observed ID distribution as
``p_obs(j) ∝ prior(j) · p_debiased(option shown at j)``. Over the n cyclic shifts every option
visits every position once, so the geometric mean over shifts of ``p_obs(j)`` is proportional to
``prior(j)`` alone: :func:`question_prior`. Averaging per-question priors over a few questions
(:class:`PriorEstimator`) gives the prior that :func:`debias` divides out of a single observation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

Perm = tuple[int, ...]
FloatArray = npt.NDArray[np.float64]
T = TypeVar("T")

MIN_OPTIONS = 2
MAX_OPTIONS = 10
# Probabilities are floored before logs and division so that a 0 from an API never yields inf/NaN.
EPS = 1e-12


def _check_n(n: int) -> None:
    if not MIN_OPTIONS <= n <= MAX_OPTIONS:
        raise ValueError(f"number of options must be in {MIN_OPTIONS}..{MAX_OPTIONS}, got {n}")


def _movable(n: int, fixed: Sequence[int]) -> list[int]:
    fixed_set = set(fixed)
    if any(not 0 <= f < n for f in fixed_set):
        raise ValueError(f"fixed positions {sorted(fixed_set)} out of range for {n} options")
    return [j for j in range(n) if j not in fixed_set]


def cyclic_shift(n: int, k: int, fixed: Sequence[int] = ()) -> Perm:
    """The order that shifts option contents by k; positions in ``fixed`` keep their option.

    With ``fixed`` the shift runs over the remaining positions only, so an option such as
    "all of the above" stays where the question put it.
    """
    _check_n(n)
    mov = _movable(n, fixed)
    perm = list(range(n))
    m = len(mov)
    for i, j in enumerate(mov):
        perm[j] = mov[(i + k) % m]
    return tuple(perm)


def cyclic_permutations(n: int, fixed: Sequence[int] = ()) -> list[Perm]:
    """All distinct cyclic shifts (n of them, or n - len(fixed) with fixed positions)."""
    _check_n(n)
    m = len(_movable(n, fixed))
    return [cyclic_shift(n, k, fixed) for k in range(max(m, 1))]


def full_permutations(n: int, fixed: Sequence[int] = ()) -> Iterator[Perm]:
    """Every order of the movable options (n! of them: 3,628,800 for n = 10), lazily."""
    _check_n(n)
    mov = _movable(n, fixed)
    for arrangement in itertools.permutations(mov):
        perm = list(range(n))
        for j, src in zip(mov, arrangement, strict=True):
            perm[j] = src
        yield tuple(perm)


def count_full_permutations(n: int, fixed: Sequence[int] = ()) -> int:
    _check_n(n)
    return math.factorial(len(_movable(n, fixed)))


def _check_perm(perm: Sequence[int], n: int) -> None:
    if len(perm) != n or sorted(perm) != list(range(n)):
        raise ValueError(f"{tuple(perm)} is not a permutation of {n} options")


def apply_permutation(options: Sequence[T], perm: Perm) -> list[T]:
    """The option contents as displayed under ``perm`` (position j shows ``options[perm[j]]``)."""
    _check_perm(perm, len(options))
    return [options[i] for i in perm]


def to_original(p_displayed: npt.ArrayLike, perm: Perm) -> FloatArray:
    """Map a distribution over displayed ID positions back to the original options."""
    p = np.asarray(p_displayed, dtype=np.float64)
    if p.shape != (len(perm),):
        raise ValueError(f"distribution has shape {p.shape}, expected ({len(perm)},)")
    _check_perm(perm, len(perm))
    out = np.empty_like(p)
    out[list(perm)] = p
    return out


def normalise(p: npt.ArrayLike) -> FloatArray:
    """Clip at EPS and renormalise to sum 1 (API distributions are often slightly off)."""
    a = np.maximum(np.asarray(p, dtype=np.float64), EPS)
    with np.errstate(over="ignore"):
        total = a.sum(axis=-1, keepdims=True)
    if not np.isfinite(total).all() and np.isfinite(a).all():
        # Finite weights whose sum overflows (exp of large logits): scale by the largest first,
        # or every entry would come out 0. Inputs that sum finitely take the plain path.
        a = np.maximum(a / a.max(axis=-1, keepdims=True), EPS)
        total = a.sum(axis=-1, keepdims=True)
    return a / total  # type: ignore[no-any-return]


def counts_distribution(counts: npt.ArrayLike, pseudo: float = 0.5) -> FloatArray:
    """A distribution over IDs from sampled answers (no logprobs): ``counts[j]`` of the samples
    answered ID j. The ``pseudo`` count per ID (Jeffreys: 0.5) keeps an ID never sampled from
    a zero that would dominate log-space pooling and prior estimation."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or (c < 0).any():
        raise ValueError(f"counts must be a 1-D array of non-negative numbers, got {c}")
    return normalise(c + pseudo)


def question_prior(p_cyclic: npt.ArrayLike) -> FloatArray:
    """Per-question PriDe prior from the n cyclic runs.

    ``p_cyclic`` is (n, n): row k is the distribution over displayed IDs under cyclic shift k.
    The prior of position j is the geometric mean over runs of ``p_k[j]``, normalised.
    """
    p = np.asarray(p_cyclic, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != p.shape[1]:
        raise ValueError(f"expected an (n, n) array of the n cyclic runs, got shape {p.shape}")
    log_mean = np.log(normalise(p)).mean(axis=0)
    w = np.exp(log_mean - log_mean.max())
    return w / w.sum()  # type: ignore[no-any-return]


def debias(p_displayed: npt.ArrayLike, prior: npt.ArrayLike) -> FloatArray:
    """PriDe debiasing of one observation: divide by the position prior, renormalise.

    Works in displayed-ID space; map the result with :func:`to_original` afterwards.
    """
    p = normalise(p_displayed)
    pr = normalise(prior)
    if p.shape != pr.shape:
        raise ValueError(f"observation has {p.shape[-1]} options but the prior has {pr.shape[-1]}")
    return normalise(p / pr)


def average_orders(observations: Sequence[tuple[Perm, npt.ArrayLike]]) -> FloatArray:
    """Average of observations over several orders, each mapped back to the original options.

    With all cyclic shifts this is the cyclic-averaging baseline; with every permutation it is
    full-permutation averaging.
    """
    if not observations:
        raise ValueError("average_orders needs at least one observation")
    mapped = [to_original(normalise(p), perm) for perm, p in observations]
    return normalise(np.mean(mapped, axis=0))


class PriorEstimator:
    """Online estimate of the ID-position prior: the running mean of per-question priors.

    ``max_count`` turns the mean into an exponential moving average once that many questions
    were seen, so the prior can follow a model that changes under you. The state is three plain
    fields; :meth:`to_dict` / :meth:`from_dict` round-trip it for the store.
    """

    def __init__(self, n: int, max_count: int | None = None) -> None:
        _check_n(n)
        if max_count is not None and max_count < 1:
            raise ValueError(f"max_count must be >= 1, got {max_count}")
        self.n = n
        self.max_count = max_count
        self.count = 0
        self._mean = np.full(n, 1.0 / n)

    @property
    def prior(self) -> FloatArray:
        """The current estimate (uniform before any update)."""
        return self._mean.copy()

    def update(self, prior: npt.ArrayLike) -> None:
        p = normalise(prior)
        if p.shape != (self.n,):
            raise ValueError(f"prior has shape {p.shape}, expected ({self.n},)")
        self.count += 1
        weight = 1.0 / min(self.count, self.max_count or self.count)
        self._mean = self._mean + weight * (p - self._mean)

    def update_from_cyclic(self, p_cyclic: npt.ArrayLike) -> FloatArray:
        """Estimate one question's prior from its n cyclic runs, fold it in, and return it."""
        q = question_prior(p_cyclic)
        self.update(q)
        return q

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "max_count": self.max_count,
            "count": self.count,
            "mean": [float(x) for x in self._mean],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PriorEstimator:
        est = cls(int(d["n"]), d.get("max_count"))
        est.count = int(d["count"])
        mean = np.asarray(d["mean"], dtype=np.float64)
        if mean.shape != (est.n,):
            raise ValueError(f"stored prior has {mean.size} entries, expected {est.n}")
        est._mean = mean
        return est
