"""``calguard eval-offline FILE...``: every method side by side on recorded LLM outputs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from guard.cli.args import budget, positive


def run(args: argparse.Namespace) -> int:
    from guard.evaluation.offline import DEFAULT_BUDGETS, report

    files: list[Path] = []
    for f in args.files:
        path = Path(f)
        files += sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"no recorded *.jsonl files in {', '.join(args.files)}")
    budgets = tuple(args.budget) if args.budget else DEFAULT_BUDGETS
    for i, f in enumerate(files):
        if i:
            print()
        print(report(f, args.seeds, budgets), flush=True)
    return 0


def add_parser(sub: Any) -> None:
    ev = sub.add_parser(
        "eval-offline",
        help="evaluate every calibration method on recorded LLM outputs (no model, no network)",
        description=(
            "Replay recorded LLM output distributions through the calibrators and print one row "
            "per method, for each FILE (a folder: every *.jsonl in it), e.g. "
            "../shared/data/recorded."
        ),
    )
    ev.add_argument("files", nargs="+", metavar="FILE", help="recorded JSONL file(s) or folder(s)")
    ev.add_argument(
        "--seeds",
        type=positive,
        default=20,
        help="seeded arrival orders for online methods (default 20)",
    )
    ev.add_argument(
        "--budget",
        type=budget,
        action="append",
        help="adaptive budget(s) in calls per question (repeatable; default 1.5, 2, 3)",
    )
    ev.set_defaults(func=run)
