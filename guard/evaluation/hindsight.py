"""Gauges with hindsight: what a recording allows when the prior of all its questions is known.

Not methods: they divide out a prior learned from every question (in every order), so they say
what is in reach, and where a method falls short of it, how far.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from calibrators.metrics import accuracy
from calibrators.permutation import cyclic_shift, debias, question_prior, to_original
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


def two_call_answers(logs: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[np.int64]]:
    """The answers of two label-free ways to spend two calls a question, from
    :func:`hindsight_logs`: ``"far pair"``, the shown order pooled with the far one (shift n/2)
    on every question; ``"every order, least certain"``, every order for the 1/(n-1) of the
    questions whose shown answer has the smallest top-two margin, the shown order alone for
    the rest."""
    n = logs.shape[-1]
    shown = logs[:, 0]
    top2 = np.sort(shown, axis=1)[:, -2:]
    least = np.argsort(top2[:, 1] - top2[:, 0], kind="stable")[: round(len(logs) / (n - 1))]
    concentrated = shown.argmax(axis=1)
    concentrated[least] = logs[least].sum(axis=1).argmax(axis=1)
    return {
        "far pair": (shown + logs[:, n // 2]).argmax(axis=1),
        "every order, least certain": concentrated,
    }


def two_call_ceiling(rec: McqRecords) -> float:
    """What two calls per question can reach, with hindsight: the better (by the labels) of the
    two ways of :func:`two_call_answers` — the choice is the only use of the labels. Where it is
    more than a point under cyclic averaging, cyclic's gain is out of reach at two calls."""
    answers = two_call_answers(hindsight_logs(rec))
    return max(accuracy(pred, rec.gold) for pred in answers.values())
