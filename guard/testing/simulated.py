"""A simulated biased LLM for MCQs: seeded, deterministic, documented as a simulation.

The model's answer distribution over displayed option IDs under an order ``perm`` is

    p(j) ∝ prior(j) · exp(strength · [perm[j] is gold] + content noise + per-order noise)

- ``prior``: the ID-position bias (what PriDe divides out);
- ``strength``: how much the model knows (0: pure guessing; large: always right);
- content noise (fixed per question): distractors that look right to the model;
- per-order noise (fresh for each order): the model is not a perfect PriDe model, so asking
  several orders carries information beyond the prior — as real models do.

It is used for the "how much do extra orders buy" sweep (``bench/simulated_mcq.py``), and it is
meant to back the fake upstream and ``calguard demo`` of the proxy.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from calibrators.permutation import Perm, cyclic_shift, normalise
from guard.evaluation.recorded import McqRecords

DEFAULT_PRIOR = (0.12, 0.38, 0.32, 0.18)  # ARC-like: B and C favoured


@dataclass(frozen=True)
class SimulatedMcqModel:
    prior: Sequence[float] = DEFAULT_PRIOR
    strength: float = 2.0
    content_noise: float = 1.0
    order_noise: float = 0.5
    seed: int = 0

    @property
    def n(self) -> int:
        return len(self.prior)

    def question(self, qid: int) -> tuple[int, npt.NDArray[np.float64]]:
        """(gold index, content logits) of question ``qid`` — the same every time."""
        rng = np.random.default_rng([self.seed, qid, 0])
        gold = int(rng.integers(self.n))
        logits = rng.normal(0.0, self.content_noise, self.n)
        logits[gold] += self.strength
        return gold, logits

    def answer(self, qid: int, perm: Perm) -> npt.NDArray[np.float64]:
        """The distribution over displayed IDs for question ``qid`` shown in order ``perm``."""
        _, logits = self.question(qid)
        # The per-order noise is seeded by the order too, so a repeated call repeats itself.
        rng = np.random.default_rng([self.seed, qid, 1, *perm])
        z = (
            np.log(np.asarray(self.prior))
            + logits[list(perm)]
            + rng.normal(0.0, self.order_noise, self.n)
        )
        return normalise(np.exp(z - z.max()))

    def prior_for(self, n: int) -> npt.NDArray[np.float64]:
        """The ID-position prior for ``n`` options: ``prior`` itself when it has n entries, else
        a bias toward the middle positions (as ARC's B and C)."""
        if n == self.n:
            return normalise(np.asarray(self.prior, dtype=np.float64))
        j = np.arange(n)
        return normalise(1.0 + 0.8 * np.sin(np.pi * (j + 0.5) / n))

    def answer_text(self, qid: int, shown: Sequence[str], gold: str) -> npt.NDArray[np.float64]:
        """The distribution over displayed IDs when the options ``shown`` are displayed in that
        order; the option whose text is ``gold`` is the right one. Content noise is tied to the
        option text, order noise to the order shown, so the answer is the same every time."""
        n = len(shown)
        prior = self.prior_for(n)
        content = np.array(
            [
                np.random.default_rng([self.seed, qid, 2, zlib.crc32(t.encode())]).normal(
                    0.0, self.content_noise
                )
                for t in shown
            ]
        )
        content += self.strength * np.array([t == gold for t in shown], dtype=np.float64)
        order = [zlib.crc32(t.encode()) for t in shown]
        noise = np.random.default_rng([self.seed, qid, 3, *order]).normal(0.0, self.order_noise, n)
        z = np.log(prior) + content + noise
        return normalise(np.exp(z - z.max()))

    def record(self, n_questions: int) -> McqRecords:
        """The cyclic-order recording of ``n_questions`` questions (the recorded-file format)."""
        n = self.n
        probs = np.stack(
            [
                np.stack([self.answer(q, cyclic_shift(n, k)) for k in range(n)])
                for q in range(n_questions)
            ]
        )
        gold = np.asarray([self.question(q)[0] for q in range(n_questions)], dtype=np.int64)
        options = [[f"option {i}" for i in range(n)] for _ in range(n_questions)]
        return McqRecords(f"simulated-strength-{self.strength:g}", probs, gold, options)
