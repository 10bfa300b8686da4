"""Choose adaptive's defaults by leave-one-model-out, on the recordings and a simulation family.

    python -m bench.adaptive_lomo [--seeds 20] [--budget 2] [--design far ...]

Every candidate setting is scored on every model (the four recorded ARC files of
``../shared/data/recorded`` and :func:`guard.testing.simulated.simulation_family`). For each
held-out model, the setting that misses a goal on the fewest *other* models (ties: the smallest
worst shortfall) is picked and its result on the held-out one printed: a default that only works on
the models it was tuned on shows up here. A setting's shortfall on one model is its worst miss
against the goals (points under the cost line, under the better of raw/PriDe, under cyclic where
that is in reach, RStd over PriDe's), so 0 means every goal met. The goals are judged over 20
arrival orders (as ``calguard eval-offline`` and the tests judge them), and so is the choice: at
10, PriDe's own mean RStd on llama-65b moves by 0.4 (2.27 against 2.65), more than the margins
the settings are told apart by.
"""

from __future__ import annotations

import argparse
import itertools
from typing import Any

from bench.data import recorded_files
from calibrators.planner import PermutationPlanner
from guard.evaluation.mcq import AdaptiveVerdict, judge_adaptive, mcq_baselines
from guard.evaluation.recorded import McqRecords, load_recorded
from guard.testing.simulated import simulation_family

GRID: dict[str, list[Any]] = {
    "design": ["far", "auto", "adversarial"],
    "value_floor": [0.0, 0.05, 0.1, 0.15],
    "pair_prior": [False, True],
    "pooling": ["mean", "gaussian"],
}


def shortfall(v: AdaptiveVerdict) -> float:
    """Worst miss against the goals, in points (0 when every goal is met)."""
    target = 0.5 if v.cyclic_gain >= 1.0 else -0.5
    near_cyclic = v.vs_cyclic + 1.0 if v.cyclic_gain >= 1.0 and v.cyclic_in_reach else 0.0
    return min(
        0.0,
        v.vs_line - target,
        v.vs_best + 0.5,
        near_cyclic,
        v.pride.balance.mean - v.adaptive.balance.mean,
    )


def models(questions: int) -> list[McqRecords]:
    recs = [load_recorded(p) for p in recorded_files()]
    out = [r for r in recs if isinstance(r, McqRecords)]
    return out + [m.record(questions) for m in simulation_family()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budget", type=float, default=2.0)
    ap.add_argument("--questions", type=int, default=300, help="per simulated model")
    ap.add_argument(
        "--design", nargs="+", choices=GRID["design"], help="only these designs (the grid's time)"
    )
    args = ap.parse_args()
    recs = models(args.questions)
    grid = GRID | ({"design": args.design} if args.design else {})
    settings = [dict(zip(grid, v, strict=True)) for v in itertools.product(*grid.values())]
    table: dict[int, list[AdaptiveVerdict]] = {}
    for rec in recs:
        base = mcq_baselines(rec, args.seeds)
        for i, kw in enumerate(settings):

            def factory(n: int, kw: dict[str, Any] = kw) -> PermutationPlanner:
                return PermutationPlanner(n, "adaptive", budget=args.budget, **kw)

            table.setdefault(i, []).append(
                judge_adaptive(rec, args.seeds, args.budget, factory, base)
            )
        print(f"scored {rec.name}", flush=True)
    for i, kw in enumerate(settings):
        scores = [shortfall(v) for v in table[i]]
        missed = sum(bool(v.misses()) for v in table[i])
        print(
            f"{kw}: {missed} models miss a goal, worst {min(scores):+.1f}: "
            + " ".join(f"{s:+.1f}" for s in scores)
        )
    print("\nleave one model out (setting chosen on the others -> held-out result):")
    for m, rec in enumerate(recs):
        pick = max(
            range(len(settings)),
            key=lambda i: (
                -sum(bool(v.misses()) for j, v in enumerate(table[i]) if j != m),
                min(shortfall(v) for j, v in enumerate(table[i]) if j != m),
            ),
        )
        print(f"{rec.name}: {settings[pick]} -> {table[pick][m].summary()}")


if __name__ == "__main__":
    main()
