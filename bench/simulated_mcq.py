"""Adaptive debiasing on simulated models (not real data): the family the defaults are chosen on.

    python -m bench.simulated_mcq [--questions 300] [--seeds 20] [--budget 2] [--only NAME ...]
    python -m bench.simulated_mcq --draws 10 --seeds 5

For each model of :func:`guard.testing.simulated.simulation_family` (strong and weak, flat and
skewed ID priors, per-question prior spread, the position-content interaction that makes extra
orders hurt; four and five options): the table of ``calguard eval-offline`` at one budget and
its summary line against the goals. With ``--draws D`` each model is judged over D draws of its
questions instead (:mod:`guard.evaluation.draws`): the goals on the means over draws, how often
one draw misses one, and how often cyclic averaging — which has no position bias — lands above
PriDe's RStd on one draw (the noise floor of that comparison).
"""

from __future__ import annotations

import argparse

from guard.evaluation.draws import judge_draws
from guard.evaluation.hindsight import two_call_ceiling
from guard.evaluation.mcq import evaluate_mcq, verdict_from_rows
from guard.evaluation.table import format_table
from guard.testing.simulated import simulation_family


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budget", type=float, default=2.0)
    ap.add_argument("--draws", type=int, default=1, help="draws of each model's questions")
    ap.add_argument("--only", nargs="*", help="models whose name contains one of these")
    args = ap.parse_args()
    if args.draws < 1:
        ap.error("--draws must be >= 1")
    for model in simulation_family():
        if args.only and not any(part in model.name for part in args.only):
            continue
        if args.draws > 1:
            recs = (model.redrawn(d).record(args.questions) for d in range(args.draws))
            print(judge_draws(model.name, recs, args.seeds, args.budget).summary(), flush=True)
            continue
        rec = model.record(args.questions)
        rows = evaluate_mcq(rec, args.seeds, (args.budget,))
        verdict = verdict_from_rows(rows, args.budget, two_call_ceiling(rec))
        title = f"{model.name} (simulated), {args.questions} questions"
        print(format_table(title, rows))
        print(verdict.summary() if verdict else "", end="\n\n", flush=True)


if __name__ == "__main__":
    main()
