"""Sensitivity of adaptive debiasing to its settings, at one budget, on a recorded MCQ file.

    python -m bench.adaptive_grid ../shared/data/recorded/arc_0s_Llama-2-13b-chat-hf.jsonl

Prints the best settings, the median and the worst, and the mean accuracy per value of each
setting (the marginals): how much of the result is the method and how much the tuning.
"""

from __future__ import annotations

import argparse
import itertools
from collections import defaultdict

import numpy as np

from calibrators.planner import PermutationPlanner
from guard.evaluation.mcq import score_method
from guard.evaluation.recorded import McqRecords, load_recorded

GRID = {
    "warmup": [4, 8, 12],
    "alpha": [0.0, 0.02],
    "lr": [0.1, 0.2, 0.4],
    "threshold": [2.0, 3.0],
    "max_threshold": [3.0, 4.0, 5.0],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--budget", type=float, default=2.0)
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args()
    rec = load_recorded(args.file)
    assert isinstance(rec, McqRecords), "an MCQ recording (probs_cyclic) is needed"
    results = []
    for values in itertools.product(*GRID.values()):
        kw = dict(zip(GRID, values, strict=True))
        row = score_method(
            rec,
            "adaptive",
            lambda n, kw=kw: PermutationPlanner(n, "adaptive", budget=args.budget, **kw),
            args.seeds,
        )
        results.append((row.accuracy.mean, row.balance.mean, row.calls.mean, kw))
    results.sort(key=lambda r: -r[0])
    for acc, rs, calls, kw in results[:5]:
        print(f"acc {acc:.2f}  RStd {rs:.2f}  calls {calls:.3f}  {kw}")
    accs = [r[0] for r in results]
    print(f"{len(results)} settings: median {np.median(accs):.2f}, worst {min(accs):.2f}")
    for name in GRID:
        by: dict[object, list[float]] = defaultdict(list)
        for acc, _, _, kw in results:
            by[kw[name]].append(acc)
        print(name, {k: round(float(np.mean(v)), 2) for k, v in by.items()})


if __name__ == "__main__":
    main()
