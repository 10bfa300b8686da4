"""Offline evaluation of MCQ debiasing: the real planner driven by recorded distributions.

A recorded question holds the model's ID distribution under each cyclic shift of its options.
:func:`replay_question` plays the upstream: whatever order the planner asks for, it answers with
the recorded row for that order. Online methods depend on arrival order, so they are run over
several seeded orders and reported with their spread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from calibrators.metrics import accuracy, rstd
from calibrators.permutation import (
    Perm,
    counts_distribution,
    cyclic_shift,
)
from calibrators.planner import McqResult, PermutationPlanner
from guard.evaluation.hindsight import two_call_ceiling
from guard.evaluation.recorded import McqRecords
from guard.evaluation.table import Row, Stat

PlannerFactory = Callable[[int], PermutationPlanner]


class OrderNotRecordedError(LookupError):
    """The planner asked for an option order that the recording does not hold."""


def sampled(rec: McqRecords, samples: int, seed: int = 0) -> McqRecords:
    """The recording as an API without logprobs would answer it: ``samples`` sampled answers
    per question and order (drawn once, seeded, so a repeated order repeats its counts), turned
    into distributions by :func:`counts_distribution`."""
    rng = np.random.default_rng(seed)
    p = rec.probs_cyclic / rec.probs_cyclic.sum(axis=-1, keepdims=True)
    counts = np.stack([[rng.multinomial(samples, row) for row in q] for q in p]).astype(np.float64)
    probs = np.stack([[counts_distribution(c) for c in q] for q in counts])
    return McqRecords(f"{rec.name}, {samples} samples", probs, rec.gold, rec.options, rec.questions)


def replay_question(planner: PermutationPlanner, p_cyclic: npt.NDArray[np.float64]) -> McqResult:
    """Run one question through ``planner``, answering every order from the recorded rows."""
    n = p_cyclic.shape[0]
    rows: dict[Perm, int] = {cyclic_shift(n, k): k for k in range(n)}
    run = planner.start()
    while batch := run.pending():
        for perm in batch:
            if perm not in rows:
                raise OrderNotRecordedError(f"order {perm} is not a recorded cyclic shift")
            run.observe(perm, p_cyclic[rows[perm]])
    return run.result()


@dataclass(frozen=True)
class RunScore:
    accuracy: float
    rstd: float
    calls: float


def run_order(rec: McqRecords, factory: PlannerFactory, order: npt.ArrayLike) -> RunScore:
    """One planner, questions arriving in ``order``; scores over all questions."""
    planner = factory(rec.n_options)
    pred = np.empty(len(rec), dtype=np.int64)
    calls = 0
    for q in np.asarray(order, dtype=np.int64):
        res = replay_question(planner, rec.probs_cyclic[q])
        pred[q] = res.index
        calls += res.calls
    return RunScore(accuracy(pred, rec.gold), rstd(pred, rec.gold, rec.n_options), calls / len(rec))


def arrival_orders(n_items: int, seeds: int) -> list[npt.NDArray[np.int64]]:
    return [np.random.default_rng(seed).permutation(n_items) for seed in range(seeds)]


def score_method(
    rec: McqRecords, name: str, factory: PlannerFactory, seeds: int, note: str = ""
) -> Row:
    """Score a method over ``seeds`` seeded arrival orders (1 when the method is order-free)."""
    probe = factory(rec.n_options)
    order_free = probe.method in ("none", "cyclic", "full")
    orders = [np.arange(len(rec))] if order_free else arrival_orders(len(rec), seeds)
    scores = [run_order(rec, factory, o) for o in orders]
    return Row(
        name,
        Stat.of(s.accuracy for s in scores),
        "RStd",
        Stat.of(s.rstd for s in scores),
        Stat.of(s.calls for s in scores),
        note,
    )


def pride_paper_factory(n_questions: int, frac: float = 0.05) -> PlannerFactory:
    """PriDe as in the paper: a random ``frac`` of the questions estimates the prior (here: the
    first ones of a random arrival order), the rest are debiased with one call each."""
    warmup = max(1, round(frac * n_questions))
    return lambda n: PermutationPlanner(n, "pride", warmup=warmup, alpha=0.0)


def adaptive_factory(budget: float) -> PlannerFactory:
    return lambda n: PermutationPlanner(n, "adaptive", budget=budget)


def cost_line(pride: Row, cyclic: Row, calls: float, field: str) -> float:
    """The straight line between PriDe and cyclic averaging, evaluated at ``calls``."""
    x0, x1 = pride.calls.mean, cyclic.calls.mean
    y0 = getattr(pride, field).mean
    y1 = getattr(cyclic, field).mean
    if x1 == x0:  # PriDe all warm-up (one question): no line, the two are one point
        return float(y1)
    return float(y0 + (y1 - y0) * (calls - x0) / (x1 - x0))


@dataclass(frozen=True)
class AdaptiveVerdict:
    """Adaptive at one budget against the issue's goals: the PriDe-to-cyclic cost line, the
    better of no calibration and PriDe, and PriDe's balance."""

    budget: float
    adaptive: Row
    raw: Row
    pride: Row
    cyclic: Row
    ceiling: float | None = None  # the file's two_call_ceiling (guard.evaluation.hindsight)

    @property
    def line(self) -> float:
        return cost_line(self.pride, self.cyclic, self.adaptive.calls.mean, "accuracy")

    @property
    def vs_line(self) -> float:
        return self.adaptive.accuracy.mean - self.line

    @property
    def best_cheap(self) -> Row:
        """The better (by accuracy) of no calibration and PriDe."""
        return max((self.raw, self.pride), key=lambda r: r.accuracy.mean)

    @property
    def vs_best(self) -> float:
        return self.adaptive.accuracy.mean - self.best_cheap.accuracy.mean

    @property
    def cyclic_gain(self) -> float:
        """What averaging every cyclic order buys over PriDe (accuracy points)."""
        return self.cyclic.accuracy.mean - self.pride.accuracy.mean

    @property
    def vs_cyclic(self) -> float:
        return self.adaptive.accuracy.mean - self.cyclic.accuracy.mean

    @property
    def cyclic_in_reach(self) -> bool:
        """Cyclic's accuracy is within a point of what two calls per question can reach with
        hindsight (the goal "within 1 point of cyclic" applies only then; unknown ceiling:
        assumed in reach)."""
        return self.ceiling is None or self.ceiling >= self.cyclic.accuracy.mean - 1.0

    @property
    def se_line(self) -> float:
        """Standard error of :attr:`vs_line`: adaptive's mean and PriDe's share of the line
        (cyclic averaging does not depend on arrival order), taken as independent."""
        x0, x1 = self.pride.calls.mean, self.cyclic.calls.mean
        w = 0.0 if x1 == x0 else (x1 - self.adaptive.calls.mean) / (x1 - x0)
        return _se(
            self.adaptive.accuracy.se, w * self.pride.accuracy.se, (1 - w) * self.cyclic.accuracy.se
        )

    @property
    def se_best(self) -> float:
        return _se(self.adaptive.accuracy.se, self.best_cheap.accuracy.se)

    @property
    def se_cyclic(self) -> float:
        return _se(self.adaptive.accuracy.se, self.cyclic.accuracy.se)

    def goal_gaps(self) -> dict[str, float]:
        """How far each accuracy and balance goal's figure lies past its bar (negative: missed),
        whether or not the goal applies here (:meth:`close_calls` picks those that do)."""
        return {
            "the line": self.vs_line + 0.5,
            "0.5 over the line": self.vs_line - 0.5,
            "RStd against PriDe's": self.pride.balance.mean - self.adaptive.balance.mean,
            "the better of raw/PriDe": self.vs_best + 0.5,
            "within a point of cyclic": self.vs_cyclic + 1.0,
        }

    def gap_errors(self) -> dict[str, float]:
        """Standard error of each of :meth:`goal_gaps`, from the rows' spreads over arrival
        orders, the figures compared taken as independent."""
        a, p = self.adaptive.balance, self.pride.balance
        return {
            "the line": self.se_line,
            "0.5 over the line": self.se_line,
            "RStd against PriDe's": _se(a.se, p.se),
            "the better of raw/PriDe": self.se_best,
            "within a point of cyclic": self.se_cyclic,
        }

    def close_calls(self, errors: dict[str, float] | None = None) -> list[str]:
        """The goals that apply (met or missed) whose figure lies within one standard error of
        its bar (``errors``: :meth:`gap_errors` unless given): another set of arrival orders
        could decide them the other way."""
        errors = errors or self.gap_errors()
        applies = self._applies()
        return [
            f"{name} ({gap:+.2f} against s.e. {errors[name]:.2f})"
            for name, gap in self.goal_gaps().items()
            if applies[name] and abs(gap) < errors[name]
        ]

    def _applies(self) -> dict[str, bool]:
        """Which of :meth:`goal_gaps` are goals here: the two about cyclic averaging only where
        it gains a point over PriDe (and the last only where that is in reach)."""
        gains = self.cyclic_gain >= 1.0
        return {
            "the line": True,
            "0.5 over the line": gains,
            "RStd against PriDe's": True,
            "the better of raw/PriDe": True,
            "within a point of cyclic": gains and self.cyclic_in_reach,
        }

    def misses(self) -> list[str]:
        """The goals missed (empty: every goal met). Accuracy and RStd are means over the
        seeded arrival orders; calls must stay within the budget on every order."""
        out = []
        if self.adaptive.calls.hi > self.budget + 1e-9:
            out.append(f"calls {self.adaptive.calls.hi:.2f} > budget {self.budget:g}")
        said = {
            "the line": f"{self.vs_line:+.2f} pt under the line",
            "0.5 over the line": (
                f"cyclic gains {self.cyclic_gain:.1f} pt but only {self.vs_line:+.2f} over"
            ),
            "RStd against PriDe's": (
                f"RStd {self.adaptive.balance.mean:.2f} > PriDe's {self.pride.balance.mean:.2f}"
            ),
            "the better of raw/PriDe": f"{self.vs_best:+.2f} pt under {self.best_cheap.method}",
            "within a point of cyclic": f"{self.vs_cyclic:+.2f} pt under cyclic, which is in reach",
        }
        applies = self._applies()
        return out + [said[k] for k, gap in self.goal_gaps().items() if applies[k] and gap < 0]

    def summary(self) -> str:
        best = "raw" if self.best_cheap is self.raw else "PriDe"
        misses = self.misses()
        return (
            f"adaptive at budget {self.budget:g}: {self.adaptive.accuracy.mean:.1f}% / RStd "
            f"{self.adaptive.balance.mean:.1f} at {self.adaptive.calls.mean:.2f} calls; "
            f"{self.vs_line:+.1f} pt (s.e. {self.se_line:.2f}) vs the PriDe-to-cyclic line, "
            f"{self.vs_best:+.1f} pt (s.e. {self.se_best:.2f}) vs {best} (the better of "
            f"raw/PriDe), {self.vs_cyclic:+.1f} pt (s.e. {self.se_cyclic:.2f}) vs cyclic"
            + (
                ""
                if self.ceiling is None
                else f" (two calls a question reach {self.ceiling:.1f}% with hindsight)"
            )
            + "; "
            + ("every goal met" if not misses else "missed: " + "; ".join(misses))
            + close_calls_note(self.close_calls())
        )


