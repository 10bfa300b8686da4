"""Adaptive debiasing on simulated models (not real data): the family the defaults are chosen on.

    python -m bench.simulated_mcq [--questions 300] [--seeds 20] [--budget 2] [--only NAME ...]

For each model of :func:`guard.testing.simulated.simulation_family` (strong and weak, flat and
skewed ID priors, per-question prior spread, and the position-content interaction that makes
extra orders hurt): the table of ``calguard eval-offline`` at one budget and its summary line
against the goals.
"""

from __future__ import annotations

import argparse

from guard.evaluation.mcq import evaluate_mcq, two_order_ceiling, verdict_from_rows
from guard.evaluation.table import format_table
from guard.testing.simulated import simulation_family


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budget", type=float, default=2.0)
    ap.add_argument("--only", nargs="*", help="models whose name contains one of these")
    args = ap.parse_args()
    for model in simulation_family():
        if args.only and not any(part in model.name for part in args.only):
            continue
        rec = model.record(args.questions)
        rows = evaluate_mcq(rec, args.seeds, (args.budget,))
        verdict = verdict_from_rows(rows, args.budget, two_order_ceiling(rec))
        title = f"{model.name} (simulated), {args.questions} questions"
        print(format_table(title, rows))
        print(verdict.summary() if verdict else "", end="\n\n", flush=True)


if __name__ == "__main__":
    main()
