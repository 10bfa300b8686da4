"""Evaluation metrics over predictions, gold labels and probability vectors.

Every function takes plain sequences or numpy arrays and returns a Python float.
Percentages are returned in percent (0-100) where the literature reports them so
(accuracy, RStd, macro-F1, order-consistency); ECE and KL are returned as fractions/nats.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike


def _ints(x: ArrayLike) -> npt.NDArray[np.int64]:
    return np.asarray(x, dtype=np.int64).reshape(-1)


def _pair(pred: ArrayLike, gold: ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    p, g = _ints(pred), _ints(gold)
    if p.shape != g.shape:
        raise ValueError(f"pred has {p.size} items but gold has {g.size}")
    return p, g


def accuracy(pred: ArrayLike, gold: ArrayLike) -> float:
    """Share of predictions equal to gold, in percent."""
    p, g = _pair(pred, gold)
    if p.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float(np.mean(p == g) * 100.0)


def recall_per_class(pred: ArrayLike, gold: ArrayLike, n_classes: int) -> npt.NDArray[np.float64]:
    """Recall of each gold class (NaN for a class that never occurs as gold)."""
    p, g = _pair(pred, gold)
    out = np.full(n_classes, np.nan)
    for c in range(n_classes):
        mask = g == c
        if mask.any():
            out[c] = float(np.mean(p[mask] == c))
    return out


def rstd(pred: ArrayLike, gold: ArrayLike, n_classes: int) -> float:
    """PriDe's RStd: population std of per-gold-answer recall, in percent.

    Classes that never occur as gold are left out (their recall is undefined).
    """
    rec = recall_per_class(pred, gold, n_classes)
    rec = rec[~np.isnan(rec)]
    return float(np.std(rec) * 100.0)


def macro_f1(pred: ArrayLike, gold: ArrayLike, n_classes: int) -> float:
    """Unweighted mean of per-class F1, in percent. A class with no support and no
    predictions is left out; one predicted but never gold counts as F1 = 0."""
    p, g = _pair(pred, gold)
    scores = []
    for c in range(n_classes):
        tp = int(np.sum((p == c) & (g == c)))
        fp = int(np.sum((p == c) & (g != c)))
        fn = int(np.sum((p != c) & (g == c)))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores) * 100.0) if scores else 0.0


def expected_calibration_error(probs: ArrayLike, gold: ArrayLike, n_bins: int = 10) -> float:
    """ECE of the top-1 prediction with equal-width confidence bins (fraction, not percent).

    ``probs`` is (N, C); rows need not be normalised and are normalised here.
    """
    pr = np.asarray(probs, dtype=np.float64)
    if pr.ndim != 2:
        raise ValueError(f"probs must be 2-D (N, C), got shape {pr.shape}")
    pr = pr / pr.sum(axis=1, keepdims=True)
    g = _ints(gold)
    conf = pr.max(axis=1)
    correct = (pr.argmax(axis=1) == g).astype(np.float64)
    # Bin i holds conf in (i/n, (i+1)/n]; conf == 0 cannot happen for a normalised row.
    idx = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def kl_from_uniform(prior: ArrayLike) -> float:
    """KL(prior || uniform) in nats: 0 for a uniform prior, log(n) for a one-hot one."""
    p = np.asarray(prior, dtype=np.float64).reshape(-1)
    p = p / p.sum()
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] * p.size)))


def order_consistency(verdicts: ArrayLike) -> float:
    """Share of items whose decision is the same under every order asked, in percent.

    ``verdicts`` is (N, K): the decision for item i under order k, already mapped back
    to the original candidates / options.
    """
    v = np.asarray(verdicts)
    if v.ndim != 2 or v.shape[0] == 0:
        raise ValueError(f"verdicts must be a non-empty (N, K) array, got shape {v.shape}")
    return float(np.mean(np.all(v == v[:, :1], axis=1)) * 100.0)
