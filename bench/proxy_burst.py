"""Recorded ARC questions sent through the proxy many at a time, beside the offline figures.

    python -m bench.proxy_burst ../shared/data/recorded/arc_0s_*.jsonl [--concurrency 16]

A replay upstream answers every order with its recorded row; the real proxy (a fresh SQLite
store) gets the questions in eval-offline's arrival orders (``default_rng(seed).permutation``,
seeds 0..``--seeds``-1), ``--concurrency`` in flight at once, with the async openai client. For
PriDe and adaptive (budget 2) it prints the proxy's accuracy / RStd / calls per question (the
mean, and the most over the orders) and how many questions warmed up, beside eval-offline's for
the same orders (one at a time). While a key warms up, the proxy sends its questions one at a
time (``PermutationPlanner.warming``); after it, all at once, each planned on a snapshot that
counts the others in flight (``PermutationPlanner.reserve``) — so the figures differ from the
offline ones only by which questions were planned before earlier ones had finished.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import openai

from calibrators.planner import PermutationPlanner
from guard.config import RouteConfig, Settings
from guard.evaluation.mcq import RunScore, run_order
from guard.evaluation.recorded import McqRecords, load_recorded
from guard.evaluation.replay import replay_concurrently
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, ReplayResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread


def offline(rec: McqRecords, method: str, order: np.ndarray) -> tuple[RunScore, int]:
    made: list[PermutationPlanner] = []

    def factory(n: int) -> PermutationPlanner:
        made.append(PermutationPlanner(n, method, budget=2.0))  # type: ignore[arg-type]
        return made[-1]

    return run_order(rec, factory, order), made[0].warmed


def row(label: str, scores: list[RunScore], warm: list[int]) -> str:
    def ms(xs: list[float], d: int) -> str:
        return f"{np.mean(xs):.{d}f} ±{np.std(xs):.{d}f}"

    return (
        f"  {label:<28} {ms([s.accuracy for s in scores], 1):>11}  "
        f"{ms([s.rstd for s in scores], 1):>10}  {np.mean([s.calls for s in scores]):>6.2f}  "
        f"{max(s.calls for s in scores):>6.2f}  {ms([float(w) for w in warm], 1):>10}"
    )


async def through_proxy(
    url: str, rec: McqRecords, method: str, seed: int, order: np.ndarray, concurrency: int
) -> tuple[RunScore, int]:
    assert rec.questions is not None
    guard: dict[str, Any] = {"calibration": method, "key": f"{method}-{seed}"}
    async with openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0) as client:
        score, evidence = await replay_concurrently(
            client, rec, rec.questions, [int(q) for q in order], guard, concurrency
        )
    return score, sum(g["role"] == "warmup" for g in evidence)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+", help="recorded ARC files (arc_0s_*.jsonl)")
    ap.add_argument("--seeds", type=int, default=5, help="arrival orders: eval-offline's 0..N-1")
    ap.add_argument("--concurrency", type=int, default=16, help="questions in flight at once")
    ap.add_argument("--methods", nargs="+", default=["pride", "adaptive"], help="pride, adaptive")
    args = ap.parse_args()
    print(f"# {args.seeds} arrival orders; the proxy at concurrency {args.concurrency}")
    print(
        f"  {'':<28} {'accuracy %':>11}  {'RStd':>10}  {'calls':>6}  {'max':>6}  {'warm-up q':>10}"
    )
    for path in args.files:
        rec = load_recorded(Path(path))
        assert isinstance(rec, McqRecords)
        if rec.questions is None:
            print(f"{Path(path).name}: no question texts, skipped")
            continue
        print(f"{Path(path).name}: {len(rec)} questions")
        state = FakeUpstreamState(ReplayResponder(rec, rec.questions))
        with (
            tempfile.TemporaryDirectory() as tmp,
            serve_in_thread(create_fake_upstream(state)) as up,
        ):
            settings = Settings(
                upstream=f"{up}/v1",
                store=f"sqlite:///{tmp}/calguard.db",
                default_route=RouteConfig(budget=2.0),
            )
            orders = [np.random.default_rng(s).permutation(len(rec)) for s in range(args.seeds)]
            with serve_in_thread(create_app(settings)) as px:
                for method in args.methods:
                    off = [offline(rec, method, o) for o in orders]
                    on = [
                        asyncio.run(through_proxy(f"{px}/v1", rec, method, s, o, args.concurrency))
                        for s, o in enumerate(orders)
                    ]
                    print(row(f"{method}, offline", [a for a, _ in off], [w for _, w in off]))
                    print(row(f"{method}, proxy", [a for a, _ in on], [w for _, w in on]))


if __name__ == "__main__":
    main()
