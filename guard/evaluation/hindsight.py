"""Gauges with hindsight: what a recording allows when the prior of all its questions is known.

Not methods: they divide out a prior learned from every question (in every order), so they say
what is in reach, and where a method falls short of it, how far.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from calibrators.gaussian_pool import GaussianPool
from calibrators.metrics import accuracy
from calibrators.permutation import cyclic_shift, debias, question_prior, to_original
from calibrators.schedule import refresh_due
from guard.evaluation.recorded import McqRecords


def hindsight_logs(rec: McqRecords) -> npt.NDArray[np.float64]:
    """(questions, n orders, n options): each cyclic order's answer, the prior of all the
    file's questions divided out, in the original option order (log)."""
    n = rec.n_options
    p = rec.probs_cyclic / rec.probs_cyclic.sum(axis=-1, keepdims=True)
    prior = np.exp(np.mean([np.log(question_prior(q)) for q in p], axis=0))
    return np.log(
        np.stack(
            [np.stack([to_original(debias(q[k], prior), cyclic_shift(n, k)) for k in range(n)])
             for q in p]
        )
    )  # fmt: skip


def every_order_for_least_certain(
    logs: npt.NDArray[np.float64], k: int, full: Sequence[int] = ()
) -> npt.NDArray[np.int64]:
    """Answers from :func:`hindsight_logs` when the ``k`` questions whose shown answer has the
    smallest top-two margin, and the questions ``full``, are pooled over every order, and the
    others answered in the shown order alone."""
    shown = logs[:, 0]
    top2 = np.sort(shown, axis=1)[:, -2:]
    rest = np.setdiff1d(np.arange(len(logs)), np.asarray(full, dtype=np.int64))
    margin = top2[rest, 1] - top2[rest, 0]
    pooled = np.concatenate(
        [np.asarray(full, dtype=np.int64), rest[np.argsort(margin, kind="stable")[:k]]]
    )
    answers: npt.NDArray[np.int64] = shown.argmax(axis=1)
    answers[pooled] = logs[pooled].sum(axis=1).argmax(axis=1)
    return answers


def gaussian_far_pair(logs: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """The far pair of :func:`hindsight_logs` pooled as the planner pools it
    (:mod:`calibrators.gaussian_pool`), with the covariances of all the file's questions."""
    n = logs.shape[-1]
    perms = [cyclic_shift(n, k) for k in range(n)]
    pool = GaussianPool(n)
    for row in logs:
        pool.add_full(row, perms)
    # every question at once: the posterior's map is computed once
    posterior = pool.pooled(logs[:, [0, n // 2]], [perms[0], perms[n // 2]])
    return np.asarray(posterior.argmax(axis=1), dtype=np.int64)


def two_call_answers(logs: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[np.int64]]:
    """The answers of label-free ways to spend two calls a question, from
    :func:`hindsight_logs`: ``"far pair"``, the shown order pooled with the far one (shift n/2)
    on every question, by their mean and (``"far pair, Gaussian"``) as the planner pools it;
    ``"every order, least certain"``, every order for the 1/(n-1) of the questions whose shown
    answer has the smallest top-two margin, the shown order alone for the rest."""
    n = logs.shape[-1]
    return {
        "far pair": (logs[:, 0] + logs[:, n // 2]).argmax(axis=1),
        "far pair, Gaussian": gaussian_far_pair(logs),
        "every order, least certain": every_order_for_least_certain(
            logs, round(len(logs) / (n - 1))
        ),
    }


def prior_paid_answers(
    logs: npt.NDArray[np.float64], warmup: int = 4, alpha: float = 0.02, budget: float = 2.0
) -> npt.NDArray[np.int64]:
    """The concentrated way of :func:`two_call_answers` once learning the prior is paid for out
    of the same budget: the first ``warmup`` questions and one in ``1/alpha`` after them ask
    every order (the planner's least warm-up and its refresh), and what is left of ``budget``
    calls a question buys every order for the least certain of the others. Still with
    hindsight (the prior of all questions divided out); a gauge, not a method."""
    q, n = logs.shape[0], logs.shape[-1]
    full = _full_questions(q, warmup, alpha)
    left = budget * q - q - len(full) * (n - 1)
    return every_order_for_least_certain(logs, max(int(left // (n - 1)), 0), full)


def _full_questions(q: int, warmup: int, alpha: float) -> list[int]:
    """The planner's warm-up (the first ``warmup`` questions) and its refresh (one in
    ``1/alpha`` after them): the questions that ask every order."""
    refresh = [warmup + i - 1 for i in range(1, q - warmup + 1) if refresh_due(i, alpha)]
    return list(range(min(warmup, q))) + refresh


def prior_paid_far_pair(
    logs: npt.NDArray[np.float64],
    gold: npt.ArrayLike,
    warmup: int = 4,
    alpha: float = 0.02,
    budget: float = 2.0,
) -> float:
    """Accuracy (%) of the Gaussian far pair (:func:`gaussian_far_pair`) once learning the
    prior is paid for out of the same budget, expected over arrival orders: the warm-up and
    the refresh ask every order, and what is left of ``budget`` calls a question buys the far
    pair for as many of the others as it affords, at random (the planner's budget guard
    rations by arrival, not by margin); the rest are answered in the shown order. Which
    questions fall in the warm-up is the arrival order's chance, so each question counts by
    the share of the questions each way answers. Still with hindsight (the prior and the
    covariances of all the questions); a gauge, not a method."""
    q, n = logs.shape[0], logs.shape[-1]
    g = np.asarray(gold)
    full = len(_full_questions(q, warmup, alpha)) / q
    left = budget - 1.0 - full * (n - 1)  # extra calls a question, after the prior's
    pair = min(max(left / (1.0 - full), 0.0), 1.0) if full < 1.0 else 0.0
    every = np.mean(logs.sum(axis=1).argmax(axis=1) == g)
    pairs = np.mean(gaussian_far_pair(logs) == g)
    shown = np.mean(logs[:, 0].argmax(axis=1) == g)
    return float(100.0 * (full * every + (1.0 - full) * (pair * pairs + (1.0 - pair) * shown)))


def alternating_share(logs: npt.NDArray[np.float64]) -> float:
    """Label-free: the share of the questions' own position biases (what is left of each
    question's answers across its orders once its content and the key's prior are taken out)
    that lies along the alternating pattern (+ - + - ...). For four options that is all that
    pooling the shown order with the far one leaves in place (for six or more, other patterns
    survive it too). Isotropic biases give 1/(n-1); ``nan`` for an odd number of options,
    which have no such pattern."""
    n = logs.shape[-1]
    if n % 2:
        return float("nan")
    lp = logs - np.log(np.exp(logs).sum(axis=-1, keepdims=True))
    resid = lp - lp.mean(axis=1, keepdims=True)
    resid = resid - resid.mean(axis=2, keepdims=True)
    # displayed position of original option i in cyclic order k: (i - k) mod n
    pos = (np.arange(n)[None, :] - np.arange(n)[:, None]) % n
    bias = np.stack([resid[:, pos == p].mean(axis=1) for p in range(n)], axis=1)
    alt = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    return float(np.sum((bias @ alt) ** 2) / n / np.sum(bias**2))


def two_call_ceiling(rec: McqRecords) -> float:
    """What two calls per question can reach, with hindsight: the best (by the labels) of the
    ways of :func:`two_call_answers` — the choice is the only use of the labels. Where it is
    more than a point under cyclic averaging, cyclic's gain is out of reach at two calls."""
    answers = two_call_answers(hindsight_logs(rec))
    return max(accuracy(pred, rec.gold) for pred in answers.values())
