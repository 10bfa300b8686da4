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
"""

from __future__ import annotations

import numpy as np

from calibrators.call_value import CallValue
from calibrators.order_design import next_order
from calibrators.permutation import FloatArray, Perm
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
