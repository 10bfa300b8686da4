"""Pooling the answers of several orders so that the question's own position bias cancels.

A question's answer in order ``k``, mapped back to the original options and taken in logs, is
modelled as ``content[i] + bias[position of i in order k] + level[k]``: the key's prior is only
the average of the ``bias`` over questions, and what is left of it on one question is its own.
A whole cycle of orders shows every option at every position, so the mean of the logs cancels
that bias exactly. Fewer orders do not: the mean of two or three leaves a part of it in the
pooled answer. With three or more orders the bias can be fitted beside the content (least
squares, weighted per order) and taken out; with two it cannot (for the far pair, A + C against
B + D is the same whether it comes from the content or from the positions), and the mean stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Pooling = Literal["mean", "position_free", "gaussian"]


def position_free(
    logs: FloatArray, perms: Sequence[Sequence[int]], weights: FloatArray
) -> FloatArray | None:
    """The content part of ``logs`` ((k, n): each order's log answer in original option order;
    ``perms[k][j]`` the option shown at position j), centred, by weighted least squares with a
    free position bias and a free level per order; None where the orders cannot tell the
    content from the bias (fewer than three, or too alike)."""
    k, n = logs.shape
    if k < 3:
        return None
    rows = np.zeros((k * n, 2 * n + k))
    for o, perm in enumerate(perms):
        for j, i in enumerate(perm):
            r = o * n + i
            rows[r, i] = 1.0  # content of option i
            rows[r, n + j] = 1.0  # bias of position j
            rows[r, 2 * n + o] = 1.0  # level of order o
    sw = np.sqrt(np.repeat(np.asarray(weights, dtype=np.float64), n))
    coef, _, rank, _ = np.linalg.lstsq(rows * sw[:, None], logs.reshape(-1) * sw, rcond=None)
    if rank < 2 * n + k - 2:  # two constants are free whatever the orders
        return None
    content: FloatArray = coef[:n] - coef[:n].mean()
    return content
