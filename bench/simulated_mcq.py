"""How much extra option orders buy, from a near-random model to a strong one (a simulation).

    python -m bench.simulated_mcq [--questions 500] [--seeds 20]

For each model strength: raw, PriDe (5 % estimation), cyclic averaging and adaptive at budget 2,
with accuracy, RStd and calls per question, plus adaptive's gain over the PriDe-to-cyclic line.
"""

from __future__ import annotations

import argparse

from guard.evaluation.mcq import evaluate_mcq
from guard.evaluation.table import format_table
from guard.testing.simulated import SimulatedMcqModel


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=500)
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args()
    for strength in (0.0, 0.5, 1.0, 2.0, 3.0):
        rec = SimulatedMcqModel(strength=strength).record(args.questions)
        title = f"simulated model, strength {strength:g}, {args.questions} questions"
        rows = [r for r in evaluate_mcq(rec, args.seeds, (2.0,)) if r.method != "PriDe, online"]
        print(format_table(title, rows), end="\n\n", flush=True)


if __name__ == "__main__":
    main()
