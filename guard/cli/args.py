"""Argument types the subcommands share: a mistake is argparse's one usage line, exit status 2,
before anything runs (never a traceback from deep inside a run)."""

from __future__ import annotations

import argparse
import math


def positive(value: str) -> int:
    """A count of 1 or more (questions, seeds, items, keys, records)."""
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {n}")
    return n


def budget(value: str) -> float:
    """Upstream calls per question: a finite number, 1 or more (the planner says whether a
    budget just over 1 still pays for its prior's refresh)."""
    b = float(value)
    if not math.isfinite(b) or b < 1.0:
        raise argparse.ArgumentTypeError(f"must be 1 or more calls per question, got {value}")
    return b
