"""Result rows of an offline evaluation and their plain-text table."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stat:
    """A figure measured over one or more seeded arrival orders."""

    mean: float
    std: float
    lo: float
    hi: float
    runs: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat:
        v = np.asarray(list(values), dtype=np.float64)
        if v.size == 0:
            raise ValueError("Stat.of needs at least one value")
        return cls(float(v.mean()), float(v.std()), float(v.min()), float(v.max()), int(v.size))

    @property
    def se(self) -> float:
        """Standard error of :attr:`mean` over the runs (0 for one run, where nothing varies):
        how far the mean itself would move on another set of arrival orders."""
        return self.std / math.sqrt(self.runs - 1) if self.runs > 1 else 0.0

    def fmt(self, digits: int = 1) -> str:
        if self.runs == 1 or self.hi == self.lo:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ±{self.std:.{digits}f}"


@dataclass(frozen=True)
class Row:
    method: str
    accuracy: Stat
    balance_name: str  # "RStd" (MCQ, lower is better) or "macro-F1" (classification)
    balance: Stat
    calls: Stat  # upstream calls per question / input
    note: str = ""


def format_table(title: str, rows: Sequence[Row]) -> str:
    """A fixed-width table: one line per method, spread shown as ±std over seeded orders."""
    bal = rows[0].balance_name if rows else "balance"
    head = ["method", "accuracy %", bal, "calls/q", "runs", "note"]
    body = [
        [r.method, r.accuracy.fmt(), r.balance.fmt(), r.calls.fmt(2), str(r.accuracy.runs), r.note]
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body]
    return "\n".join(lines)