def _se(*parts: float) -> float:
    return float(np.sqrt(sum(x * x for x in parts)))


def close_calls_note(calls: list[str]) -> str:
    """The summary's clause naming the goals :meth:`AdaptiveVerdict.close_calls` found."""
    return "" if not calls else "; within one standard error of its bar: " + "; ".join(calls)


def judge_adaptive(
    rec: McqRecords,
    seeds: int = 20,
    budget: float = 2.0,
    factory: PlannerFactory | None = None,
    baselines: tuple[Row, Row, Row] | None = None,
) -> AdaptiveVerdict:
    """Score adaptive (the planner's defaults unless ``factory``) and the baselines it is judged
    against (raw, PriDe 5 %, cyclic: pass them to score several variants on one file)."""
    raw, pride, cyc = baselines or mcq_baselines(rec, seeds)
    row = score_method(
        rec, f"adaptive, budget {budget:g}", factory or adaptive_factory(budget), seeds
    )
    return AdaptiveVerdict(budget, row, raw, pride, cyc, two_call_ceiling(rec))


def mcq_baselines(rec: McqRecords, seeds: int = 20) -> tuple[Row, Row, Row]:
    """(no calibration, PriDe with 5 % estimation, cyclic averaging) on ``rec``."""
    return (
        score_method(rec, "row-0 argmax (none)", lambda n: PermutationPlanner(n, "none"), seeds),
        score_method(
            rec, "PriDe, 5% estimation", pride_paper_factory(len(rec)), seeds, "paper protocol"
        ),
        score_method(rec, "cyclic average", lambda n: PermutationPlanner(n, "cyclic"), seeds),
    )


