"""Adaptive debiasing from sampled answers (an API without logprobs), on the recorded ARC files.

    python -m bench.sampled_mcq [--samples 5 10 20] [--seeds 20]

Each recorded distribution is replaced by the counts of ``n`` answers sampled from it (drawn
once per question and order, seeded), smoothed by :func:`calibrators.counts_distribution`; the
same planner then runs on them. One summary line per file and sample count: adaptive at budget 2
against the cost line and the better of raw/PriDe, all measured on the sampled answers. Every
call is charged once, whatever ``n`` (a provider's ``n`` parameter returns n samples per call).
"""

from __future__ import annotations

import argparse

from bench.data import recorded_files
from guard.evaluation.mcq import judge_adaptive, sampled
from guard.evaluation.recorded import McqRecords, load_recorded


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, nargs="+", default=[5, 10, 20])
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args()
    for path in recorded_files():
        rec = load_recorded(path)
        if not isinstance(rec, McqRecords):
            continue
        for n in args.samples:
            v = judge_adaptive(sampled(rec, n), args.seeds)
            print(
                f"{rec.name}, n={n}: raw {v.raw.accuracy.mean:.1f}, PriDe "
                f"{v.pride.accuracy.mean:.1f} / RStd {v.pride.balance.mean:.1f}, cyclic "
                f"{v.cyclic.accuracy.mean:.1f}; {v.summary()}",
                flush=True,
            )


if __name__ == "__main__":
    main()
