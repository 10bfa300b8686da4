"""What each piece of adaptive debiasing buys: the defaults with one piece taken out at a time.

    python -m bench.adaptive_ablation [--seeds 20] [--budget 2]

On the four recorded ARC models and the simulation family (as ``bench.adaptive_lomo``), every
variant is judged against the goals of issue 10 at the default budget. A line per variant and
model: accuracy / RStd / calls, points against the PriDe-to-cyclic line and against the better
of raw and PriDe, and the goals missed. The variants reach into the planner's internals (this
is a bench, not an API): they put back what the defaults replaced.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench.adaptive_lomo import models, shortfall
from calibrators.harm import HarmCheck
from calibrators.planner import PermutationPlanner, QuestionRun
from calibrators.referential import Handling
from guard.evaluation.mcq import judge_adaptive, mcq_baselines


class FixedZPriorCheck(HarmCheck):
    """The prior check before issue 10's second round: a 1.5-standard-error McNemar test,
    looked at after every question."""

    def prior_hurts(self) -> bool:
        if self.questions < self.min_questions or self.pairs == 0:
            return False
        diff = (self.agree_debiased - self.agree_raw) / self.pairs
        se = np.sqrt(max(self.discordant, 1)) / self.pairs
        return bool(diff + self.z * se < 0.0)


class NoRefreshSaving(PermutationPlanner):
    def _refresh_due(self) -> bool:
        return False


class OldPriorCheck(PermutationPlanner):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.harm = FixedZPriorCheck()


class NoWarmupExtension(PermutationPlanner):
    """The warm-up before the extension: it stops the moment the prior looks reliable."""

    def _still_warming(self) -> bool:
        return self.prior_reliability() < self.prior_confidence


class WarmupAlwaysAveraged(PermutationPlanner):
    def start(self, handling: Handling = "permuted", fixed: Sequence[int] = ()) -> QuestionRun:
        run = super().start(handling, fixed)
        if run.role in ("warmup", "refresh"):
            run.later_weight, run._answer_prior = 1.0, None
        return run


Factory = Callable[[int], PermutationPlanner]


def variants(budget: float) -> dict[str, Factory]:
    def plain(**kw: Any) -> Factory:
        return lambda n: PermutationPlanner(n, "adaptive", budget=budget, **kw)

    return {
        "defaults": plain(),
        "orders pooled by their mean (pooling='mean')": plain(pooling="mean"),
        "prior from full questions only (shown_prior=False)": plain(shown_prior=False),
        "no value floor (value_floor=0)": plain(value_floor=0.0),
        "design auto": plain(design="auto"),
        "design adversarial": plain(design="adversarial"),
        "refresh not saved for": lambda n: NoRefreshSaving(n, "adaptive", budget=budget),
        "prior check at a fixed 1.5 s.e.": lambda n: OldPriorCheck(n, "adaptive", budget=budget),
        "warm-up answers always averaged": lambda n: WarmupAlwaysAveraged(
            n, "adaptive", budget=budget
        ),
        "longer warm-up (prior_confidence=0.9)": plain(prior_confidence=0.9),
        "warm-up stops when the prior first looks sure": lambda n: NoWarmupExtension(
            n, "adaptive", budget=budget
        ),
        "before issue 10's second round": lambda n: _before(n, budget),
    }


class _Before(NoRefreshSaving, OldPriorCheck, WarmupAlwaysAveraged, NoWarmupExtension):
    pass


def _before(n: int, budget: float) -> PermutationPlanner:
    return _Before(
        n,
        "adaptive",
        budget=budget,
        design="auto",
        value_floor=0.0,
        shown_prior=False,
        pooling="mean",
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budget", type=float, default=2.0)
    ap.add_argument("--questions", type=int, default=300, help="per simulated model")
    args = ap.parse_args()
    recs = models(args.questions)
    bases = {rec.name: mcq_baselines(rec, args.seeds) for rec in recs}
    for label, factory in variants(args.budget).items():
        verdicts = [
            judge_adaptive(rec, args.seeds, args.budget, factory, bases[rec.name]) for rec in recs
        ]
        missed = sum(bool(v.misses()) for v in verdicts)
        print(f"{label}: {missed} of {len(recs)} models miss a goal")
        for rec, v in zip(recs, verdicts, strict=True):
            a = v.adaptive
            print(
                f"  {rec.name:32s} {a.accuracy.mean:5.1f} / {a.balance.mean:4.1f} / "
                f"{a.calls.mean:.2f}  line {v.vs_line:+.1f}  best {v.vs_best:+.1f}  "
                f"(PriDe RStd {v.pride.balance.mean:.1f}; shortfall {shortfall(v):+.2f})"
                + ("" if not v.misses() else "  missed: " + "; ".join(v.misses()))
            )
        print(flush=True)


if __name__ == "__main__":
    main()
