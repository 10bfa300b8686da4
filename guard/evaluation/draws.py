"""Judging a simulated model over several draws of its questions, not one.

A simulated model of 300 questions is one draw: which questions happen to land in which answer
class moves a class's recall by about 1.3 points per answer, and RStd (the spread of the
classes' recalls) is mostly that at this size. Whether adaptive's RStd lands above PriDe's on
*one* draw is then close to a coin toss even where, model for model, it is lower. This module
scores every method on ``draws`` independent draws of the same model (its seed moved) and
reports:

- the goals judged on the means over draws (each draw's figures are themselves means over
  seeded arrival orders), with :func:`~guard.evaluation.mcq.verdict_from_rows`;
- how often a goal is missed on one draw;
- the same rate for cyclic averaging's RStd against PriDe's: cyclic averaging shows every option
  in every position, so it carries no position bias at all, and how often it still "misses"
  PriDe's balance on one draw is the noise floor of that comparison.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from guard.evaluation.hindsight import two_call_ceiling
from guard.evaluation.mcq import (
    AdaptiveVerdict,
    close_calls_note,
    evaluate_mcq,
    verdict_from_rows,
)
from guard.evaluation.recorded import McqRecords
from guard.evaluation.table import Row, Stat


def pool_rows(per_draw: Sequence[Sequence[Row]]) -> list[Row]:
    """One row per method: the mean over draws of each draw's mean; the spread shown is across
    draws, and calls keep the highest of any arrival order of any draw (the budget is a cap)."""
    out = []
    for rows in zip(*per_draw, strict=True):
        if len({r.method for r in rows}) != 1:
            raise ValueError("every draw must score the same methods in the same order")
        calls = Stat.of(r.calls.mean for r in rows)
        out.append(
            Row(
                rows[0].method,
                Stat.of(r.accuracy.mean for r in rows),
                rows[0].balance_name,
                Stat.of(r.balance.mean for r in rows),
                dataclasses.replace(calls, hi=max(r.calls.hi for r in rows)),
                f"over {len(rows)} draws",
            )
        )
    return out


@dataclass(frozen=True)
class DrawsVerdict:
    """A simulated model judged over several draws."""

    name: str
    pooled: AdaptiveVerdict  # the goals on the means over draws
    per_draw: tuple[AdaptiveVerdict, ...]

    @property
    def draws(self) -> int:
        return len(self.per_draw)

    def missed_draws(self) -> int:
        """Draws on which adaptive misses at least one goal."""
        return sum(bool(v.misses()) for v in self.per_draw)

    def balance_missed_draws(self) -> int:
        """Draws on which adaptive's RStd is above PriDe's."""
        return sum(v.adaptive.balance.mean > v.pride.balance.mean for v in self.per_draw)

    def cyclic_balance_missed_draws(self) -> int:
        """Draws on which cyclic averaging's RStd is above PriDe's: the noise floor."""
        return sum(v.cyclic.balance.mean > v.pride.balance.mean for v in self.per_draw)

    def paired_errors(self) -> dict[str, float]:
        """Standard error of each goal's gap on the means, from its spread over the draws: the
        methods are compared on the same questions draw by draw, so what makes one draw easier
        than another cancels (the rows' own spreads over draws would count it)."""
        gaps = [v.goal_gaps() for v in self.per_draw]
        return {k: Stat.of(g[k] for g in gaps).se for k in gaps[0]}

    def summary(self) -> str:
        p = self.pooled
        misses = p.misses()
        return (
            f"{self.name} over {self.draws} draws: adaptive {p.adaptive.accuracy.mean:.1f}% / "
            f"RStd {p.adaptive.balance.mean:.2f} (PriDe {p.pride.balance.mean:.2f}, cyclic "
            f"{p.cyclic.balance.mean:.2f}) at {p.adaptive.calls.mean:.2f} calls; "
            f"{p.vs_line:+.1f} pt vs the line, {p.vs_best:+.1f} pt vs the better of raw/PriDe; "
            + ("every goal met on the means" if not misses else "missed: " + "; ".join(misses))
            + close_calls_note(p.close_calls(self.paired_errors()))
            + f". One draw misses a goal on {self.missed_draws()}/{self.draws}; RStd above "
            f"PriDe's on {self.balance_missed_draws()}/{self.draws} (cyclic averaging, which has "
            f"no position bias: {self.cyclic_balance_missed_draws()}/{self.draws})"
        )


def judge_draws(
    name: str, draws: Iterable[McqRecords], seeds: int, budget: float = 2.0
) -> DrawsVerdict:
    """Score raw, cyclic, PriDe and adaptive at ``budget`` on each draw of one model (e.g.
    :meth:`~guard.testing.simulated.SimulatedMcqModel.redrawn`)."""
    per_rows: list[list[Row]] = []
    verdicts: list[AdaptiveVerdict] = []
    ceilings: list[float] = []
    for rec in draws:
        rows = evaluate_mcq(rec, seeds, (budget,))
        ceiling = two_call_ceiling(rec)
        verdict = verdict_from_rows(rows, budget, ceiling)
        assert verdict is not None
        per_rows.append(rows)
        verdicts.append(verdict)
        ceilings.append(ceiling)
    if not per_rows:
        raise ValueError("judge_draws needs at least one draw")
    pooled = verdict_from_rows(pool_rows(per_rows), budget, sum(ceilings) / len(ceilings))
    assert pooled is not None
    return DrawsVerdict(name, pooled, tuple(verdicts))
