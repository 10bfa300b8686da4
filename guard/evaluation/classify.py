"""Offline evaluation of label-prior correction on recorded classification outputs.

Every method here needs one upstream call per input (the recorded label scores). Online methods
see the inputs in seeded random arrival orders and classify each one from the inputs before it
plus the input itself (batch calibration and prior matching both define their batch to include
it); their figures are means over the orders, with the spread. Contextual and domain-context
calibration need the model's answers on probe strings, which the recorded files do not hold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from calibrators.label_prior import (
    BatchCalibrator,
    PriorMatcher,
    apply_prior,
    batch_prior,
    log_normalise,
    prior_match,
)
from calibrators.metrics import accuracy, macro_f1
from guard.evaluation.recorded import ClassifyRecords
from guard.evaluation.table import Row, Stat

Online = BatchCalibrator | PriorMatcher
IntArray = npt.NDArray[np.int64]

NOT_EVALUATED = (
    "contextual and domain calibration are not evaluated: they divide out the model's answer on "
    "probe strings (content-free or random in-domain words), and the recorded file holds no "
    "model outputs for probes"
)


def evaluation_notes(rec: ClassifyRecords) -> list[str]:
    """Lines to print under the table of :func:`evaluate_classify`."""
    return [
        f"{rec.name}: {len(rec)} inputs, labels {', '.join(rec.label_words)}",
        NOT_EVALUATED,
    ]


def _predict_online(
    make: Callable[[], Online], lq: npt.NDArray[np.float64], *, include: bool
) -> IntArray:
    """Drive one fresh calibrator over ``lq`` in arrival order and return its decisions."""
    calibrated = make().stream(lq, include_current=include)
    return np.asarray(np.argmax(calibrated, axis=1), dtype=np.int64)


def _orders(n: int, seeds: int) -> list[IntArray]:
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    return [np.random.default_rng(s).permutation(n) for s in range(seeds)]


def _row(
    method: str, preds: Sequence[IntArray], golds: Sequence[IntArray], n_labels: int, note: str
) -> Row:
    acc = Stat.of(accuracy(p, g) for p, g in zip(preds, golds, strict=True))
    f1 = Stat.of(macro_f1(p, g, n_labels) for p, g in zip(preds, golds, strict=True))
    return Row(method, acc, "macro-F1", f1, Stat.of([1.0]), note)


def evaluate_classify(rec: ClassifyRecords, seeds: int = 20) -> list[Row]:
    """One row per label-prior method on ``rec``: accuracy, macro-F1, upstream calls per input.

    Full-batch rows are offline references (their prior uses every input, later ones included);
    online rows are averaged over ``seeds`` arrival orders ``default_rng(seed).permutation``.
    See :func:`evaluation_notes` for what is not evaluated.
    """
    lq = log_normalise(rec.logprobs)
    n_labels = lq.shape[1]
    orders = _orders(len(rec), seeds)
    golds = [rec.gold[o] for o in orders]

    def full(method: str, log_prior: npt.NDArray[np.float64], note: str) -> Row:
        preds = np.argmax(apply_prior(lq, log_prior), axis=1)
        return _row(method, [preds], [rec.gold], n_labels, "offline reference: " + note)

    def online(method: str, make: Callable[[], Online], note: str) -> Row:
        preds = [_predict_online(make, lq[o], include=True) for o in orders]
        return _row(method, preds, golds, n_labels, note + ", this input included")

    pm = prior_match(lq)
    return [
        _row("raw argmax", [np.argmax(lq, axis=1)], [rec.gold], n_labels, "no correction"),
        full("batch, full batch", batch_prior(lq), "mean label distribution of all inputs"),
        online("batch, online", lambda: BatchCalibrator(n_labels), "mean of inputs so far"),
        full("batch log-mean, full batch", batch_prior(lq, "log"), "mean log-prob of all inputs"),
        online(
            "batch log-mean, online",
            lambda: BatchCalibrator(n_labels, space="log"),
            "mean log-prob of inputs so far",
        ),
        online(
            "prior-match, online",
            lambda: PriorMatcher(n_labels),
            "uniform target, 1 EM step per input on the last 256",
        ),
        full("prior-match, full batch", pm.log_prior, f"EM fixed point, {pm.iterations} steps"),
    ]


def _cold_methods(n_labels: int, span: int) -> list[tuple[str, Callable[[], Online], bool, str]]:
    return [
        (
            "batch, online",
            lambda: BatchCalibrator(n_labels),
            True,
            "kept: pseudo-count 1, this input included",
        ),
        (
            "batch, no pseudo-count",
            lambda: BatchCalibrator(n_labels, pseudo_count=0.0),
            True,
            "pseudo-count 0: the first request cancels itself",
        ),
        (
            "batch, earlier inputs only",
            lambda: BatchCalibrator(n_labels, pseudo_count=0.0),
            False,
            "this input left out of the mean, no pseudo-count",
        ),
        (
            "batch log-mean",
            lambda: BatchCalibrator(n_labels, space="log"),
            True,
            "geometric mean, pseudo-count 1",
        ),
        (
            "prior-match, online",
            lambda: PriorMatcher(n_labels),
            True,
            "kept: 1 EM step per input, pseudo-count 1",
        ),
        (
            "prior-match, no pseudo-count",
            lambda: PriorMatcher(n_labels, pseudo_count=0.0),
            True,
            "pseudo-count 0: the first request cancels itself",
        ),
        (
            "prior-match, re-solved on all seen",
            lambda: PriorMatcher(n_labels, capacity=span, em_steps=1000, tol=1e-8),
            True,
            "EM to convergence on every input so far at each step",
        ),
    ]


def cold_start(
    rec: ClassifyRecords, seeds: int = 500, checkpoints: Sequence[int] = (10, 20, 50)
) -> list[Row]:
    """Accuracy over the first 10 / 20 / 50 requests of a new key, for raw argmax and each online
    method and variant: one row per (checkpoint, method), named ``"first 10: batch, online"``.

    Only the first ``max(checkpoints)`` inputs of each of the ``seeds`` orders are used, so many
    orders are cheap; they are needed: over 20 orders the first-10 accuracy has a standard error
    of about 3 points, more than the differences between the variants.
    """
    cps = tuple(int(c) for c in checkpoints)
    if not cps or min(cps) < 1 or max(cps) > len(rec):
        raise ValueError(f"checkpoints must lie in 1..{len(rec)}, got {checkpoints}")
    span = max(cps)
    lq = log_normalise(rec.logprobs)
    n_labels = lq.shape[1]
    orders = [o[:span] for o in _orders(len(rec), seeds)]
    golds = [rec.gold[o] for o in orders]
    runs = [("raw argmax", [np.argmax(lq[o], axis=1) for o in orders], "no correction")]
    for name, make, include, note in _cold_methods(n_labels, span):
        runs.append((name, [_predict_online(make, lq[o], include=include) for o in orders], note))
    return [
        _row(f"first {c}: {name}", [p[:c] for p in preds], [g[:c] for g in golds], n_labels, note)
        for c in cps
        for name, preds, note in runs
    ]
