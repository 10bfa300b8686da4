"""Where the second call goes: one more order for every unsure question, or every order for
the least sure ones.

    python -m bench.allocation [--seeds 20] [--draws 10] [--only NAME ...]

Two parts, per recorded ARC model and per simulated one (``--draws`` draws of its questions,
5 arrival orders each):

1. Hindsight gauges (:mod:`guard.evaluation.hindsight`, the prior of all questions divided out):
   accuracy of the shown order alone, of the far pair on every question, and of every order for
   the 1/(n-1) least certain questions — both at two calls a question — beside cyclic averaging.
2. The planner's defaults against *the first answer decides*: a question whose first answer's
   margin is under half the threshold asks every order, one under the threshold the far order
   only, and no later answer asks for more (the threshold is steered by the calls each first
   answer planned). Judged against issue 10's goals at budget 2.

It shows what limits adaptive debiasing on sim-strong-skewed: concentrating the calls reaches
cyclic averaging there, and costs the real models goals.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from bench.adaptive_lomo import recorded_files
from calibrators.call_value import CallValue
from calibrators.metrics import accuracy
from calibrators.permutation import Perm
from calibrators.planner import PROBE_EVERY, PermutationPlanner, QuestionRun, top2_margin
from guard.evaluation.draws import pool_rows
from guard.evaluation.hindsight import hindsight_logs, two_call_answers, two_call_ceiling
from guard.evaluation.mcq import AdaptiveVerdict, judge_adaptive, mcq_baselines, verdict_from_rows
from guard.evaluation.recorded import McqRecords, load_recorded
from guard.testing.simulated import simulation_family

ESCALATE = 0.5  # every order under this fraction of the threshold


class FirstAnswerDecides(PermutationPlanner):
    """Every order, the far one, or none, decided on the first answer alone."""

    plans: dict[int, int]

    def __init__(self, n: int) -> None:
        super().__init__(n, "adaptive")
        self.plans = {}

    def _next_adaptive(self, run: QuestionRun) -> Perm | None:
        logs = run.debiased_logs()
        remaining = run.unasked_cyclic()
        est = run.pooled_logs() * len(logs)
        if len(logs) == 1:
            self.plans[id(run)] = self._plan_extras(run, top2_margin(est), len(remaining))
        if not remaining or len(logs) - 1 >= self.plans.get(id(run), 0):
            return None
        return self._guarded_next(run, remaining, est)

    def _plan_extras(self, run: QuestionRun, margin: float, remaining: int) -> int:
        probe = run.index % PROBE_EVERY == 0
        if self.harm_check and not probe and self.harm.extras_hurt():
            return 0
        if margin < ESCALATE * self.threshold:
            return remaining  # the value floor does not stop these
        worth = self.value.threshold(CallValue.stage(1))
        if margin >= self.threshold or (worth is not None and margin >= worth and not probe):
            return 0
        return 1

    def _completed(self, run: QuestionRun) -> None:
        blocked, run.guard_blocked = run.guard_blocked, True  # steer on the plan, below
        super()._completed(run)
        run.guard_blocked = blocked
        if run.role == "adaptive":
            self._adapt_threshold(self.plans.pop(id(run), 0))


def gauges(recs: Sequence[McqRecords]) -> str:
    cells: dict[str, list[float]] = {}
    for rec in recs:
        logs = hindsight_logs(rec)
        answers = {"shown": logs[:, 0].argmax(axis=1), **two_call_answers(logs)}
        answers["cyclic"] = logs.sum(axis=1).argmax(axis=1)
        for k, pred in answers.items():
            cells.setdefault(k, []).append(accuracy(pred, rec.gold))
    return ", ".join(f"{k} {np.mean(v):.1f}" for k, v in cells.items())


def judged(recs: Sequence[McqRecords], seeds: int) -> tuple[AdaptiveVerdict, AdaptiveVerdict]:
    """(defaults, first answer decides), pooled over the draws."""
    per: tuple[list[list], list[list]] = ([], [])  # type: ignore[type-arg]
    for rec in recs:
        base = mcq_baselines(rec, seeds)
        for rows, factory in zip(per, (None, FirstAnswerDecides), strict=True):
            v = judge_adaptive(rec, seeds, 2.0, factory, base)
            rows.append([v.raw, v.pride, v.cyclic, v.adaptive])
    ceiling = float(np.mean([two_call_ceiling(rec) for rec in recs]))
    out = [verdict_from_rows(pool_rows(rows), 2.0, ceiling) for rows in per]
    assert out[0] is not None
    assert out[1] is not None
    return out[0], out[1]


def line(v: AdaptiveVerdict) -> str:
    a = v.adaptive
    misses = v.misses()
    return (
        f"{a.accuracy.mean:.1f} / {a.balance.mean:.2f} (PriDe {v.pride.balance.mean:.2f}) at "
        f"{a.calls.mean:.2f}; {v.vs_line:+.2f} vs line, {v.vs_best:+.2f} vs best, "
        f"{v.vs_cyclic:+.2f} vs cyclic; " + ("; ".join(misses) if misses else "goals met")
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20, help="arrival orders per recording")
    ap.add_argument("--draws", type=int, default=10, help="draws per simulated model")
    ap.add_argument("--only", nargs="*", help="models whose name contains one of these")
    args = ap.parse_args()
    models: list[tuple[str, list[McqRecords], int]] = []
    for path in recorded_files():
        rec = load_recorded(path)
        if isinstance(rec, McqRecords):
            models.append((rec.name, [rec], args.seeds))
    for m in simulation_family():
        models.append((m.name, [m.redrawn(d).record(300) for d in range(args.draws)], 5))
    for name, recs, seeds in models:
        if args.only and not any(part in name for part in args.only):
            continue
        defaults, decides = judged(recs, seeds)
        print(f"{name}: hindsight {gauges(recs)}")
        print(f"  defaults:                 {line(defaults)}")
        print(f"  the first answer decides: {line(decides)}", flush=True)


if __name__ == "__main__":
    main()
