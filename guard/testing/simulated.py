"""A simulated biased LLM for MCQs: seeded, deterministic, documented as a simulation.

The model's answer distribution over displayed option IDs under an order ``perm`` is

    p(j) ∝ prior(j) · exp(strength · [perm[j] is gold] + content noise + per-order noise)

- ``prior``: the ID-position bias (what PriDe divides out);
- ``strength``: how much the model knows (0: pure guessing; large: always right);
- content noise (fixed per question): distractors that look right to the model;
- per-order noise (fresh for each order): the model is not a perfect PriDe model, so asking
  several orders carries information beyond the prior — as real models do;
- ``prior_spread``: each question's own ID prior departs from the key's by log-normal noise (real
  recordings: a per-question log-prior standard deviation of 0.3-1.0);
- ``order_penalty``: a position-content interaction — the options read best in the order the
  question was written (ordered numbers, "both A and B"), so in every other order the right
  option loses this much of its pull. Extra orders then carry *worse* evidence than the first.

It is used for the "how much do extra orders buy" sweep (``bench/simulated_mcq.py``), and it is
meant to back the fake upstream and ``calguard demo`` of the proxy.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from calibrators.permutation import Perm, cyclic_shift, normalise
from guard.evaluation.recorded import McqRecords

DEFAULT_PRIOR = (0.12, 0.38, 0.32, 0.18)  # ARC-like: B and C favoured
DRAW_SEED_STRIDE = 1000  # redrawn(d) moves the seed by d times this


@dataclass(frozen=True)
class SimulatedMcqModel:
    prior: Sequence[float] = DEFAULT_PRIOR
    strength: float = 2.0
    content_noise: float = 1.0
    order_noise: float = 0.5
    seed: int = 0
    prior_spread: float = 0.0
    order_penalty: float = 0.0
    name: str = ""

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
        gold, logits = self.question(qid)
        # The per-order noise is seeded by the order too, so a repeated call repeats itself.
        rng = np.random.default_rng([self.seed, qid, 1, *perm])
        shown = logits[list(perm)]
        if self.order_penalty and tuple(perm) != tuple(range(self.n)):
            shown = shown - self.order_penalty * (np.asarray(perm) == gold)
        z = self.log_prior(qid) + shown + rng.normal(0.0, self.order_noise, self.n)
        return normalise(np.exp(z - z.max()))

    def log_prior(self, qid: int) -> npt.NDArray[np.float64]:
        """This question's own ID prior (log): the key's, moved by ``prior_spread``."""
        lp = np.log(np.asarray(self.prior, dtype=np.float64))
        if self.prior_spread:
            lp = lp + np.random.default_rng([self.seed, qid, 4]).normal(
                0.0, self.prior_spread, self.n
            )
        return lp

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

    def redrawn(self, draw: int) -> SimulatedMcqModel:
        """The same model with its questions drawn afresh (``draw`` 0: this model itself): a
        300-question draw's RStd is mostly which questions landed where, so a simulated model is
        judged over several (:mod:`guard.evaluation.draws`)."""
        return dataclasses.replace(self, seed=self.seed + draw * DRAW_SEED_STRIDE)

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
        name = self.name or f"simulated-strength-{self.strength:g}"
        return McqRecords(name, probs, gold, options)


def simulation_family() -> list[SimulatedMcqModel]:
    """The simulated models the adaptive defaults are chosen on, beside the recordings: strong
    and weak, flat and skewed priors, per-question prior spread, and the position-content
    interaction that makes extra orders hurt (a base 30B model on MMLU behaved so); four options
    (ARC, MMLU) and five (CSQA)."""
    skew = DEFAULT_PRIOR
    mild = (0.22, 0.30, 0.26, 0.22)
    a_first = (0.36, 0.26, 0.22, 0.16)
    five_a = (0.30, 0.25, 0.20, 0.15, 0.10)
    five_mid = (0.18, 0.24, 0.22, 0.20, 0.16)
    return [
        SimulatedMcqModel(skew, 3.0, 1.0, 0.5, 1, 0.5, 0.0, "sim-strong-skewed"),
        SimulatedMcqModel(a_first, 3.5, 1.0, 0.4, 2, 0.3, 0.0, "sim-strong-mild-A"),
        SimulatedMcqModel(skew, 1.5, 1.0, 0.6, 3, 0.6, 0.0, "sim-mid-skewed"),
        SimulatedMcqModel(mild, 0.3, 1.0, 0.8, 4, 0.4, 0.0, "sim-near-random"),
        SimulatedMcqModel(mild, 2.0, 1.0, 0.4, 5, 0.4, 0.5, "sim-interaction"),
        SimulatedMcqModel(skew, 2.5, 1.0, 0.5, 6, 0.5, 0.8, "sim-skewed-interaction"),
        # Five options, as CSQA: a strong chat model, and a near-random one.
        SimulatedMcqModel(five_a, 3.0, 1.0, 0.5, 7, 0.5, 0.0, "sim5-strong"),
        SimulatedMcqModel(five_mid, 0.3, 1.0, 0.8, 8, 0.4, 0.0, "sim5-near-random"),
    ]


# A near-random model as the real ones are: flat answers that are mostly each question's own
# position bias (SmolLM2-135M-Instruct's recording, decomposed: key prior about 0.1 per position
# in log terms, each question's own spread 0.39, content 0.07, order noise 0.1, almost no
# knowledge). The family's near-random models answer peaked and noisy instead (content 1.0,
# order noise 0.8): their shown answer predicts a question's own prior at R² 0.16, SmolLM2's at
# 0.93. Not in :func:`simulation_family` (the defaults' tables are judged on that); it backs the
# shown-answer prior's check (``python -m bench.shown_prior``).
FLAT_NEAR_RANDOM = SimulatedMcqModel(
    (0.25, 0.29, 0.25, 0.21), 0.03, 0.07, 0.1, 9, 0.39, 0.0, "sim-flat-near-random"
)
