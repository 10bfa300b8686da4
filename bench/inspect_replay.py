"""``debiased_choice()`` in real inspect_ai evals on a recorded ARC file, beside eval-offline.

    python -m bench.inspect_replay ../shared/data/recorded/arc_0s_Llama-2-13b-chat-hf.jsonl

The replay provider (``calguard-fake/replay``) answers every order with its recorded row. The
questions arrive in eval-offline's arrival order for ``--seed`` (``np.random.default_rng(seed)
.permutation(n)``), one at a time (``max_samples=1``), and each calibration runs with
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
    ("multiple_choice(), temperature 0", None, "row-0 argmax (none)"),
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", help="a recorded ARC file (shared/data/recorded/arc_0s_*.jsonl)")
    ap.add_argument("--seed", type=int, default=0, help="eval-offline's arrival order")
    ap.add_argument(
        "--max-samples", type=int, default=1,
        help="samples in flight at once (0: inspect's default); more than 1 starts questions "
        "before the earlier ones are answered, so the figures may differ from eval-offline's",
    )  # fmt: skip
    args = ap.parse_args()
    rec = load_mcq(args.file)
    order = np.random.default_rng(args.seed).permutation(len(rec))
    print(
        f"{rec.name}: {len(rec)} questions in the arrival order of seed {args.seed}, "
        f"max_samples {args.max_samples or 'default'}; inspect_ai {version('inspect_ai')}"
    )
    head = f"{'solver':40s} {'inspect: acc %':>14s} {'RStd':>5s} {'calls':>5s}   eval-offline row"
    print(head + " " * 22 + "acc %  RStd  calls  same")
    with tempfile.TemporaryDirectory() as logs:
        for label, calibration, offline_row in ROWS:
            if calibration is None:
                solver, kw = multiple_choice(), {"config": GenerateConfig(temperature=0)}
                method = "none"
            else:
                solver, kw, method = debiased_choice(calibration, budget=2.0), {}, calibration
            got = inspect_figures(args.file, solver, order, logs, args.max_samples or None, **kw)
            want = run_order(rec, lambda n, m=method: PermutationPlanner(n, m, budget=2.0), order)  # type: ignore[misc]
            pairs = zip(
                (got.accuracy, got.rstd, got.calls),
                (want.accuracy, want.rstd, want.calls),
                strict=True,
            )
            same = all(abs(a - b) <= 1e-9 for a, b in pairs)
            print(
                f"{label:40s} {got.accuracy:14.1f} {got.rstd:5.1f} {got.calls:5.2f}   "
                f"{offline_row:36s} {want.accuracy:5.1f} {want.rstd:5.1f} {want.calls:5.2f}  "
                f"{'yes' if same else 'NO'}",
                flush=True,
            )


if __name__ == "__main__":
    main()
