"""Does cross-order agreement say where pooling a second order pays? (It does not.)

    python -m bench.order_agreement

For each recorded ARC model and each simulated one (``bench.adaptive_lomo``'s family), with the
prior of all its questions divided out (hindsight, the best case for the prior): how often the
shown order and the far order (shift by n/2) pick the same option (label-free), and, using the
labels, accuracy / RStd of the shown order alone, of the two pooled, and of every cyclic order
pooled. A rule "pool less where orders seldom agree" (a weak content signal) would need low
agreement to mark the models where pooling does not pay; this prints whether it does.
"""

from __future__ import annotations

import numpy as np

from bench.adaptive_lomo import models
from calibrators.metrics import accuracy, rstd
from guard.evaluation.hindsight import hindsight_logs


def main() -> None:
    print("model: agreement shown/far %; acc / RStd: shown, shown+far, every order")
    for rec in models(300):
        n = rec.n_options
        logs = hindsight_logs(rec)
        far = n // 2
        agree = float(np.mean(logs[:, 0].argmax(1) == logs[:, far].argmax(1)) * 100)
        cells = []
        for pooled in (logs[:, 0], logs[:, 0] + logs[:, far], logs.sum(axis=1)):
            pred = pooled.argmax(axis=1)
            cells.append(f"{accuracy(pred, rec.gold):.1f} / {rstd(pred, rec.gold, n):.1f}")
        print(f"{rec.name}: agreement {agree:.0f}%; " + ", ".join(cells))


if __name__ == "__main__":
    main()
