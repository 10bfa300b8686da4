"""Planner variants that :mod:`bench.allocation` measures against the defaults (not in the
product: each was measured and not kept; the README's "what limits it" and "Tried, measured,
not kept" give their figures).

- :class:`FirstAnswerDecides`: every order, the far one, or none, decided on the first answer
  (``escalate`` 1: every order or none, the concentrated way). A whole cycle is asked only when
  it is affordable as a whole, so every question ends balanced (1, 2 or n orders).
- :class:`DemandCounted`: the defaults, but a question the budget guard stopped steers the
  threshold by what it wanted, not by what it got.
- :class:`CompleteCycle`: after the far pair, an unsure question asks the rest of the cycle
  (no "two orders agree" stop, no value floor), with the threshold steered as in
  :class:`DemandCounted`.
- :class:`Watched`: the defaults, with the threshold after each question and the questions the
  guard stopped recorded.
- :class:`GatedConcentration`: the defaults until a label-free gate (:class:`NoiseShape` low
  and no confidence lead in the harm check) opens, then :class:`FirstAnswerDecides`.
"""

from __future__ import annotations

import numpy as np

from calibrators.call_value import CallValue
from calibrators.order_design import next_order
from calibrators.permutation import (
    FloatArray,
    Perm,
    cyclic_permutations,
    normalise,
    to_original,
)
from calibrators.planner import PROBE_EVERY, PermutationPlanner, QuestionRun, top2_margin

ESCALATE = 0.5  # every order under this fraction of the threshold


class FirstAnswerDecides(PermutationPlanner):
    """Every order, the far one, or none, decided on the first answer alone."""

    plans: dict[int, int]  # the extra orders each question will ask
    wanted: dict[int, int]  # the extra orders it wanted (what steers the threshold)

    def __init__(self, n: int, escalate: float = ESCALATE) -> None:
        super().__init__(n, "adaptive")
        self.plans = {}
        self.wanted = {}
        self.escalate = escalate

    def _next_adaptive(self, run: QuestionRun) -> Perm | None:
        logs = run.debiased_logs()
        remaining = run.unasked_cyclic()
        est = run.pooled_logs() * len(logs)
        if len(logs) == 1:
            plan = self.wanted[id(run)] = self._plan_extras(run, top2_margin(est), len(remaining))
            if plan > 1 and not self._guard_allows(len(remaining)):
                # not the guard one order at a time: it could cut the cycle short, unbalanced
                plan = 1 if self.escalate < 1.0 else 0
            self.plans[id(run)] = plan
        if not remaining or len(logs) - 1 >= self.plans.get(id(run), 0):
            return None
        if self.plans[id(run)] > 1:  # every order, paid for when planned
            assert run.prior is not None
            return next_order(self.design, run.prior, run.answered, remaining, int(np.argmax(est)))
        return self._guarded_next(run, remaining, est)

    def _plan_extras(self, run: QuestionRun, margin: float, remaining: int) -> int:
        probe = run.index % PROBE_EVERY == 0
        if self.harm_check and not probe and self.harm.extras_hurt():
            return 0
        if margin < self.escalate * self.threshold:
            return remaining  # the value floor does not stop these
        worth = self.value.threshold(CallValue.stage(1))
        if margin >= self.threshold or (worth is not None and margin >= worth and not probe):
            return 0
        return 1

    def _completed(self, run: QuestionRun) -> None:
        blocked, run.guard_blocked = run.guard_blocked, True  # steer on the plan, below
        super()._completed(run)
        run.guard_blocked = blocked
        self.plans.pop(id(run), None)
        if run.role == "adaptive":
            self._adapt_threshold(self.wanted.pop(id(run), 0))


class Watched(PermutationPlanner):
    """The defaults, watched: the threshold after each question, and the questions whose
    extra orders the budget guard stopped."""

    def __init__(self, n: int) -> None:
        super().__init__(n, "adaptive")
        self.thresholds: list[float] = []
        self.blocked = 0

    def _completed(self, run: QuestionRun) -> None:
        super()._completed(run)
        self.thresholds.append(self.threshold)
        self.blocked += run.guard_blocked