def verdict_from_rows(
    rows: Sequence[Row], budget: float = 2.0, ceiling: float | None = None
) -> AdaptiveVerdict | None:
    """The goals' verdict for adaptive at ``budget`` from :func:`evaluate_mcq`'s rows (None when
    that budget was not evaluated)."""
    by_name = {r.method: r for r in rows}
    row = by_name.get(f"adaptive, budget {budget:g}")
    if row is None:
        return None
    return AdaptiveVerdict(
        budget,
        row,
        by_name["row-0 argmax (none)"],
        by_name["PriDe, 5% estimation"],
        by_name["cyclic average"],
        ceiling,
    )


def evaluate_mcq(rec: McqRecords, seeds: int = 20, budgets: Sequence[float] = (2.0,)) -> list[Row]:
    """The baselines, PriDe (paper protocol and online defaults) and adaptive at each budget."""
    rows = [
        score_method(rec, "row-0 argmax (none)", lambda n: PermutationPlanner(n, "none"), seeds),
        score_method(rec, "cyclic average", lambda n: PermutationPlanner(n, "cyclic"), seeds),
    ]
    pride = score_method(
        rec, "PriDe, 5% estimation", pride_paper_factory(len(rec)), seeds, "paper protocol"
    )
    rows.append(pride)
    rows.append(
        score_method(
            rec, "PriDe, online", lambda n: PermutationPlanner(n, "pride"), seeds, "defaults"
        )
    )
    for b in budgets:
        row = score_method(rec, f"adaptive, budget {b:g}", adaptive_factory(b), seeds)
        acc_line = cost_line(pride, rows[1], row.calls.mean, "accuracy")
        rstd_line = cost_line(pride, rows[1], row.calls.mean, "balance")
        note = (
            f"line at same cost: {acc_line:.1f}% / RStd {rstd_line:.1f} "
            f"({row.accuracy.mean - acc_line:+.1f} pt)"
        )
        rows.append(Row(row.method, row.accuracy, row.balance_name, row.balance, row.calls, note))
    return rows
