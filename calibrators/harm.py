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

The first is a one-sided test at ``z`` standard errors over at least ``min_questions`` questions;
a false alarm costs little (extra orders are still asked on one question in four, and the alarm
clears as evidence comes). The second is looked at after every question for as long as the key
lives, and a false alarm costs much (the prior is no longer divided out, and balance goes with
it: ``python -m bench.adaptive_ablation`` puts back a fixed 1.5-standard-error test), so it uses
a boundary that stays valid however often it is looked at (:func:`mixture_bound`): the chance
that it ever trips on a prior that does no harm is at most ``alpha``. The state is a few
counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from calibrators.permutation import FloatArray, Perm, debias, normalise, to_original


def mixture_bound(n: float, alpha: float = 0.05, rho: float = 10.0) -> float:
    """Robbins' normal-mixture boundary for a sum of ``n`` fair +/-1 steps: the chance that
    the sum ever reaches it, at any ``n``, is at most ``alpha``. ``rho`` sets the sample size
    where the boundary is tightest (about ``rho`` steps)."""
    return float(np.sqrt((n + rho) * (np.log((n + rho) / rho) + 2.0 * np.log(1.0 / alpha))))


class HarmCheck:
    """Running evidence, per key, that extra orders or the prior make answers worse."""

    def __init__(
        self, gap: float = 0.02, min_questions: int = 10, z: float = 1.5, alpha: float = 0.05
    ) -> None:
        self.gap = gap  # first-order confidence lead (probability) that counts as harm
        self.min_questions = min_questions
        self.z = z
        self.alpha = alpha  # prior_hurts: chance of ever tripping on a harmless prior
        self.questions = 0
        self.lead_sum = 0.0  # per question: first order's top probability minus the others'
        self.lead_sq = 0.0
        self.pairs = 0  # (first order, later order) pairs
        self.agree_raw = 0  # of them, raw answers agreeing (mapped to the original options)
        self.agree_debiased = 0  # debiased answers agreeing
        self.discordant = 0  # pairs where exactly one of the two agrees
        # Per question, (debiased agreements - raw ones) squared, summed: the steps of that
        # difference are not independent within a question (its pairs share the first order),
        # so the boundary runs on this variance rather than on the number of pairs.
        self.net_sq = 0

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
        net = 0
        for r, d in zip(raw[1:], deb[1:], strict=True):
            self.pairs += 1
            a_raw = bool(np.argmax(r) == np.argmax(raw[0]))
            a_deb = bool(np.argmax(d) == np.argmax(deb[0]))
            self.agree_raw += a_raw
            self.agree_debiased += a_deb
            self.discordant += a_raw != a_deb
            net += int(a_deb) - int(a_raw)
        self.net_sq += net * net

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
        """Debiased answers agree across orders clearly less often than raw ones: the raw
        answers' lead in agreements is past :func:`mixture_bound` at its own variance (under
        no harm, each question's difference is as likely either way)."""
        if self.questions < self.min_questions or self.net_sq == 0:
            return False
        lead = self.agree_raw - self.agree_debiased
        return lead >= mixture_bound(self.net_sq, self.alpha)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gap": self.gap,
            "min_questions": self.min_questions,
            "z": self.z,
            "alpha": self.alpha,
            "questions": self.questions,
            "lead_sum": self.lead_sum,
            "lead_sq": self.lead_sq,
            "pairs": self.pairs,
            "agree_raw": self.agree_raw,
            "agree_debiased": self.agree_debiased,
            "discordant": self.discordant,
            "net_sq": self.net_sq,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HarmCheck:
        alpha = float(d.get("alpha", 0.05))  # stored before the boundary: today's default
        h = cls(float(d["gap"]), int(d["min_questions"]), float(d["z"]), alpha)
        h.questions = int(d["questions"])
        h.lead_sum, h.lead_sq = float(d["lead_sum"]), float(d["lead_sq"])
        h.pairs = int(d["pairs"])
        h.agree_raw, h.agree_debiased = int(d["agree_raw"]), int(d["agree_debiased"])
        h.discordant = int(d["discordant"])
        h.net_sq = int(d.get("net_sq", h.discordant))  # stored before: as if pairs independent
        return h
