"""What the prior's history costs a calibrated question: ``Store.update`` of a real PriDe key
(the MCQ path's one transaction per question) with the history off (``history_points=0``) and on
(64 points, the default), side by side in one run, on SQLite and on PostgreSQL.

Two workloads: young keys (each key's first 64 questions: every update writes a point, the
worst case) and one busy key (its first 4,096 questions: points ever more rarely). Both run on
one database, interleaved 64 updates at a time, so that drift on a shared machine hits both
alike.

    python -m bench.store_history [--rounds 3] [--pg postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.replicas import fresh_database
from calibrators.planner import PermutationPlanner
from guard.store import SQLiteStore, State, Store

BIASED = np.array([0.1, 0.6, 0.2, 0.1])


def question(state: State | None) -> tuple[State, None]:
    """One PriDe question, as ``guard/tasks/mcq.py`` adopts it (plan, answer, write back)."""
    planner = PermutationPlanner.from_dict(state["pride"]) if state else PermutationPlanner(4)
    run = planner.start()
    while batch := run.pending():
        for perm in batch:
            run.observe(perm, BIASED)
    run.result()
    return {**(state or {}), "pride": planner.to_dict()}, None


def compare(name: str, opener: Callable[[int], Store], rounds: int) -> list[str]:
    """Both stores on one database, interleaved 64 updates at a time (each on its own keys), so
    that what else the machine does hits both alike."""
    off, on = opener(0), opener(64)
    workloads = {
        "young keys (64 questions each)": (20, 64),
        "one busy key (4,096 questions)": (1, 4096),
    }
    lines = []
    try:
        for label, (n_keys, per_key) in workloads.items():
            times: dict[int, list[float]] = {0: [], 64: []}
            for r in range(rounds):
                for k in range(n_keys):
                    for chunk in range(0, per_key, 64):
                        for points, store in (
                            ((0, off), (64, on)) if (k + chunk // 64) % 2 else ((64, on), (0, off))
                        ):
                            key = f"{label}-{r}-{k}-{points}"
                            for _ in range(64):
                                t0 = time.perf_counter()
                                store.update(key, question)
                                times[points].append(time.perf_counter() - t0)
            med = [statistics.median(times[p]) * 1e6 for p in (0, 64)]
            mean = [statistics.fmean(times[p]) * 1e6 for p in (0, 64)]
            lines.append(f"| {name} | {label} | {med[0]:.0f} / {mean[0]:.0f} | "
                         f"{med[1]:.0f} / {mean[1]:.0f} |")  # fmt: skip
    finally:
        off.close()
        on.close()
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args(argv)
    print("| store | workload | history off: µs per update, median / mean | on (64 points) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:

        def sqlite(points: int) -> Store:
            return SQLiteStore(Path(tmp) / "h.db", history_points=points)

        for line in compare("SQLite", sqlite, args.rounds):
            print(line, flush=True)
    try:
        from guard.store.postgres import PostgresStore
    except ImportError:
        print("PostgreSQL: skipped (pip install 'calguard[postgres]')")
        return
    with fresh_database(args.pg) as url:

        def postgres(points: int) -> Any:
            return PostgresStore(url, history_points=points)

        for line in compare("PostgreSQL", postgres, args.rounds):
            print(line, flush=True)


if __name__ == "__main__":
    main()
