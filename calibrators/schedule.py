"""When a key's questions ask every cyclic order to estimate the prior: the warm-up, the
refresh schedule, and the budget guard and threshold they answer to.

:class:`EstimationSchedule` is a part of :class:`calibrators.planner.PermutationPlanner`
(which it is mixed into), kept apart from how a question's orders are chosen and pooled.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from calibrators.question import Role
from calibrators.referential import Handling

if TYPE_CHECKING:
    from calibrators.permutation import PriorEstimator

# adaptive: once the prior first looks reliable after k warm-up questions, the warm-up goes on to
# this many times k. Stopping the moment the estimate looks large against its noise stops on an
# over-estimate (optional stopping): on a near-random model the prior then over-corrects, and
# pooled answers pile on two options (SmolLM2 on 4 of 20 arrival orders).
WARMUP_EXTENSION = 1.5


def refresh_due(k: int, alpha: float) -> bool:
    """Whether the ``k``-th question after the warm-up (1-based) refreshes the prior: one in
    ``1/alpha``, spread evenly, no randomness."""
    return math.floor(k * alpha) > math.floor((k - 1) * alpha)


class EstimationSchedule:
    """The warm-up and refresh schedule of a planner (its counters and settings are the
    planner's: see :class:`calibrators.planner.PermutationPlanner`)."""

    method: str
    n: int
    warmup: int
    max_warmup: int
    alpha: float
    budget: float
    threshold: float
    max_threshold: float
    lr: float
    prior_confidence: float
    estimator: PriorEstimator
    started: int
    spent: int
    warmed: int
    after_warmup: int
    sure_at: int | None

    def prior_reliability(self) -> float:
        raise NotImplementedError

    def _contrast_ready(self) -> bool:
        raise NotImplementedError

    def warming(self, handling: Handling = "permuted") -> bool:
        """Whether what the next question (with this ``handling``) asks depends on how the
        questions before it ended: during a ``pride`` or ``adaptive`` warm-up. A caller with
        several questions of one key in flight sends these one at a time (the proxy and the
        inspect solver do), so that a burst of a key's first questions warms up as a
        sequential run does: planned before any had finished, every one would be a warm-up
        for ``pride``, and ``adaptive``'s warm-up would end at ``warmup`` questions, before
        the prior's reliability could be judged."""
        if self.method not in ("pride", "adaptive"):
            return False
        if self.warmed < self.warmup:
            return True
        if handling != "permuted" or self.after_warmup > 0:
            return False  # planned the same whatever is in flight
        return self.method == "pride" or self.warmed < self.max_warmup

    def _estimation_role(self, handling: Handling) -> Role | None:
        """'warmup' / 'refresh' when this question should ask every cyclic order, else None."""
        if self.warmed < self.warmup:
            # The first questions of a key estimate the prior, whatever the budget says. A
            # kept-in-place question counts too: it cannot estimate the whole prior, but a key
            # whose every question has such an option must not stay in warm-up for ever.
            self.warmed += 1
            return "warmup"
        if (
            self.method == "adaptive"
            and handling == "permuted"
            and self.warmed < self.max_warmup
            and self.after_warmup == 0
            and self._still_warming()
        ):
            # The prior is still too unsure to divide out (a weak bias seen through noise):
            # keep estimating it, up to ``max_warmup`` questions. Only while the warm-up has not
            # ended: later, the budget guard decides (a refresh).
            self.warmed += 1
            return "warmup"
        if (
            self.estimator.count == 0
            and self.warmup > 0
            and handling == "permuted"
            and (self.method != "adaptive" or self._affordable(self.n))
        ):
            # Still no prior: the warm-up questions are in flight (a burst) or failed.
            return "warmup"
        if handling != "permuted":
            return None  # a refresh needs every option to move
        self.after_warmup += 1
        k = self.after_warmup
        if refresh_due(k, self.alpha):
            if self.method != "adaptive" or self._affordable(self.n):
                return "refresh"
            self.after_warmup -= 1  # postpone: keep the refresh due until it is affordable
        return None

    def _still_warming(self) -> bool:
        # While the prior is unsure, and from the question it first looks sure on to
        # WARMUP_EXTENSION times as many warm-up questions (questions not chosen by the rule);
        # then for as long as those have made it look unsure again.
        if self.sure_at is None:
            if not self._contrast_ready():
                return False  # too few full questions to judge: the warm-up ends at ``warmup``
            if self.prior_reliability() < self.prior_confidence:
                return True
            self.sure_at = self.warmed
        if self.warmed < math.ceil(WARMUP_EXTENSION * self.sure_at):
            return True
        return self.prior_reliability() < self.prior_confidence

    def _affordable(self, extra_calls: float) -> bool:
        # Hard guard: the running mean (this question included) never exceeds the budget.
        return self.spent + extra_calls <= self.budget * self.started + 1e-9

    def _refresh_due(self) -> bool:
        # The next question (or this postponed one) is due to ask every order (alpha schedule).
        return refresh_due(self.after_warmup + 1, self.alpha)

    def _adapt_threshold(self, extras: int) -> None:
        # Stochastic approximation toward the extra-call rate the budget leaves after the
        # refresh share; the credit term pays back (or spends) what the warm-up left over.
        credit = self.budget * self.started - self.spent
        steady = self.budget - 1.0 - self.alpha * (self.n - 1)
        target = min(max(steady + credit / 50.0, 0.0), float(self.n - 1))
        step = self.threshold + self.lr * (target - extras)
        self.threshold = min(max(step, 0.0), self.max_threshold)
