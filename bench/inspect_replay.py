"""``debiased_choice()`` in real inspect_ai evals on a recorded ARC file, beside eval-offline.

    python -m bench.inspect_replay ../shared/data/recorded/arc_0s_Llama-2-13b-chat-hf.jsonl

The replay provider (``calguard-fake/replay``) answers every order with its recorded row. The
questions arrive in eval-offline's arrival orders (``np.random.default_rng(seed).permutation(n)``
for seeds 0..``--seeds``-1), one at a time (``max_samples=1``), and each calibration runs with
eval-offline's settings (its rows "PriDe, online", "adaptive, budget 2", "cyclic average").
Plain ``multiple_choice()`` at temperature 0 answers with the shown order's most likely letter:
eval-offline's "row-0 argmax (none)". One row each: inspect's figures (read from its log),
eval-offline's for the same order, and whether they agree to 1e-9. Logs go to a temporary
folder. About half a minute for a 300-question file. ``--max-samples 0`` runs with inspect's
default concurrency instead.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from importlib.metadata import version

import numpy as np
from inspect_ai import Task, eval
from inspect_ai.model import GenerateConfig
from inspect_ai.solver import Solver, multiple_choice

from calibrators.planner import PermutationPlanner
from guard.evaluation.mcq import RunScore, run_order
from guard.integrations.inspect import choice_with_bias, debiased_choice
from guard.testing.inspect_provider import load_mcq, recorded_samples

ROWS = [  # solver label, calibration (None: plain multiple_choice()), eval-offline's row
    ("multiple_choice(), temperature 0", None, "row-0 argmax"),
    ('debiased_choice("pride")', "pride", "PriDe, online"),
    ('debiased_choice("adaptive", budget=2)', "adaptive", "adaptive, budget 2"),
    ('debiased_choice("cyclic")', "cyclic", "cyclic average"),
]


def inspect_figures(
    path: str, solver: Solver, order: np.ndarray, log_dir: str, max_samples: int | None,
    **kw: object,
) -> RunScore:  # fmt: skip
    rec = load_mcq(path)
    dataset = recorded_samples(rec, order)
    task = Task(dataset=dataset, solver=solver, scorer=choice_with_bias(), **kw)  # type: ignore[arg-type]
    [log] = eval(
        task, model="calguard-fake/replay", model_args={"recorded": path}, log_dir=log_dir,
        display="none", log_realtime=False, max_samples=max_samples,
    )  # fmt: skip
    if log.results is None:
        raise RuntimeError(f"the eval failed: {log.error}")
    m = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    return RunScore(100.0 * m["accuracy"], m["rstd"], m["calls_per_sample"])


def planner_factory(method: str) -> Callable[[int], PermutationPlanner]:
    """eval-offline's planner for ``method`` (its online rows' settings)."""
    return lambda n: PermutationPlanner(n, method, budget=2.0)  # type: ignore[arg-type]


def fmt(values: list[float], digits: int) -> str:
    """The mean, and the spread over arrival orders when there are several."""
    mean = f"{np.mean(values):.{digits}f}"
    return mean if len(values) == 1 else f"{mean} ±{np.std(values):.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", help="a recorded ARC file (shared/data/recorded/arc_0s_*.jsonl)")
    ap.add_argument("--seeds", type=int, default=1, help="arrival orders: eval-offline's 0..N-1")
    ap.add_argument(
        "--max-samples", type=int, default=1,
        help="samples in flight at once (0: inspect's default); more than 1 starts questions "
        "before the earlier ones are answered, so the figures may differ from eval-offline's",
    )  # fmt: skip
    ap.add_argument("--only", nargs="+", help="these calibrations only (none: multiple_choice)")
    args = ap.parse_args()
    rec = load_mcq(args.file)
    orders = [np.random.default_rng(seed).permutation(len(rec)) for seed in range(args.seeds)]
    print(
        f"{rec.name}: {len(rec)} questions, "
        + (
            "arrival order of seed 0"
            if args.seeds == 1
            else f"arrival orders of seeds 0..{args.seeds - 1}"
        )
        + ", "
        f"max_samples {args.max_samples or 'default'}; inspect_ai {version('inspect_ai')}"
    )
    cols = f"{'acc %':>11s} {'RStd':>10s} {'calls':>5s}"
    print(f"{'inspect solver':38s} {cols}   {'eval-offline row':20s} {cols}  same")
    with tempfile.TemporaryDirectory() as logs:
        for label, calibration, offline_row in ROWS:
            method = calibration or "none"
            if args.only and method not in args.only:
                continue
            got, want = [], []
            for order in orders:
                if calibration is None:
                    solver, kw = multiple_choice(), {"config": GenerateConfig(temperature=0)}
                else:
                    solver, kw = debiased_choice(calibration, budget=2.0), {}
                got.append(
                    inspect_figures(args.file, solver, order, logs, args.max_samples or None, **kw)
                )
                want.append(run_order(rec, planner_factory(method), order))
            same = all(
                abs(a - b) <= 1e-9
                for g, w in zip(got, want, strict=True)
                for a, b in zip(
                    (g.accuracy, g.rstd, g.calls), (w.accuracy, w.rstd, w.calls), strict=True
                )
            )
            figures = [
                (
                    fmt([r.accuracy for r in rs], 1),
                    fmt([r.rstd for r in rs], 1),
                    fmt([r.calls for r in rs], 2),
                )
                for rs in (got, want)
            ]
            (ga, gr, gc), (wa, wr, wc) = figures
            print(
                f"{label:38s} {ga:>11s} {gr:>10s} {gc:>5s}   {offline_row:20s} {wa:>11s} {wr:>10s} "
                f"{wc:>5s}  {'yes' if same else 'NO'}",
                flush=True,
            )


if __name__ == "__main__":
    main()
