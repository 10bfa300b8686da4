"""The online planner: for each arriving MCQ, which option orders to ask, and what they mean.

One :class:`PermutationPlanner` lives per calibration key. For each question, :meth:`start`
returns a :class:`QuestionRun`; the caller asks the upstream for every order that
:meth:`QuestionRun.pending` hands out (concurrently: they are independent), feeds each answer to
:meth:`QuestionRun.observe`, and repeats until ``pending()`` is empty; :meth:`QuestionRun.result`
then returns the calibrated answer. The proxy and the offline evaluation drive this same object.

Methods:

- ``none``: one call, the raw answer.
- ``cyclic`` / ``full``: every cyclic shift / every permutation at once, averaged (baselines).
- ``pride``: the first ``warmup`` questions of a key, and a fraction ``alpha`` afterwards, ask all
  cyclic shifts: their per-question priors feed the :class:`PriorEstimator`, and their answer is the
  cyclic average. Every other question costs one call, debiased by the current prior.
- ``adaptive`` (ours): as ``pride``, but when a debiased answer is uncertain, ask one more cyclic
  shift at a time and pool the debiased observations in log space (a product of experts). Stop as
  soon as the last two observations agree on the answer, or the pooled log-odds margin between the
  top two options clears a threshold, or every shift was asked. The threshold adapts online so
  that the mean number of upstream calls per question tracks ``budget`` (capped at
  ``max_threshold``: past a clear decision, more orders only add noise); a hard guard never lets
  the running mean exceed the budget once the warm-up is paid for. A question that ends with every
  shift asked also refreshes the prior at no extra cost. Which shift next (``design``): on a flat
  prior the second order moves every option as far as it can go; otherwise, and for every later
  order, the current favourite goes to the position the prior favours least. The prior divided
  out is shrunk toward uniform by its own uncertainty, and the warm-up lasts while that is large
  (:mod:`calibrators.contrast_prior`). Label-free evidence that extra orders or the prior make
  answers worse backs them off (:mod:`calibrators.harm`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from calibrators.contrast_prior import ContrastPrior
from calibrators.harm import HarmCheck
from calibrators.permutation import (
    FloatArray,
    Perm,
    PriorEstimator,
    average_orders,
    cyclic_permutations,
    debias,
    full_permutations,
    normalise,
    question_prior,
    to_original,
)
from calibrators.referential import Handling

Method = Literal["none", "pride", "cyclic", "full", "adaptive"]
Design = Literal["auto", "far", "adversarial"]
Role = Literal["baseline", "warmup", "refresh", "single", "adaptive", "undebiased"]
METHODS: tuple[str, ...] = get_args(Method)

# adaptive, design "auto": a prior whose largest entry is under this many times its smallest is
# too flat to say where the favourite is least favoured; the second order is then the far one.
AUTO_PRIOR_RATIO = 1.5
PROBE_EVERY = 4  # adaptive: while extra orders look harmful, one question in this many asks them
# Settings added after states were first stored: a stored state without them takes the defaults.
NEWER_SETTINGS = ("max_warmup", "prior_confidence", "design", "harm_check", "pair_prior")
MAX_FULL_ORDERS = 120  # 5! — beyond that, full-permutation averaging is not a serving option


def top2_margin(p: npt.ArrayLike) -> float:
    s = np.sort(np.asarray(p, dtype=np.float64))
    return float(s[-1] - s[-2])


def _softmax(logits: FloatArray) -> FloatArray:
    w = np.exp(logits - logits.max())
    return w / w.sum()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class McqResult:
    """The calibrated answer to one question, in the original option order."""

    probs: FloatArray  # calibrated distribution over the original options
    raw_probs: FloatArray  # the first answered observation, mapped back to original order
    prior: FloatArray | None  # the position prior that was divided out, if any
    orders: tuple[Perm, ...]  # the orders answered, in the order asked
    calls: int  # upstream calls spent, failed (dropped) ones included
    handling: Handling
    role: Role  # why this question cost what it did
    order_answers: tuple[int, ...] = ()  # each answered order's raw top option (original index)

    @property
    def index(self) -> int:
        return int(np.argmax(self.probs))


class QuestionRun:
    """One question in flight: hands out orders, takes answers, produces the result.

    Calls are charged to the planner's budget when they are planned, not when they are handed
    out, so questions in flight at once cannot spend the same credit twice.
    """

    def __init__(
        self,
        planner: PermutationPlanner,
        role: Role,
        handling: Handling,
        fixed: tuple[int, ...],
        first: Sequence[Perm],
    ) -> None:
        self._planner = planner
        self.role: Role = role
        self.handling: Handling = handling
        self.fixed = fixed
        self.prior = planner.current_prior() if role in ("single", "adaptive") else None
        # adaptive: how much the orders after the first count when pooled (do-no-harm check)
        self.later_weight = planner.later_weight() if role == "adaptive" else 1.0
        self._cyclic = cyclic_permutations(planner.n, fixed)
        self._asked: list[Perm] = []
        self._dropped: set[Perm] = set()
        self._obs: dict[Perm, FloatArray] = {}
        self._queue: list[Perm] = []
        self._result: McqResult | None = None
        self.guard_blocked = False  # the budget guard, not the threshold, stopped this question
        self.index = planner.started  # this question's number in the key (1-based)
        # What planning this question did to the planner's schedule counters, so that another
        # copy of the state can account for it (:meth:`PermutationPlanner.adopt`).
        self.counted: dict[str, int] = {}
        self._enqueue(first)

    # -- the protocol ----------------------------------------------------------------------

    def pending(self) -> tuple[Perm, ...]:
        """Orders to ask now (may be several, to be asked concurrently); empty when none are
        due — then either :attr:`done` is true, or answers to earlier orders are outstanding."""
        batch = tuple(self._queue)
        self._queue.clear()
        self._asked.extend(batch)
        return batch

    def observe(self, perm: Perm, probs_displayed: npt.ArrayLike) -> None:
        """Record the upstream's distribution over displayed IDs for an order it was asked."""
        perm = self._outstanding(perm)
        p = normalise(probs_displayed)
        if p.shape != (self._planner.n,):
            raise ValueError(f"distribution has {p.size} entries, expected {self._planner.n}")
        self._obs[perm] = p
        self._maybe_extend()

    def drop(self, perm: Perm) -> None:
        """Give up on an order whose upstream call failed: the answer rests on the others.

        The call still counts toward the budget (it was made) and the order is not asked again.
        Dropping every order leaves the question without an answer: :meth:`result` then raises.
        """
        self._dropped.add(self._outstanding(perm))
        self._maybe_extend()

    @property
    def done(self) -> bool:
        """Every handed-out order has been answered (or dropped) and nothing more is due."""
        return not self._queue and len(self._obs) + len(self._dropped) == len(self._asked)

    def result(self) -> McqResult:
        """The calibrated answer, once :attr:`done`; the first call also updates the planner."""
        if self._result is None:
            if not self.done:
                raise RuntimeError("result() before every handed-out order was observed")
            if not self._obs:
                raise RuntimeError("no order of this question was answered")
            self._finish()
        assert self._result is not None
        return self._result

    def rebind(self, planner: PermutationPlanner) -> None:
        """Continue against another copy of the planner state (e.g. freshly loaded from a
        store shared by several workers); the run's own progress is kept."""
        if planner.n != self._planner.n:
            raise ValueError(f"planner has {planner.n} options, this question {self._planner.n}")
        self._planner = planner

    # -- what the planner reads ------------------------------------------------------------

    @property
    def n(self) -> int:
        return self._planner.n

    @property
    def answered(self) -> list[Perm]:
        """Orders answered so far, in the order asked."""
        return [p for p in self._asked if p in self._obs]

    @property
    def calls(self) -> int:
        return len(self._asked) + len(self._queue)

    def observations(self) -> list[tuple[Perm, FloatArray]]:
        return [(perm, self._obs[perm]) for perm in self.answered]

    def debiased_logs(self) -> FloatArray:
        """(k, n): log of each answered order, debiased and mapped to original order."""
        prior = self.prior
        assert prior is not None, "only single/adaptive questions are debiased"
        return np.log(
            np.stack([to_original(debias(p, prior), perm) for perm, p in self.observations()])
        )

    def debiased_estimate(self) -> FloatArray:
        """Normalised weighted geometric mean of the debiased observations so far (original
        order); the orders after the first weigh :attr:`later_weight` each."""
        return _softmax(self.pooled_logs())

    def pooled_logs(self) -> FloatArray:
        logs = self.debiased_logs()
        w = np.full(len(logs), self.later_weight)
        w[0] = 1.0
        return (w @ logs) / w.sum()  # type: ignore[no-any-return]

    def all_cyclic_seen(self) -> bool:
        return all(c in self._obs for c in self._cyclic)

    def cyclic_matrix(self) -> FloatArray:
        return np.stack([self._obs[c] for c in self._cyclic])

    def unasked_cyclic(self) -> list[Perm]:
        return [c for c in self._cyclic if c not in self._asked and c not in self._queue]

    # -- internals -------------------------------------------------------------------------

    def _outstanding(self, perm: Perm) -> Perm:
        perm = tuple(perm)
        if perm not in self._asked or perm in self._obs or perm in self._dropped:
            raise ValueError(f"order {perm} is not an outstanding order of this question")
        return perm

    def _enqueue(self, perms: Sequence[Perm]) -> None:
        self._queue.extend(perms)
        self._planner._spend(len(perms))

    def _maybe_extend(self) -> None:
        if self.role == "adaptive" and self._obs and self.done:
            nxt = self._planner._next_adaptive(self)
            if nxt is not None:
                self._enqueue([nxt])

    def _finish(self) -> None:
        obs = self.observations()
        first_perm, first = obs[0]
        raw = to_original(first, first_perm)
        probs = self.debiased_estimate() if self.prior is not None else average_orders(obs)
        answers = tuple(int(np.argmax(to_original(p, perm))) for perm, p in obs)
        self._result = McqResult(
            probs,
            raw,
            self.prior,
            tuple(self.answered),
            self.calls,
            self.handling,
            self.role,
            answers,
        )
        self._planner._completed(self)