class DemandCounted(PermutationPlanner):
    """The defaults, with the threshold steered by what each question wanted: one the guard
    stopped counts the orders it was denied (the defaults leave such a question out of the
    steering, so where the guard binds, the threshold drifts to its cap and the guard, by
    arrival, decides which questions get more orders)."""

    wanted: dict[int, int]

    def __init__(self, n: int, **settings: float) -> None:
        super().__init__(n, "adaptive", **settings)  # type: ignore[arg-type]
        self.wanted = {}

    def _guarded_next(
        self, run: QuestionRun, remaining: list[Perm], est: FloatArray
    ) -> Perm | None:
        nxt = super()._guarded_next(run, remaining, est)
        if nxt is None:
            self.wanted[id(run)] = 1
        return nxt

    def _completed(self, run: QuestionRun) -> None:
        blocked, run.guard_blocked = run.guard_blocked, True  # steered below
        super()._completed(run)
        run.guard_blocked = blocked
        if run.role == "adaptive":
            self._adapt_threshold(run.calls - 1 + self.wanted.pop(id(run), 0))


class CompleteCycle(DemandCounted):
    """The far order for an unsure first answer; then, while the pooled pair is unsure, the
    rest of the cycle at once (a third order alone would leave the positions unbalanced)."""

    def __init__(self, n: int) -> None:
        super().__init__(n, value_floor=0.0)

    def _next_adaptive(self, run: QuestionRun) -> Perm | None:
        logs = run.debiased_logs()
        remaining = run.unasked_cyclic()
        if not remaining:
            return None
        est = run.pooled_logs() * len(logs)
        assert run.prior is not None
        if len(logs) >= 3:  # the third order committed it to the whole cycle
            return next_order(self.design, run.prior, run.answered, remaining, int(np.argmax(est)))
        probe = run.index % PROBE_EVERY == 0
        if top2_margin(est) >= self.threshold or (
            self.harm_check and not probe and self.harm.extras_hurt()
        ):
            return None
        need = 1 if len(logs) == 1 else len(remaining)
        if not self._guard_allows(need):
            run.guard_blocked = True
            self.wanted[id(run)] = need
            return None
        return next_order(self.design, run.prior, run.answered, remaining, int(np.argmax(est)))


