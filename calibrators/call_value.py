"""What one more option order is worth, label-free: how often it changes the answer.

Adaptive debiasing asks another order while the pooled answer's top-two margin is under a
threshold that the budget controller raises until the calls are spent. On a strong model most
of those calls change nothing: past its least certain questions, a second order seldom moves a
strong model's answer, so spending the whole budget there buys little accuracy for its cost
(and pools more answers whose balance is no better). :class:`CallValue` records, per stage
(deciding the second order; deciding the third or a later one) and per bin of the margin the
decision was taken at, how many questions asked another order and how often that order changed
the answer. A non-increasing fit of the change rate over the margin (pool-adjacent-violators)
gives the margin from which another order changes the answer less often than ``floor``; above it
the planner stops asking, whatever the budget would allow. Only margins that were asked are ever
seen; the planner's probes (one question in four) ignore the floor, so margins above it keep
being seen and the threshold can rise again.

The state is two small count tables, JSON-serialisable for the store.
"""

from __future__ import annotations

from typing import Any

import numpy as np

STAGES = 2  # 0: whether to ask a second order; 1: a third or later one


class CallValue:
    """Per-stage, per-margin-bin counts of extra orders asked and of answers they changed."""

    def __init__(
        self,
        floor: float = 0.1,
        bin_width: float = 0.25,
        bins: int = 32,
        min_questions: int = 10,
        min_support: int = 3,
    ) -> None:
        if not 0.0 <= floor < 1.0:
            raise ValueError(f"value floor must be in [0, 1), got {floor}")
        self.floor = floor
        self.bin_width = bin_width
        self.min_questions = min_questions  # per stage, before any threshold is drawn
        self.min_support = min_support  # questions a fitted block needs to be believed
        self.asked = np.zeros((STAGES, bins))
        self.changed = np.zeros((STAGES, bins))

    @staticmethod
    def stage(orders_answered: int) -> int:
        """The stage of deciding another order after ``orders_answered`` orders."""
        return min(orders_answered, STAGES) - 1

    def record(self, stage: int, margin: float, changed: bool) -> None:
        """One more order was asked at pooled top-two ``margin`` (nats); ``changed``: the
        pooled answer's top option moved."""
        b = min(int(margin / self.bin_width), self.asked.shape[1] - 1)
        self.asked[stage, b] += 1
        self.changed[stage, b] += changed

    def threshold(self, stage: int) -> float | None:
        """The margin from which another order changes the answer less often than ``floor``
        (None: no such margin seen yet, or the check is off)."""
        asked, changed = self.asked[stage], self.changed[stage]
        if self.floor <= 0.0 or asked.sum() < self.min_questions:
            return None
        # Pool adjacent violators: the change rate, fitted non-increasing in the margin.
        blocks: list[list[float]] = []  # [changed, asked, first bin]
        for b in np.flatnonzero(asked):
            blocks.append([float(changed[b]), float(asked[b]), float(b)])
            while len(blocks) > 1 and (
                blocks[-2][0] * blocks[-1][1] < blocks[-1][0] * blocks[-2][1]
            ):
                k, a, _ = blocks.pop()
                blocks[-1][0] += k
                blocks[-1][1] += a
        for k, a, first in blocks:
            if a >= self.min_support and k < self.floor * a:
                return first * self.bin_width
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "floor": self.floor,
            "bin_width": self.bin_width,
            "min_questions": self.min_questions,
            "min_support": self.min_support,
            "asked": [[int(x) for x in row] for row in self.asked],
            "changed": [[int(x) for x in row] for row in self.changed],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CallValue:
        asked = np.asarray(d["asked"], dtype=np.float64)
        v = cls(
            float(d["floor"]),
            float(d["bin_width"]),
            int(asked.shape[1]),
            int(d["min_questions"]),
            int(d["min_support"]),
        )
        v.asked = asked.reshape(STAGES, -1)
        v.changed = np.asarray(d["changed"], dtype=np.float64).reshape(STAGES, -1)
        return v