class PermutationPlanner:
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
        (:meth:`prior_reliability`) is under ``prior_confidence``.
    design: ``adaptive`` only — which order comes next: ``auto`` (the far order second on a flat
        prior, else and later the favourite to the least-favoured position), ``far`` (the far
        order second, whatever the prior) or ``adversarial`` (always the least-favoured position:
        the rule before issue 10).
    harm_check: ``adaptive`` only — back off extra orders and the prior when the label-free
        evidence of :class:`HarmCheck` says they make answers worse.
    pair_prior: ``adaptive`` only — learn the prior from every question asked in two or more
        orders, not only from those asked in every cyclic order (off: measured no better).
    max_count: passed to :class:`PriorEstimator` (None: plain running mean).
    """

    def __init__(
        self,
        n: int,
        method: Method = "pride",
        *,
        warmup: int = 4,
        alpha: float = 0.02,
        budget: float = 2.0,
        threshold: float = 3.0,
        max_threshold: float = 4.0,
        lr: float = 0.2,
        max_count: int | None = None,
        max_warmup: int = 24,
        prior_confidence: float = 0.8,
        design: Design = "auto",
        harm_check: bool = True,
        pair_prior: bool = False,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        if method == "full" and math.factorial(n) > MAX_FULL_ORDERS:
            raise ValueError(
                f"full-permutation averaging needs {math.factorial(n)} calls for {n} options; "
                f"it is offered up to {MAX_FULL_ORDERS} calls (5 options) — use 'cyclic' instead"
            )
        if method == "adaptive" and budget < 1.0 + alpha * (n - 1):
            raise ValueError(
                f"budget {budget} is below the cost of the prior refresh alone "
                f"(1 + alpha * (n - 1) = {1.0 + alpha * (n - 1):.2f}); raise it or lower alpha"
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
        self.harm = HarmCheck()
        # Counters, all persisted: questions started, upstream calls planned, warm-up questions
        # issued, questions after the warm-up (for the refresh schedule).
        self.started = 0
        self.spent = 0
        self.warmed = 0
        self.after_warmup = 0

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
        fixed_t = tuple(sorted(set(fixed)))
        if handling == "permuted" and fixed_t:
            raise ValueError("fixed positions given but handling is 'permuted'")
        before = (self.warmed, self.after_warmup)
        run = self._plan(handling, fixed_t)
        run.counted = {
            "warmed": self.warmed - before[0],
            "after_warmup": self.after_warmup - before[1],
        }
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
        self.started += 1
        self.spent += run.calls
        self.warmed += run.counted.get("warmed", 0)
        self.after_warmup += run.counted.get("after_warmup", 0)
        self._completed(run)

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

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable state (settings, counters and the prior)."""
        return {
            "n": self.n,
            "method": self.method,
            "warmup": self.warmup,
            "alpha": self.alpha,
            "budget": self.budget,
            "threshold": self.threshold,
            "max_threshold": self.max_threshold,
            "lr": self.lr,
            "started": self.started,
            "spent": self.spent,
            "warmed": self.warmed,
            "after_warmup": self.after_warmup,
            "estimator": self.estimator.to_dict(),
            "max_warmup": self.max_warmup,
            "prior_confidence": self.prior_confidence,
            "design": self.design,
            "contrast": self.contrast.to_dict(),
            "harm_check": self.harm_check,
            "pair_prior": self.pair_prior,
            "harm": self.harm.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PermutationPlanner:
        est = PriorEstimator.from_dict(d["estimator"])
        p = cls(
            int(d["n"]),
            d["method"],
            warmup=int(d["warmup"]),
            alpha=float(d["alpha"]),
            budget=float(d["budget"]),
            threshold=float(d["threshold"]),
            max_threshold=float(d["max_threshold"]),
            lr=float(d["lr"]),
            max_count=est.max_count,
            # Stored before these settings existed: today's defaults.
            **{k: d[k] for k in NEWER_SETTINGS if k in d},
        )
        p.estimator = est
        if "contrast" in d:
            p.contrast = ContrastPrior.from_dict(p.n, d["contrast"])
        if "harm" in d:
            p.harm = HarmCheck.from_dict(d["harm"])
        p.started, p.spent = int(d["started"]), int(d["spent"])
        p.warmed, p.after_warmup = int(d["warmed"]), int(d["after_warmup"])
        return p

    # -- policy ----------------------------------------------------------------------------

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
            and self.prior_reliability() < self.prior_confidence
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
        if math.floor(k * self.alpha) > math.floor((k - 1) * self.alpha):
            if self.method != "adaptive" or self._affordable(self.n):
                return "refresh"
            self.after_warmup -= 1  # postpone: keep the refresh due until it is affordable
        return None

    def _affordable(self, extra_calls: int) -> bool:
        # Hard guard: the running mean (this question included) never exceeds the budget.
        return self.spent + extra_calls <= self.budget * self.started + 1e-9

    def _next_adaptive(self, run: QuestionRun) -> Perm | None:
        logs = run.debiased_logs()
        remaining = run.unasked_cyclic()
        if not remaining:
            return None
        if len(logs) >= 2 and int(np.argmax(logs[-1])) == int(np.argmax(logs[-2])):
            return None  # two orders, the favourite at different positions, same answer
        est = run.pooled_logs() * len(logs)
        if top2_margin(est) >= self.threshold:
            return None
        if self.harm_check and run.index % PROBE_EVERY and self.harm.extras_hurt():
            # Do no harm: the other orders carry worse evidence than the first. One uncertain
            # question in PROBE_EVERY still asks, so that the evidence keeps coming and a
            # false alarm can clear.
            return None
        if not self._affordable(1):
            run.guard_blocked = True
            return None
        prior = run.prior
        assert prior is not None
        top = int(np.argmax(est))
        far = self.design == "far" or (
            self.design == "auto" and float(prior.max() / prior.min()) < AUTO_PRIOR_RATIO
        )
        if far and len(logs) == 1:
            # Second order: every option as far as it can go from where it was shown, so that
            # what is left of a question's own position bias cancels rather than adds up.
            first = run.answered[0]
            return max(
                remaining,
                key=lambda perm: min(abs(perm.index(i) - first.index(i)) for i in range(self.n)),
            )
        # Move the current favourite to the position the prior favours least: if it still wins
        # there, the decision is robust; if it was riding on its position, this exposes it.
        return min(remaining, key=lambda perm: prior[perm.index(top)])

    def _spend(self, calls: int) -> None:
        self.spent += calls

    def _completed(self, run: QuestionRun) -> None:
        if run.handling == "permuted" and run.all_cyclic_seen():
            self.estimator.update(question_prior(run.cyclic_matrix()))
        if self.method == "adaptive" and run.handling != "undebiased":
            obs = run.observations()
            if self.pair_prior or run.all_cyclic_seen():
                self.contrast.update(obs)
            # The prior the question was debiased with; a warm-up or refresh question, the
            # key's prior with this question folded in.
            self.harm.update(obs, run.prior if run.prior is not None else self.current_prior())
        if run.role == "adaptive" and not run.guard_blocked:
            # A question the guard cut short says nothing about what the threshold would spend.
            self._adapt_threshold(run.calls - 1)

    def _adapt_threshold(self, extras: int) -> None:
        # Stochastic approximation toward the extra-call rate the budget leaves after the
        # refresh share; the credit term pays back (or spends) what the warm-up left over.
        credit = self.budget * self.started - self.spent
        steady = self.budget - 1.0 - self.alpha * (self.n - 1)
        target = min(max(steady + credit / 50.0, 0.0), float(self.n - 1))
        step = self.threshold + self.lr * (target - extras)
        self.threshold = min(max(step, 0.0), self.max_threshold)