class NoiseShape:
    """Label-free gauge of a key's noise shape, from questions asked in every cyclic order.

    Per such question, the log answers in the original option order (an n x n Latin square:
    orders x options, each cell at one displayed position) are split into content, order level,
    the question's own position bias ``b`` and a residual (order noise and position-content
    interaction, (n-1)(n-2) degrees of freedom). The gauge is the residual's mean square over
    the mean square of the own biases around the key's mean bias (the key's prior divided out,
    n - 1 degrees of freedom each, every bias seen n times): low where what varies across a
    question's orders is mostly its own position bias, which only a whole cycle cancels.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.questions = 0
        self.resid_ss = 0.0
        self.bias_mean = np.zeros(n)
        self.bias_m2 = 0.0  # Welford: sum of squared deviations of b from the running mean

    def update(self, observations: list[tuple[Perm, FloatArray]]) -> None:
        n = self.n
        by_perm = {tuple(p): q for p, q in observations}
        cyc = cyclic_permutations(n)
        if not all(c in by_perm for c in cyc) or n < 3:
            return
        logs = np.stack([np.log(to_original(normalise(by_perm[c]), c)) for c in cyc])
        r = logs - logs.mean(axis=1, keepdims=True) - logs.mean(axis=0, keepdims=True)
        r += logs.mean()
        # option i in cyclic order k is shown at position (i - k) mod n
        pos = (np.arange(n)[None, :] - np.arange(n)[:, None]) % n
        b = np.array([r[pos == p].mean() for p in range(n)])
        e = r - b[pos]
        self.questions += 1
        self.resid_ss += float(np.sum(e * e))
        delta = b - self.bias_mean
        self.bias_mean = self.bias_mean + delta / self.questions
        self.bias_m2 += float(delta @ (b - self.bias_mean))

    def ratio(self) -> float | None:
        """Residual mean square over own-bias mean square (None: fewer than 3 questions)."""
        q, n = self.questions, self.n
        if q < 3 or self.bias_m2 <= 0:
            return None
        resid_ms = self.resid_ss / (q * (n - 1) * (n - 2))
        bias_ms = n * self.bias_m2 / ((q - 1) * (n - 1))
        return resid_ms / bias_ms


class GatedConcentration(FirstAnswerDecides):
    """The defaults, until a label-free gate opens; then the first answer decides (every
    order, the far one, or none: :class:`FirstAnswerDecides`).

    The gate, looked at when each question's first answer is in (label-free, from the
    planner's own observations): at least ``min_full`` questions were asked in every order
    (``feed``: warm-up and refresh questions, and probes that asked every order; "estimation":
    warm-up and refresh only; "all": any) and fed :class:`NoiseShape`, whose ratio is under
    ``cut``; and the harm check has seen at least its ``min_questions`` and the first order's
    mean confidence lead (plus ``lead_z`` standard errors) is at most ``lead_max`` (no
    position-content interaction in sight). Once open, it closes only past ``cut_close`` or
    ``lead_close`` (hysteresis; None: the opening values). Measured in issue 10's experiment on
    branch gate-exp: it trades sim-strong-skewed's miss for one on sim-skewed-interaction
    (``python -m bench.allocation --variant gated``); not kept."""

    def __init__(
        self,
        n: int,
        cut: float = 0.25,
        lead_max: float = 0.02,
        min_full: int = 6,
        escalate: float = ESCALATE,
        feed: str = "probes",
        cut_close: float | None = 0.30,
        lead_close: float | None = 0.04,
        lead_z: float = 0.0,
    ) -> None:
        super().__init__(n, escalate)
        self.cut = cut
        self.lead_max = lead_max
        self.min_full = min_full
        self.feed = feed
        # hysteresis: once open, the gate closes only past these (default: the same)
        self.cut_close = cut if cut_close is None else cut_close
        self.lead_close = lead_max if lead_close is None else lead_close
        self.open = False
        self.lead_z = lead_z  # the lead's upper bound at this many standard errors is judged
        self.shape = NoiseShape(n)
        self.mode: dict[int, bool] = {}  # per question in flight: concentrated?
        self.gated = 0  # questions planned concentrated
        self.trace: list[tuple[float | None, float | None, bool]] = []  # per question

    def lead(self) -> float | None:
        h = self.harm
        return h.lead_sum / h.questions if h.questions >= h.min_questions else None

    def lead_bound(self) -> float | None:
        """The mean lead plus ``lead_z`` standard errors (None: too few questions)."""
        h, mean = self.harm, self.lead()
        if mean is None:
            return None
        k = h.questions
        se = float(np.sqrt(max(h.lead_sq / k - mean * mean, 0.0) / (k - 1)))
        return mean + self.lead_z * se

    def gate(self) -> bool:
        ratio = self.shape.ratio() if self.shape.questions >= self.min_full else None
        lead = self.lead_bound()
        if self.open:
            cut, lead_max = self.cut_close, self.lead_close
        else:
            cut, lead_max = self.cut, self.lead_max
        self.open = ratio is not None and ratio < cut and lead is not None and lead <= lead_max
        return self.open

    def _next_adaptive(self, run: QuestionRun) -> Perm | None:
        if len(run.answered) == 1 and id(run) not in self.mode:
            self.mode[id(run)] = self.gate()
            self.gated += self.mode[id(run)]
        if self.mode.get(id(run), False):
            return super()._next_adaptive(run)
        return PermutationPlanner._next_adaptive(self, run)

    def _completed(self, run: QuestionRun) -> None:
        concentrated = self.mode.pop(id(run), False)
        if run.all_cyclic_seen() and (
            run.role in ("warmup", "refresh")
            or (self.feed == "probes" and run.index % PROBE_EVERY == 0)
            or self.feed == "all"
        ):
            self.shape.update(run.observations())
        if concentrated:
            super()._completed(run)
        else:
            self.plans.pop(id(run), None)
            self.wanted.pop(id(run), None)
            PermutationPlanner._completed(self, run)
        self.trace.append((self.shape.ratio(), self.lead(), concentrated))
