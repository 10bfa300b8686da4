"""A model swapped behind a key, and keys whose model never changes (``calibrators.drift``).

    python -m bench.drift [--before 2000] [--after 1000] [--seeds 5]
        [--streams 100] [--questions 10000]

1. Per four-option simulated model of the family: ``--before`` questions of it, then its ID
   prior reversed (a new model behind the same name) for ``--after`` questions, over ``--seeds``
   draws. Accuracy and RStd over the questions after the swap for the defaults (the drift
   check on), the same planner with it off, and one told of the swap (it learns afresh right
   there): what noticing is worth, and what noticing it late costs.
2. False alarms: per recorded ARC model and simulated model, ``--streams`` keys of
   ``--questions`` questions drawn from its own answers (nothing changes), and on how many
   the check ever trips (at most 1 % by design) and when.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from bench.adaptive_lomo import recorded_files
from calibrators.drift import DriftCheck
from calibrators.metrics import accuracy, rstd
from calibrators.planner import PermutationPlanner
from guard.evaluation.mcq import replay_question
from guard.evaluation.recorded import McqRecords, load_recorded
from guard.testing.simulated import FLAT_NEAR_RANDOM, simulation_family

WAYS = ("drift check (default)", "drift check off", "told of the swap")


def swapped(before: int, after: int, seeds: int) -> None:
    for base in simulation_family():
        if base.n != 4:
            continue
        rows: dict[str, list[tuple[float, float, int]]] = {w: [] for w in WAYS}
        for seed in range(seeds):
            first = replace(base, seed=100 + seed).record(before)
            second = replace(base, prior=tuple(reversed(base.prior)), seed=200 + seed)
            rec = second.record(after)
            for way in WAYS:
                p = PermutationPlanner(4, "adaptive", drift_check=way == WAYS[0])
                for q in range(before):
                    replay_question(p, first.probs_cyclic[q])
                if way == WAYS[2]:
                    p.relearn()
                pred = [replay_question(p, rec.probs_cyclic[q]).index for q in range(after)]
                rows[way].append((accuracy(pred, rec.gold), rstd(pred, rec.gold, 4), p.relearned))
        for way, r in rows.items():
            a = np.array(r)
            print(
                f"{base.name:24s} {way:22s} after the swap {a[:, 0].mean():5.1f} % / RStd "
                f"{a[:, 1].mean():.2f}; learned afresh on {int((a[:, 2] > 0).sum())}/{seeds}",
                flush=True,
            )


def false_alarms(streams: int, questions: int, pool: int = 2000) -> None:
    """``pool``: how many questions of each simulated model the keys' questions are drawn from."""
    sources: list[tuple[str, np.ndarray]] = []
    for path in recorded_files():
        rec = load_recorded(path)
        if isinstance(rec, McqRecords):
            sources.append((rec.name, rec.probs_cyclic[:, 0]))
    for m in [*simulation_family(), FLAT_NEAR_RANDOM]:
        sources.append((m.name, m.record(pool).probs_cyclic[:, 0]))
    for name, shown in sources:
        when = []
        for s in range(streams):
            check = DriftCheck(shown.shape[1])
            draws = np.random.default_rng(s).integers(0, len(shown), questions)
            when += [i + 1 for i, q in enumerate(draws) if check.add(shown[q])][:1]
        print(
            f"{name:28s} tripped on {len(when)}/{streams} keys of {questions} questions"
            + (f" (at question {', '.join(map(str, when))})" if when else ""),
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", type=int, default=2000)
    ap.add_argument("--after", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--questions", type=int, default=10000)
    args = ap.parse_args()
    swapped(args.before, args.after, args.seeds)
    false_alarms(args.streams, args.questions)


if __name__ == "__main__":
    main()
