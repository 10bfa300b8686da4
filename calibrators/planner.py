"""The online planner: for each arriving MCQ, which option orders to ask, and what they mean.

One :class:`PermutationPlanner` lives per calibration key; :meth:`start` plans a question as a
:class:`~calibrators.question.QuestionRun` (``pending`` / ``observe`` / ``result``). The proxy
and the offline evaluation drive this same object. Methods:

- ``none``: one call, the raw answer. ``cyclic`` / ``full``: every cyclic shift / permutation.
- ``pride``: the first ``warmup`` questions of a key, and a fraction ``alpha`` afterwards, ask all
  cyclic shifts to feed the :class:`PriorEstimator`; every other question costs one call,
  debiased by the current prior.
- ``adaptive`` (ours): as ``pride``, but an uncertain debiased answer gets one more shift at a
  time, pooled in log space, until the last two agree, the pooled top-two margin clears a
  threshold (adapted online so the mean calls per question track ``budget``, capped at
  ``max_threshold``) or the margin from which another order seldom changes the answer
  (:mod:`calibrators.call_value`), or every shift was asked; a hard guard keeps the running
  mean under the budget and saves for the prior's refresh. Which shift next:
  :mod:`calibrators.order_design`. The prior is shrunk toward uniform by its own uncertainty and
  the warm-up lasts while that is large (:mod:`calibrators.contrast_prior`); every question's
  shown answer sharpens it by what it predicts (:mod:`calibrators.shown_prior`); label-free evidence
  of harm backs extra orders and the prior off (:mod:`calibrators.harm`); a question asked in
  some orders but not all answers with the posterior mean of its content
  (:mod:`calibrators.gaussian_pool`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from calibrators.call_value import CallValue
from calibrators.contrast_prior import ContrastPrior
from calibrators.drift import DriftCheck
from calibrators.gaussian_pool import GaussianPool
from calibrators.harm import HarmCheck
from calibrators.order_design import Design, next_order
from calibrators.permutation import (
    FloatArray,
    Perm,
    PriorEstimator,
    cyclic_permutations,
    full_permutations,
    question_prior,
)
from calibrators.planner_settings import Method, check_question, check_settings
from calibrators.planner_state import NEWER_SETTINGS, planner_from_dict, planner_to_dict, relearn
from calibrators.pooling import Pooling
from calibrators.question import McqResult, QuestionRun, Role, top2_margin
from calibrators.referential import Handling
from calibrators.schedule import WARMUP_EXTENSION, EstimationSchedule

# adaptive: one question in this many is a probe: it may ask more orders while they look harmful,
# and the value floor does not stop it; only probes (and warm-up and refresh questions) feed the
# harm check, whose evidence would otherwise be selected by the floor (the least certain only).
PROBE_EVERY = 4


REFRESH_ALPHA = 0.02  # the share of questions asked in every order to refresh the prior


class PermutationPlanner(EstimationSchedule):
    """Per-key online state and the policy that decides what each question asks.

    Parameters
    ----------
    n: number of options (2..10).
    method: ``none``, ``pride``, ``cyclic``, ``full`` or ``adaptive``.
    warmup: how many first questions of the key ask every cyclic order (prior estimation).
    alpha: after the warm-up, the fraction of questions that ask every cyclic order to keep the
        prior fresh (spread evenly: every ``1/alpha``-th question, no randomness).
    budget: ``adaptive`` only — mean upstream calls per question to stay at or under.
    threshold: ``adaptive`` only — the initial pooled log-odds margin (nats) below which a question
        gets another order; it then adapts online to the budget (learning rate ``lr``, in nats per
        extra call of error), between 0 and ``max_threshold`` (4 nats: odds of about 55 to 1).
    max_warmup, prior_confidence: ``adaptive`` only — the warm-up goes on past ``warmup``
        questions, up to ``max_warmup``, while the prior's reliability
        (:meth:`prior_reliability`) is under ``prior_confidence``; once it first is not, for
        at least half as many questions again (:data:`WARMUP_EXTENSION`), and on while those
        make it unsure again.
    design: ``adaptive`` only — which order comes next (:mod:`calibrators.order_design`): ``far``
        (the far order second, whatever the prior), ``auto`` (far on a flat prior, else the
        favourite to the least-favoured position) or ``adversarial`` (always the least-favoured
        position: the rule before issue 10).
    value_floor: ``adaptive`` only — stop asking another order from the margin where one
        changes the answer on fewer than this share of questions (:class:`CallValue`; 0: off,
        the budget alone decides).
    harm_check: ``adaptive`` only — back off extra orders and the prior when the label-free
        evidence of :class:`HarmCheck` says they make answers worse.
    pair_prior: ``adaptive`` only — learn the prior from every question asked in two or more
        orders, not only from those asked in every cyclic order, instead of ``shown_prior``
        (off: the README's leave-one-out weighs the two).
    shown_prior: ``adaptive`` only — sharpen the prior with every question's answer in the order
        shown, by as much as those answers predict the full questions' priors
        (:mod:`calibrators.shown_prior`; off, or with ``pair_prior``: the prior of the
        multi-order questions alone).
    pooling: ``adaptive`` only — the answer of a question asked in several orders:
        ``gaussian`` (:mod:`calibrators.gaussian_pool`), ``mean`` (the default before) or
        ``position_free`` (:mod:`calibrators.pooling`); which orders are asked follows the mean.
    drift_check: ``adaptive`` only — learn afresh (:meth:`relearn`) when the shown answers say
        the key's answers changed under it (:mod:`calibrators.drift`).
    max_count: passed to :class:`PriorEstimator` (None: plain running mean).
    """

    def __init__(
        self,
        n: int,
        method: Method = "pride",
        *,
        warmup: int = 4,
        alpha: float = REFRESH_ALPHA,
        budget: float = 2.0,
        threshold: float = 3.0,
        max_threshold: float = 4.0,
        lr: float = 0.2,
        max_count: int | None = None,
        max_warmup: int = 24,
        prior_confidence: float = 0.8,
        design: Design = "far",
        harm_check: bool = True,
        pair_prior: bool = False,
        value_floor: float = 0.1,
        pooling: Pooling = "gaussian",
        shown_prior: bool = True,
        drift_check: bool = True,
    ) -> None:
        check_settings(
            n,
            method,
            warmup=warmup,
            alpha=alpha,
            budget=budget,
            threshold=threshold,
            max_threshold=max_threshold,
            lr=lr,
            prior_confidence=prior_confidence,
        )
        self.estimator = PriorEstimator(n, max_count)
        self.n = n
        self.method: Method = method
        self.warmup = warmup
        self.alpha = alpha
        self.budget = budget
        self.threshold = threshold
        self.max_threshold = max_threshold
        self.lr = lr
        self.max_warmup = max(max_warmup, warmup)
        self.prior_confidence = prior_confidence
        self.design: Design = design
        # adaptive: the prior learned from full-cyclic questions (with pair_prior, from every
        # question asked in two or more orders) and its own uncertainty.
        self.contrast = ContrastPrior(n)
        self.harm_check = harm_check
        self.pair_prior = pair_prior
        self.shown_prior = shown_prior
        self.harm = HarmCheck()
        self.value = CallValue(value_floor)
        self.pooling: Pooling = pooling
        self.gauss = GaussianPool(n)  # pooling="gaussian": covariances from the full questions
        self.drift_check = drift_check
        self.drift = DriftCheck(n)
        self.relearned = 0  # times the drift check made the key learn afresh
        # Counters, all persisted: questions started, upstream calls planned, warm-up questions
        # issued, questions after the warm-up (for the refresh schedule).
        self.started = 0
        self.spent = 0
        self.warmed = 0
        self.after_warmup = 0
        self.sure_at: int | None = None  # adaptive: warm-up questions when the prior looked sure
        # adaptive, not stored: questions in flight whose order after the first is undecided
        # (each keeps a share of the credit: QuestionRun.undecided).
        self.undecided = 0

    # -- the public surface ----------------------------------------------------------------

    @property
    def mean_calls(self) -> float:
        return self.spent / self.started if self.started else 0.0

    def prior_reliability(self) -> float:
        """How much of the learned prior an ``adaptive`` question divides out, in [0, 1]
        (:meth:`ContrastPrior.reliability`); 1 while that cannot be judged (see
        :meth:`current_prior`)."""
        return self.contrast.reliability() if self._contrast_ready() else 1.0

    def _contrast_ready(self) -> bool:
        # Two full-cyclic questions give a first noise estimate. A state stored before the
        # contrast prior existed has seen more full questions than its contrast prior ever will:
        # it keeps PriDe's estimate.
        return self.contrast.full >= max(2, self.estimator.count)

    def later_weight(self) -> float:
        """``adaptive``: weight of the orders after the first in the pooled answer
        (:meth:`HarmCheck.later_weight`; 1 without the check)."""
        return self.harm.later_weight() if self.harm_check else 1.0

    def current_prior(self) -> FloatArray:
        """The prior a question planned now divides out: PriDe's estimate; for ``adaptive``
        the one learned from every multi-order question, shrunk toward uniform by its own
        uncertainty (PriDe's estimate while that cannot be judged yet)."""
        if self.method != "adaptive":
            return self.estimator.prior
        if self.harm_check and self.harm.prior_hurts():
            return np.full(self.n, 1.0 / self.n)  # do no harm: the raw answer
        if not self._contrast_ready():
            return self.estimator.prior
        return self.contrast.prior()

    def start(self, handling: Handling = "permuted", fixed: Sequence[int] = ()) -> QuestionRun:
        """Plan one question. ``handling``/``fixed`` come from :func:`check_referential`."""
        fixed_t = check_question(self.n, handling, fixed)  # before the question counts
        before = (self.warmed, self.after_warmup, self.sure_at)
        run = self._plan(handling, fixed_t)
        run.counted = {
            "warmed": self.warmed - before[0],
            "after_warmup": self.after_warmup - before[1],
            # Which learning it was planned in: adopted or reserved on a state that learned
            # afresh since (or not yet), its warm-up and refresh counts belong to another.
            "relearned": self.relearned,
        }
        if before[2] is None and self.sure_at is not None:
            run.counted["sure_at"] = self.sure_at
        return run

    def adopt(self, run: QuestionRun) -> None:
        """Account, on this copy of the key's state, for a finished question that was planned
        and run against another copy (an in-process snapshot, another worker's).

        On a copy of the state as it was before ``run`` started, this yields exactly the state
        that ``start()`` and ``run.result()`` left on the copy the run was bound to. A store
        therefore needs one transaction per question: plan on a cached snapshot, ask, then
        read, adopt and write.
        """
        if run.n != self.n:
            raise ValueError(f"planner has {self.n} options, this question {run.n}")
        run.result()  # finished, on its own copy
        self._count(run)
        self._completed(run)

    def reserve(self, run: QuestionRun) -> None:
        """Account, on a fresh copy of the key's state, for a question still in flight that
        was planned on an older copy, and go on with it against this one: its planning and
        the calls charged to it count here, so that questions planned on this copy see them
        (the budget guard, the warm-up and refresh schedules). A process keeping a snapshot
        of a shared state reserves its questions in flight on each fresh copy it loads; the
        stored state itself counts a question once it is adopted (:meth:`adopt`)."""
        if run.n != self.n:
            raise ValueError(f"planner has {self.n} options, this question {run.n}")
        self._count(run)
        run.rebind(self)  # its share of the credit, if it keeps one, moves here

    def _count(self, run: QuestionRun) -> None:
        self.started += 1
        self.spent += run.calls
        if run.counted.get("relearned", self.relearned) != self.relearned:
            return  # planned on the schedule of another learning: the budget alone counts it
        self.warmed += run.counted.get("warmed", 0)
        self.after_warmup += run.counted.get("after_warmup", 0)
        if self.sure_at is None and "sure_at" in run.counted:
            self.sure_at = run.counted["sure_at"]

    def _plan(self, handling: Handling, fixed_t: tuple[int, ...]) -> QuestionRun:
        self.started += 1
        identity = tuple(range(self.n))
        if handling == "undebiased" or self.method == "none":
            role: Role = "undebiased" if handling == "undebiased" else "baseline"
            return QuestionRun(self, role, handling, fixed_t, [identity])
        cyclic = cyclic_permutations(self.n, fixed_t)
        if self.method == "cyclic":
            return QuestionRun(self, "baseline", handling, fixed_t, cyclic)
        if self.method == "full":
            return QuestionRun(
                self, "baseline", handling, fixed_t, list(full_permutations(self.n, fixed_t))
            )
        estimation = self._estimation_role(handling)
        if estimation is not None:
            return QuestionRun(self, estimation, handling, fixed_t, cyclic)
        return QuestionRun(
            self,
            "adaptive" if self.method == "adaptive" else "single",
            handling,
            fixed_t,
            [identity],
        )

    def relearn(self) -> None:
        """Forget what the key learned of its model and warm up again (:func:`relearn`)."""
        relearn(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable state (settings, counters and the prior)."""
        return planner_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PermutationPlanner:
        """The planner a :meth:`to_dict` state describes (one stored by an older calguard takes
        today's defaults for the settings it lacks)."""
        return planner_from_dict(cls, d)

    # -- policy ----------------------------------------------------------------------------

    def _next_adaptive(self, run: QuestionRun) -> Perm | None:
        logs = run.debiased_logs()
        remaining = run.unasked_cyclic()
        if not remaining:
            return None
        if len(logs) >= 2 and int(np.argmax(logs[-1])) == int(np.argmax(logs[-2])):
            return None  # two orders, the favourite at different positions, same answer
        est = run.pooled_logs() * len(logs)
        margin = top2_margin(est)
        if margin >= self.threshold:
            return None
        probe = run.index % PROBE_EVERY == 0
        worth = self.value.threshold(CallValue.stage(len(logs)))
        if worth is not None and margin >= worth and not probe:
            return None  # from here on another order seldom changes the answer
        if self.harm_check and not probe and self.harm.extras_hurt():
            # Do no harm: the other orders carry worse evidence than the first. Probes still
            # ask, so that the evidence keeps coming and a false alarm can clear.
            return None
        return self._guarded_next(run, remaining, est)

    def _guarded_next(
        self, run: QuestionRun, remaining: list[Perm], est: FloatArray
    ) -> Perm | None:
        """The next order of the design, if the budget guard lets another one be asked (else
        None, and ``run.guard_blocked``)."""
        # The guard keeps each question in flight whose second order is undecided its share
        # (budget - 1): one at a time there are none, and nothing changes. While the prior's
        # refresh is due, it saves for it (spending every credit on extra orders would
        # postpone it for ever).
        if not self._guard_allows(1):
            run.guard_blocked = True
            return None
        assert run.prior is not None
        return next_order(self.design, run.prior, run.answered, remaining, int(np.argmax(est)))

    def _guard_allows(self, calls: int) -> bool:
        """Whether the budget guard lets ``calls`` more orders be asked now, as one: the
        questions in flight keep their shares, and a refresh that is due is saved for."""
        # (none in flight: no share, also when the budget is unlimited, where 0 * inf is NaN)
        share = self.undecided * (self.budget - 1.0) if self.undecided else 0.0
        return self._affordable(calls + share) and (
            not self._refresh_due() or self._affordable(calls + self.n - self.budget)
        )

    def _spend(self, calls: int) -> None:
        self.spent += calls

    def _completed(self, run: QuestionRun) -> None:
        if run.handling == "permuted" and run.all_cyclic_seen():
            self.estimator.update(question_prior(run.cyclic_matrix()))
        if self.method == "adaptive" and run.handling != "undebiased":
            obs = run.observations()
            if self.pair_prior or run.all_cyclic_seen():
                self.contrast.update(obs)
            if run.handling == "permuted" and run.all_cyclic_seen():
                self.gauss.add_full(run.cyclic_logs(), run.cyclic_orders())
            shown = run.shown() if run.handling == "permuted" else None
            if self.shown_prior and not self.pair_prior and shown is not None:
                self.contrast.add_shown(shown)
            # The prior the question was debiased with; a warm-up or refresh question, the
            # key's prior with this question folded in. With the value floor on, an adaptive
            # question that is not a probe asked more orders only if it was unsure: not evidence.
            if run.role != "adaptive" or not self.value.floor or run.index % PROBE_EVERY == 0:
                self.harm.update(obs, run.prior if run.prior is not None else self.current_prior())
        if run.role == "adaptive":
            self._record_value(run)
        if run.role == "adaptive" and not run.guard_blocked:
            # A question the guard cut short says nothing about what the threshold would spend.
            self._adapt_threshold(run.calls - 1)
        if self.method == "adaptive" and self.drift_check and run.handling == "permuted":
            shown = run.shown()
            if shown is not None and self.drift.add(shown):
                self.relearn()

    def _record_value(self, run: QuestionRun) -> None:
        # Each extra order asked: the pooled margin it was asked at, and whether it moved the
        # pooled answer's favourite.
        for k in range(1, len(run.answered)):
            before = run.pooled_logs(k) * k
            after = run.pooled_logs(k + 1)
            moved = int(np.argmax(before)) != int(np.argmax(after))
            self.value.record(CallValue.stage(k), top2_margin(before), moved)


__all__ = [
    "NEWER_SETTINGS",
    "WARMUP_EXTENSION",
    "McqResult",
    "PermutationPlanner",
    "QuestionRun",
    "top2_margin",
]
