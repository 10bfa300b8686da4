"""Scores of a ``calguard eval`` run: one row per calibration, printed and written as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from calibrators.metrics import accuracy, expected_calibration_error, macro_f1, rstd
from guard.evaluation.live_log import Answer


@dataclass(frozen=True)
class EvalRow:
    calibration: str
    items: int
    accuracy: float  # percent
    rstd: float  # std of the per-gold-class recalls, percent (lower: less biased)
    macro_f1: float  # percent
    ece: float  # expected calibration error of the answer's probability (fraction)
    calls: float  # upstream calls per item
    tokens: float  # upstream tokens per item (from usage)


def score(calibration: str, answers: Sequence[Answer], n_classes: int) -> EvalRow:
    """The row of one calibration from its answers (each item once)."""
    by_item = {a.item: a for a in answers}
    rows = [by_item[i] for i in sorted(by_item)]
    if not rows:
        return EvalRow(calibration, 0, *([float("nan")] * 6))
    pred = np.array([a.pred for a in rows])
    gold = np.array([a.gold for a in rows])
    probs = np.zeros((len(rows), n_classes))
    for k, a in enumerate(rows):
        if a.probs:
            probs[k, : len(a.probs)] = a.probs
        else:  # no distribution in the evidence: all confidence on the answer
            probs[k, a.pred] = 1.0
    return EvalRow(
        calibration,
        len(rows),
        accuracy(pred, gold),
        rstd(pred, gold, n_classes),
        macro_f1(pred, gold, n_classes),
        expected_calibration_error(probs, gold),
        float(np.mean([a.calls for a in rows])),
        float(np.mean([a.tokens for a in rows])),
    )


def score_all(
    answers: Sequence[Answer], calibrations: Sequence[str], n_classes: int, items: int
) -> list[EvalRow]:
    """One row per calibration, over the items below ``items`` (a run's ``--limit``)."""
    return [
        score(c, [a for a in answers if a.calibration == c and a.item < items], n_classes)
        for c in calibrations
    ]


def format_rows(title: str, rows: Sequence[EvalRow]) -> str:
    head = ["calibration", "items", "accuracy %", "RStd", "macro-F1", "ECE", "calls/item",
            "tokens/item"]  # fmt: skip
    body = [
        [
            r.calibration,
            str(r.items),
            f"{r.accuracy:.1f}",
            f"{r.rstd:.1f}",
            f"{r.macro_f1:.1f}",
            f"{r.ece:.3f}",
            f"{r.calls:.2f}",
            f"{r.tokens:.1f}",
        ]
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    return "\n".join(lines)


def as_json(header: dict[str, Any], rows: Sequence[EvalRow]) -> dict[str, Any]:
    return {"run": header, "rows": [asdict(r) for r in rows]}
