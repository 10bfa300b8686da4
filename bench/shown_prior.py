"""What every question's shown answer adds to the prior (``calibrators.shown_prior``).

    python -m bench.shown_prior [FILE.jsonl ...] [--seeds 20] [--draws 10] [--questions 300]
        [--only NAME ...] [--against full|pair]

Per recorded ARC model (and any recorded files named), per simulated model of the family and
the flat near-random one (:data:`guard.testing.simulated.FLAT_NEAR_RANDOM`):

1. Over the whole file, how much a question's shown answer says about its own prior: ``beta``
   (the regression of the per-question log prior on the shown answer) and R², the share of the
   per-question prior's variance it explains — the share of the full questions' noise the
   estimate sheds.
2. The planner's defaults beside the same planner with ``shown_prior=False`` (the prior of the
   full questions alone) or, with ``--against pair``, with ``pair_prior=True`` (the prior of
   every question asked in two or more orders instead), judged against issue 10's goals at
   budget 2: recordings over ``--seeds`` arrival orders, simulated models over ``--draws``
   draws of 5 orders each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.adaptive_lomo import recorded_files
from bench.allocation import judged, line
from calibrators.permutation import question_prior
from calibrators.planner import PermutationPlanner
from calibrators.shown_prior import ShownRegression
from guard.evaluation.recorded import McqRecords, load_recorded
from guard.testing.simulated import FLAT_NEAR_RANDOM, simulation_family


def explained(recs: list[McqRecords]) -> tuple[float, float]:
    """(beta, R²) of the per-question log prior on the shown answer, pooled over ``recs``: the
    planner's own regression, fed every question as a full one."""
    reg = ShownRegression(recs[0].n_options)
    for rec in recs:
        for q in rec.probs_cyclic:
            reg.add_paired(np.log(question_prior(q)), q[0])
    beta, r2 = reg.beta(), reg.r_squared()
    if beta is None or r2 is None:
        raise ValueError("fewer questions than the regression needs")
    return beta, r2


AGAINST = {
    "full": ("full questions only:   ", {"shown_prior": False}),
    "pair": ("pair prior instead:    ", {"pair_prior": True}),
}


def compare(name: str, recs: list[McqRecords], seeds: int, against: str = "full") -> str:
    beta, r2 = explained(recs)
    label, kw = AGAINST[against]
    new, old = judged(recs, seeds, lambda n: PermutationPlanner(n, "adaptive", **kw))
    return (
        f"{name} (beta {beta:.2f}, R² {r2:.2f})\n"
        f"  shown prior (default): {line(new)}\n  {label}{line(old)}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*", type=Path, help="more recorded MCQ files")
    ap.add_argument("--seeds", type=int, default=20, help="arrival orders per recording")
    ap.add_argument("--draws", type=int, default=10, help="draws per simulated model")
    ap.add_argument("--questions", type=int, default=300, help="per simulated draw")
    ap.add_argument("--only", nargs="*", help="models whose name contains one of these")
    ap.add_argument("--against", choices=sorted(AGAINST), default="full", help="the other prior")
    args = ap.parse_args()
    recorded = [(p.name, p) for p in [*recorded_files(), *args.files]]
    for name, path in recorded:
        if args.only and not any(part in name for part in args.only):
            continue
        rec = load_recorded(path)
        if isinstance(rec, McqRecords):
            print(compare(name, [rec], args.seeds, args.against), flush=True)
    for model in [*simulation_family(), FLAT_NEAR_RANDOM]:
        if args.only and not any(part in model.name for part in args.only):
            continue
        recs = [model.redrawn(d).record(args.questions) for d in range(args.draws)]
        print(compare(f"{model.name}, {args.draws} draws", recs, 5, args.against), flush=True)


if __name__ == "__main__":
    main()
