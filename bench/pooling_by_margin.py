"""Where does pooling the far order pay, by the first answer's margin? (Real models: below 1 nat.)

    python -m bench.pooling_by_margin [--questions 1000]

For each recorded ARC model and each simulated one (1,000 questions each here, so the bands are
not too thin), with the prior of all its questions divided out (hindsight): the questions are
banded by the top-two margin (nats) of the shown order's debiased answer, and each band prints
how often pooling the far order (shift by n/2) changes the answer (label-free) and what it does
to accuracy (points, with the labels). This is what the value floor
(:mod:`calibrators.call_value`) acts on: it stops asking where the answer seldom changes.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.adaptive_lomo import models
from guard.evaluation.hindsight import hindsight_logs

BANDS = ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, float("inf")))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=1000, help="per simulated model")
    args = ap.parse_args()
    head = " | ".join(f"[{lo:g},{hi:g})" for lo, hi in BANDS)
    print(
        f"model: per margin band (nats) questions / answers changed % / accuracy change pt\n{head}"
    )
    for rec in models(args.questions):
        logs = hindsight_logs(rec)
        first, pooled = logs[:, 0], logs[:, 0] + logs[:, rec.n_options // 2]
        top2 = np.sort(first, axis=1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
        cells = []
        for lo, hi in BANDS:
            band = (margin >= lo) & (margin < hi)
            if not band.any():
                cells.append("-")
                continue
            a1, a2 = first[band].argmax(1), pooled[band].argmax(1)
            changed = float(np.mean(a1 != a2) * 100)
            gain = float((np.mean(a2 == rec.gold[band]) - np.mean(a1 == rec.gold[band])) * 100)
            cells.append(f"{int(band.sum())} / {changed:.0f}% / {gain:+.1f}")
        print(f"{rec.name}: " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
