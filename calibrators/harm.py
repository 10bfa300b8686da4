"""Label-free "do no harm" evidence for adaptive debiasing, from questions asked in several orders.

Two things can make calibration worse than the plain first answer, and both show without labels
in the answers a key has already received in more than one order:

- The orders asked after the first carry worse evidence than the first (a position-content
  interaction: options read best in the order the question was written, e.g. ordered numbers or
  "both A and B"). Pooling them with the first answer then pulls it toward worse answers. The
  sign: the model is less sure of itself in the other orders — the first order's debiased top
  probability exceeds the others' on average. :meth:`HarmCheck.extras_hurt`.
- Dividing out the learned prior does not make the answers of different orders agree more than
  the raw answers do: what it removes is not a position bias. :meth:`HarmCheck.prior_hurts`.

Both are one-sided tests at about two standard errors over at least ``min_questions`` questions,
so a model without the problem rarely trips them by chance. The state is a few counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from calibrators.permutation import FloatArray, Perm, debias, normalise, to_original


class HarmCheck:
    """Running evidence, per key, that extra orders or the prior make answers worse."""

    def __init__(self, gap: float = 0.02, min_questions: int = 10, z: float = 1.5) -> None:
        self.gap = gap  # first-order confidence lead (probability) that counts as harm
        self.min_questions = min_questions
        self.z = z
        self.questions = 0
        self.lead_sum = 0.0  # per question: first order's top probability minus the others'
        self.lead_sq = 0.0
        self.pairs = 0  # (first order, later order) pairs
        self.agree_raw = 0  # of them, raw answers agreeing (mapped to the original options)
        self.agree_debiased = 0  # debiased answers agreeing
        self.discordant = 0  # pairs where exactly one of the two agrees

    def update(self, observations: Sequence[tuple[Perm, FloatArray]], prior: FloatArray) -> None:
        """Fold in one question's answered orders; the first must be the order as shown."""
        if len(observations) < 2 or observations[0][0] != tuple(range(len(prior))):
            return
        raw = [to_original(normalise(p), perm) for perm, p in observations]
        deb = [to_original(debias(p, prior), perm) for perm, p in observations]
        tops = [float(d.max()) for d in deb]
        lead = tops[0] - float(np.mean(tops[1:]))
        self.questions += 1
        self.lead_sum += lead
        self.lead_sq += lead * lead
        for r, d in zip(raw[1:], deb[1:], strict=True):
            self.pairs += 1
            a_raw = bool(np.argmax(r) == np.argmax(raw[0]))
            a_deb = bool(np.argmax(d) == np.argmax(deb[0]))
            self.agree_raw += a_raw
            self.agree_debiased += a_deb
            self.discordant += a_raw != a_deb

    def extras_hurt(self) -> bool:
        """The first order is clearly surer than the others: asking more orders would pool
        worse evidence into its answer."""
        k = self.questions
        if k < self.min_questions:
            return False
        mean = self.lead_sum / k
        se = np.sqrt(max(self.lead_sq / k - mean * mean, 0.0) / (k - 1))
        return bool(mean - self.z * se > self.gap)

    def later_weight(self) -> float:
        """Weight, in [0, 1], of the later orders when pooled with the first: 1 while the first
        order's lead in confidence stays under ``gap``, falling to 0 at three times ``gap``."""
        if self.questions < self.min_questions:
            return 1.0
        excess = self.lead_sum / self.questions - self.gap
        return float(min(1.0, max(0.0, 1.0 - excess / (2.0 * self.gap))))

    def prior_hurts(self) -> bool:
        """Debiased answers agree across orders clearly less often than raw ones."""
        if self.questions < self.min_questions or self.pairs == 0:
            return False
        diff = (self.agree_debiased - self.agree_raw) / self.pairs
        se = np.sqrt(max(self.discordant, 1)) / self.pairs  # McNemar: paired difference
        return bool(diff + self.z * se < 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gap": self.gap,
            "min_questions": self.min_questions,
            "z": self.z,
            "questions": self.questions,
            "lead_sum": self.lead_sum,
            "lead_sq": self.lead_sq,
            "pairs": self.pairs,
            "agree_raw": self.agree_raw,
            "agree_debiased": self.agree_debiased,
            "discordant": self.discordant,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HarmCheck:
        h = cls(float(d["gap"]), int(d["min_questions"]), float(d["z"]))
        h.questions = int(d["questions"])
        h.lead_sum, h.lead_sq = float(d["lead_sum"]), float(d["lead_sq"])
        h.pairs = int(d["pairs"])
        h.agree_raw, h.agree_debiased = int(d["agree_raw"]), int(d["agree_debiased"])
        h.discordant = int(d["discordant"])
        return h
