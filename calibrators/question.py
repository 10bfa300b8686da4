"""One question in flight (:class:`QuestionRun`) and its answer (:class:`McqResult`): the orders
handed out, the answers observed, and how they pool. :class:`calibrators.planner.PermutationPlanner`
decides what each question asks; this module holds what one question has seen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from calibrators.gaussian_pool import GaussianPool
from calibrators.permutation import (
    FloatArray,
    Perm,
    average_orders,
    cyclic_permutations,
    debias,
    normalise,
    to_original,
)
from calibrators.pooling import position_free
from calibrators.referential import Handling

if TYPE_CHECKING:
    from calibrators.planner import PermutationPlanner

Role = Literal["baseline", "warmup", "refresh", "single", "adaptive", "undebiased"]


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
    # each answered order's distribution over the displayed IDs, as the upstream gave it
    order_probs: tuple[FloatArray, ...] = ()

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
        pooled = planner.method == "adaptive" and role in ("adaptive", "warmup", "refresh")
        self.later_weight = planner.later_weight() if pooled else 1.0
        # An adaptive key's warm-up or refresh question asks every order for the prior's sake;
        # while the check weighs the later orders down, its answer does too (with the prior
        # as it stood), rather than averaging orders known to read worse.
        self._answer_prior = (
            planner.current_prior() if role != "adaptive" and self.later_weight < 1.0 else None
        )
        # pooling="gaussian": the covariances as the key knew them when this question was
        # planned, as its prior is; what finishes meanwhile does not change its answer.
        self._gauss: GaussianPool | None = (
            planner.gauss.copy()
            if planner.pooling == "gaussian"
            and planner.gauss.ready
            and handling == "permuted"
            and self.later_weight >= 1.0
            else None
        )
        self._cyclic = cyclic_permutations(planner.n, fixed)
        self._asked: list[Perm] = []
        self._dropped: set[Perm] = set()
        self._obs: dict[Perm, FloatArray] = {}
        self._queue: list[Perm] = []
        self._result: McqResult | None = None
        self._logs: list[FloatArray] = []  # debiased_logs(), for the orders in _logs_of
        self._logs_of: list[Perm] = []
        self.guard_blocked = False  # the budget guard, not the threshold, stopped this question
        self.index = planner.started  # this question's number in the key (1-based)
        # What planning this question did to the planner's schedule counters, so that another
        # copy of the state can account for it (:meth:`PermutationPlanner.adopt`).
        self.counted: dict[str, int] = {}
        # adaptive: whether another order after the first is still to be decided; while it is,
        # the budget guard keeps this question a share of the credit (questions in flight at
        # once must not leave it all to those whose first answers came back first).
        self.undecided = role == "adaptive"
        if self.undecided:
            planner.undecided += 1
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
        raw = np.asarray(probs_displayed, dtype=np.float64)
        if not np.isfinite(raw).all():
            # A NaN or inf would enter the key's prior and spoil every later question of it.
            raise ValueError(f"distribution has entries that are not finite numbers: {raw}")
        p = normalise(raw)
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
        if self.undecided:  # the share of the credit moves with the question
            self._planner.undecided -= 1
            planner.undecided += 1
        self._planner = planner

    def release(self) -> None:
        """This question will ask no more orders (finished, or stopped: cancelled, a limit
        hit): the share of the credit it kept while its next order was undecided goes back.
        Idempotent."""
        if self.undecided:
            self.undecided = False
            self._planner.undecided -= 1

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

    def shown(self) -> FloatArray | None:
        """The answer in the order the question was written (None: that order was not answered)."""
        return self._obs.get(tuple(range(self.n)))

    def debiased_logs(self) -> FloatArray:
        """(k, n): log of each answered order, debiased and mapped to original order."""
        prior = self.prior if self.prior is not None else self._answer_prior
        assert prior is not None, "only single/adaptive questions are debiased"
        obs = self.observations()
        if len(self._logs) != len(obs) or self._logs_of != [perm for perm, _ in obs]:
            self._logs = [np.log(to_original(debias(p, prior), perm)) for perm, p in obs]
            self._logs_of = [perm for perm, _ in obs]
        return np.stack(self._logs)

    def debiased_estimate(self) -> FloatArray:
        """Normalised weighted geometric mean of the debiased observations so far (original
        order); the orders after the first weigh :attr:`later_weight` each. With ``pooling=
        "gaussian"``, a question asked in some orders but not all takes the posterior mean of
        its content instead (:mod:`calibrators.gaussian_pool`), if the key had learned the
        covariances when the question was planned and every order weighs alike."""
        if self._gauss is not None and 1 < len(self.answered) < self.n:
            return _softmax(self._gauss.pooled(self.debiased_logs(), self.answered))
        return _softmax(self.pooled_logs())

    def pooled_logs(self, orders: int | None = None) -> FloatArray:
        """Weighted mean of the debiased logs of the first ``orders`` answered orders (all)."""
        logs = self.debiased_logs()[:orders]
        w = np.full(len(logs), self.later_weight)
        w[0] = 1.0
        if self._planner.pooling == "position_free":
            content = position_free(logs, self.answered[:orders], w)
            if content is not None:
                return content
        return (w @ logs) / w.sum()  # type: ignore[no-any-return]

    def all_cyclic_seen(self) -> bool:
        return all(c in self._obs for c in self._cyclic)

    def cyclic_matrix(self) -> FloatArray:
        return np.stack([self._obs[c] for c in self._cyclic])

    def cyclic_orders(self) -> list[Perm]:
        return list(self._cyclic)

    def cyclic_logs(self) -> FloatArray:
        """(n, n): each cyclic order's raw answer, log, in original option order."""
        return np.stack([np.log(to_original(normalise(self._obs[c]), c)) for c in self._cyclic])

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
        if self.role != "adaptive" or not self.done:
            return
        self.release()
        if self._obs:
            nxt = self._planner._next_adaptive(self)
            if nxt is not None:
                self._enqueue([nxt])

    def _finish(self) -> None:
        obs = self.observations()
        first_perm, first = obs[0]
        raw = to_original(first, first_perm)
        debiased = self.prior is not None or self._answer_prior is not None
        probs = self.debiased_estimate() if debiased else average_orders(obs)
        answers = tuple(int(np.argmax(to_original(p, perm))) for perm, p in obs)
        self._result = McqResult(
            probs,
            raw,
            self.prior if self.prior is not None else self._answer_prior,
            tuple(self.answered),
            self.calls,
            self.handling,
            self.role,
            answers,
            tuple(p for _, p in obs),
        )
        self._planner._completed(self)
