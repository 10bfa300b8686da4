"""Position calibration for LLM judges.

A judge asked "which response is better?" tends to favour a display position (usually the first)
regardless of content. Asking the same comparison under several orders and mapping every answer
back to the original candidates removes that preference on average: Wang et al. 2023 ("Large
Language Models are not Fair Evaluators") call this *balanced position calibration*; Zheng et al.
2023 (MT-Bench) use the swap to report whether a verdict survives a change of order.

Orders follow :mod:`calibrators.permutation`: ``perm[j]`` is the original candidate shown at
displayed position j. A judge's answer under one order is either

- a *verdict*: the displayed position that won (``0`` = first shown), or ``None`` for a tie; or
- *scores*: one number per displayed position (1-10 ratings, or a probability distribution over
  "which is better").

:func:`aggregate_verdicts` and :func:`aggregate_scores` return a :class:`PositionResult`;
:func:`consistency_rate` summarises many of them with :func:`calibrators.metrics.order_consistency`.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from calibrators import metrics
from calibrators.permutation import (
    MAX_OPTIONS,
    MIN_OPTIONS,
    FloatArray,
    Perm,
    cyclic_permutations,
    full_permutations,
    normalise,
    to_original,
)

Verdict = int | None
"""The displayed position that won under one order, or ``None`` for a tie."""

# Scores averaged over orders in a different sequence can differ in the last bits; two candidates
# this close are a tie, so the winner never depends on the order observations are passed in.
_TIE_RTOL = 1e-9
_TIE_ATOL = 1e-12


@dataclass(frozen=True)
class PositionResult:
    """The position-calibrated decision for one item (one set of candidates).

    Attributes:
        winner: original index of the winning candidate, or ``None`` when the top is tied.
        scores: per original candidate, the mean score over orders (:func:`aggregate_scores`)
            or the vote share (:func:`aggregate_verdicts`, sums to 1; a tie splits its vote evenly).
        order_winners: per order, in the order given, the winner mapped back to the original
            candidates (``None`` for a tie under that order).
        consistent: every order picked the same original candidate (all ties also agree).
        first_position_rate: share of orders in which the first displayed position won outright.
            A judge with no position preference that always picks the same candidate scores
            ``1/k`` under cyclic orders; one that always picks the first position scores 1.
        balanced: every candidate was shown at every position equally often, the condition
            under which a constant position bonus cancels exactly in ``scores``.
    """

    winner: int | None
    scores: tuple[float, ...]
    order_winners: tuple[int | None, ...]
    consistent: bool
    first_position_rate: float
    balanced: bool


def judge_orders(k: int, scheme: Literal["cyclic", "full"] = "cyclic") -> list[Perm]:
    """The orders to ask a judge for k candidates (2..10).

    ``"cyclic"`` gives k orders in which every candidate visits every position once; ``"full"``
    gives all k! orders. For k = 2 both are the swap: ``[(0, 1), (1, 0)]``. Each order costs one
    upstream call, so ``"full"`` is only practical for small k (k = 5 is already 120 calls).
    """
    if scheme == "cyclic":
        return cyclic_permutations(k)
    if scheme == "full":
        return list(full_permutations(k))
    raise ValueError(f"unknown order scheme {scheme!r}: use 'cyclic' or 'full'")


def _check_perms(perms: Sequence[Sequence[int]]) -> list[Perm]:
    if not perms:
        raise ValueError("no orders given: pass at least one (perm, observation) pair")
    k = len(perms[0])
    if not MIN_OPTIONS <= k <= MAX_OPTIONS:
        raise ValueError(f"number of candidates must be in {MIN_OPTIONS}..{MAX_OPTIONS}, got {k}")
    out = []
    for i, perm in enumerate(perms):
        p = tuple(operator.index(x) for x in perm)
        if sorted(p) != list(range(k)):
            raise ValueError(
                f"order {i} is {p}, which is not a permutation of {k} candidates "
                f"(0..{k - 1}, each once, like order 0)"
            )
        out.append(p)
    return out


def _top(x: FloatArray) -> int | None:
    best = np.isclose(x, x.max(), rtol=_TIE_RTOL, atol=_TIE_ATOL)
    return int(np.argmax(x)) if int(best.sum()) == 1 else None


def _is_balanced(perms: list[Perm]) -> bool:
    k = len(perms[0])
    counts = np.zeros((k, k), dtype=np.int64)
    for perm in perms:
        counts[np.arange(k), perm] += 1
    return bool(np.all(counts == counts[0, 0]))


def _result(
    scores: FloatArray, perms: list[Perm], displayed_winners: list[Verdict]
) -> PositionResult:
    order_winners = tuple(
        None if d is None else perm[d] for perm, d in zip(perms, displayed_winners, strict=True)
    )
    return PositionResult(
        winner=_top(scores),
        scores=tuple(float(s) for s in scores),
        order_winners=order_winners,
        consistent=len(set(order_winners)) == 1,
        first_position_rate=sum(d == 0 for d in displayed_winners) / len(perms),
        balanced=_is_balanced(perms),
    )


def aggregate_verdicts(observations: Sequence[tuple[Sequence[int], Verdict]]) -> PositionResult:
    """Vote over discrete verdicts, each given as ``(perm, displayed winner or None)``.

    Each order casts one vote for the original candidate it picked; a tie spreads its vote evenly
    over all candidates (it is evidence for none of them). ``scores`` are the vote shares.
    """
    perms = _check_perms([perm for perm, _ in observations])
    k = len(perms[0])
    votes = np.zeros(k)
    winners: list[Verdict] = []
    for i, (perm, (_, verdict)) in enumerate(zip(perms, observations, strict=True)):
        if verdict is None:
            votes += 1.0 / k
            winners.append(None)
            continue
        if isinstance(verdict, bool):
            raise ValueError(f"verdict {i} is {verdict}: pass the displayed position (int) or None")
        j = operator.index(verdict)
        if not 0 <= j < k:
            raise ValueError(
                f"verdict {i} is position {j}, but only positions 0..{k - 1} were shown; "
                "pass the displayed (0-based) position that won, or None for a tie"
            )
        votes[perm[j]] += 1.0
        winners.append(j)
    return _result(votes / len(perms), perms, winners)


def aggregate_scores(
    observations: Sequence[tuple[Sequence[int], npt.ArrayLike]], *, normalise_each: bool = False
) -> PositionResult:
    """Balanced position calibration of per-position scores, each given as ``(perm, scores)``.

    ``scores[j]`` is the judge's score for the candidate shown at position j. Every observation is
    mapped back to the original candidates and the results are averaged. ``normalise_each``
    first renormalises each observation to sum 1 (for probability distributions from an API that
    do not quite); leave it off for ratings such as 1-10, whose scale is meaningful.
    """
    perms = _check_perms([perm for perm, _ in observations])
    k = len(perms[0])
    mapped = []
    winners: list[Verdict] = []
    for i, (perm, (_, obs)) in enumerate(zip(perms, observations, strict=True)):
        s = np.asarray(obs, dtype=np.float64)
        if s.shape != (k,):
            raise ValueError(f"scores {i} have shape {s.shape}; pass one score per candidate ({k})")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"scores {i} contain NaN or inf: {s.tolist()}")
        if normalise_each:
            s = normalise(s)
        winners.append(_top(s))
        mapped.append(to_original(s, perm))
    return _result(np.mean(mapped, axis=0), perms, winners)


def consistency_rate(results: Sequence[PositionResult]) -> float:
    """Share of items (in percent) whose every order picked the same candidate.

    Items may have been asked under different numbers of orders.
    """
    if not results:
        raise ValueError("consistency_rate needs at least one result")
    width = max(len(r.order_winners) for r in results)
    # Ties become -1 so the matrix is integer; padding a row with its own first verdict keeps
    # "all equal" unchanged, which lets items with fewer orders share one (N, K) matrix.
    rows = [[-1 if w is None else w for w in r.order_winners] for r in results]
    matrix = [row + [row[0]] * (width - len(row)) for row in rows]
    return metrics.order_consistency(matrix)
