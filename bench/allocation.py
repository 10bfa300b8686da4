"""Where the second call goes: one more order for every unsure question, or every order for
the least sure ones.

    python -m bench.allocation [--seeds 20] [--draws 10] [--only NAME ...]
        [--variant decides|concentrated|demand|complete|gated|gated-strict|gated-plain
         | --value-floor F]

Per recorded ARC model and per simulated one (``--draws`` draws of its questions, 5 arrival
orders each):

1. Hindsight gauges (:mod:`guard.evaluation.hindsight`, the prior of all questions divided out):
   accuracy of the shown order alone, of the far pair on every question, and of every order for
   the 1/(n-1) least certain questions — both at two calls a question — and of the latter once
   the least warm-up and the refresh are paid out of the same two calls, and of the Gaussian
   far pair once the least warm-up (4 questions) or the longest (24) and the refresh are paid
   (expected over arrival orders), beside cyclic averaging; and the alternating share of the
   questions' own position biases (the part the far pair leaves; 1/(n-1) when they are
   isotropic, as in the simulation).
2. The planner's defaults, and how they hold the budget: where their threshold sits over the
   second half of a run, and how often the budget guard, not the threshold, stopped a question.
3. A variant of :mod:`bench.planner_variants` (``--variant``; default: the first answer decides)
   or the defaults at another value floor, judged beside the defaults against issue 10's goals
   at budget 2.

It shows what limits adaptive debiasing on sim-strong-skewed: concentrating the calls reaches
cyclic averaging there, and costs the real models goals.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import numpy as np

from bench.adaptive_lomo import recorded_files
from bench.planner_variants import (
    CompleteCycle,
    DemandCounted,
    FirstAnswerDecides,
    GatedConcentration,
    Watched,
)
from calibrators.metrics import accuracy
from calibrators.planner import PermutationPlanner
from guard.evaluation.draws import pool_rows
from guard.evaluation.hindsight import (
    alternating_share,
    hindsight_logs,
    prior_paid_answers,
    prior_paid_far_pair,
    two_call_answers,
    two_call_ceiling,
)
from guard.evaluation.mcq import (
    AdaptiveVerdict,
    arrival_orders,
    judge_adaptive,
    mcq_baselines,
    run_order,
    verdict_from_rows,
)
from guard.evaluation.recorded import McqRecords, load_recorded
from guard.testing.simulated import simulation_family


def rationing(recs: Sequence[McqRecords], seeds: int) -> str:
    """How the defaults hold the budget: the threshold over the second half of a run, and the
    share of questions the guard stopped (their next order was wanted, the credit was out)."""
    ths: list[float] = []
    blocked: list[float] = []
    watched: list[Watched] = []

    def factory(n: int) -> PermutationPlanner:
        watched.append(Watched(n))
        return watched[-1]

    for rec in recs:
        for order in arrival_orders(len(rec), seeds):
            run_order(rec, factory, order)
            ths.append(float(np.mean(watched[-1].thresholds[len(rec) // 2 :])))
            blocked.append(watched[-1].blocked / len(rec))
    return (
        f"threshold {np.mean(ths):.2f} nats over the second half, "
        f"the guard stopped {np.mean(blocked):.0%} of the questions"
    )


def gauges(recs: Sequence[McqRecords]) -> str:
    cells: dict[str, list[float]] = {}
    for rec in recs:
        logs = hindsight_logs(rec)
        answers = {"shown": logs[:, 0].argmax(axis=1), **two_call_answers(logs)}
        answers["least certain, prior paid"] = prior_paid_answers(logs)
        answers["cyclic"] = logs.sum(axis=1).argmax(axis=1)
        for k, pred in answers.items():
            cells.setdefault(k, []).append(accuracy(pred, rec.gold))
        for w in (4, 24):  # the least warm-up, the longest
            paid = prior_paid_far_pair(logs, rec.gold, warmup=w)
            cells.setdefault(f"far pair, Gaussian, warm-up {w} paid", []).append(paid)
        cells.setdefault("alternating share", []).append(alternating_share(logs))
    return ", ".join(
        f"{k} {np.mean(v):.2f}" if k == "alternating share" else f"{k} {np.mean(v):.1f}"
        for k, v in cells.items()
    )


Factory = Callable[[int], PermutationPlanner]

VARIANTS: dict[str, tuple[str, Factory]] = {
    "decides": ("the first answer decides:", FirstAnswerDecides),
    "concentrated": ("every order or none:", lambda n: FirstAnswerDecides(n, escalate=1.0)),
    "demand": ("threshold by demand:", DemandCounted),
    "complete": ("pair, then the cycle:", CompleteCycle),
    "gated": ("gated (shape, no lead):", GatedConcentration),
    "gated-strict": (
        "gated, lead bound at 1 s.e.:",
        lambda n: GatedConcentration(n, lead_z=1.0),
    ),
    "gated-plain": (
        "gated, no hysteresis, 10 full:",
        lambda n: GatedConcentration(n, min_full=10, cut_close=None, lead_close=None),
    ),
}


def gate_values(recs: Sequence[McqRecords], seeds: int, variant: Factory) -> str | None:
    """For a gated variant: the gauge and the lead at the end of each run (mean, 10-90 %
    range), and the share of questions planned concentrated."""
    made: list[PermutationPlanner] = []

    def factory(n: int) -> PermutationPlanner:
        made.append(variant(n))
        return made[-1]

    ratios: list[float] = []
    leads: list[float] = []
    share: list[float] = []
    for rec in recs:
        for order in arrival_orders(len(rec), seeds):
            run_order(rec, factory, order)
            p = made[-1]
            if not isinstance(p, GatedConcentration):
                return None
            r, lead = p.shape.ratio(), p.lead()
            ratios.append(float("nan") if r is None else r)
            leads.append(float("nan") if lead is None else lead)
            share.append(p.gated / p.started)

    def rng(v: list[float]) -> str:
        lo, hi = np.nanpercentile(v, 10), np.nanpercentile(v, 90)
        return f"{np.nanmean(v):.2f} ({lo:.2f} to {hi:.2f})"

    return (
        f"gauge at the end {rng(ratios)}, lead {rng(leads)}, "
        f"concentrated {np.mean(share):.0%} of questions (runs with any: "
        f"{np.mean([s > 0 for s in share]):.0%})"
    )


def judged(
    recs: Sequence[McqRecords], seeds: int, variant: Factory = FirstAnswerDecides
) -> tuple[AdaptiveVerdict, AdaptiveVerdict]:
    """(defaults, the variant), pooled over the draws."""
    per: tuple[list[list], list[list]] = ([], [])  # type: ignore[type-arg]
    for rec in recs:
        base = mcq_baselines(rec, seeds)
        for rows, factory in zip(per, (None, variant), strict=True):
            v = judge_adaptive(rec, seeds, 2.0, factory, base)
            rows.append([v.raw, v.pride, v.cyclic, v.adaptive])
    ceiling = float(np.mean([two_call_ceiling(rec) for rec in recs]))
    out = [verdict_from_rows(pool_rows(rows), 2.0, ceiling) for rows in per]
    assert out[0] is not None
    assert out[1] is not None
    return out[0], out[1]


def line(v: AdaptiveVerdict) -> str:
    a = v.adaptive
    misses = v.misses()
    return (
        f"{a.accuracy.mean:.1f} / {a.balance.mean:.2f} (PriDe {v.pride.balance.mean:.2f}) at "
        f"{a.calls.mean:.2f}; {v.vs_line:+.2f} vs line, {v.vs_best:+.2f} vs best, "
        f"{v.vs_cyclic:+.2f} vs cyclic; " + ("; ".join(misses) if misses else "goals met")
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20, help="arrival orders per recording")
    ap.add_argument("--draws", type=int, default=10, help="draws per simulated model")
    ap.add_argument("--only", nargs="*", help="models whose name contains one of these")
    ap.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        default="decides",
        help="what the defaults are compared with (bench.planner_variants)",
    )
    ap.add_argument(
        "--value-floor",
        type=float,
        help="compare the defaults with the defaults at this value floor instead",
    )
    args = ap.parse_args()
    floor: float | None = args.value_floor
    variant: Factory
    if floor is not None:
        label = f"value floor {floor:g}:"

        def variant(n: int) -> PermutationPlanner:
            return PermutationPlanner(n, "adaptive", value_floor=floor)

    else:
        label, variant = VARIANTS[args.variant]

    models: list[tuple[str, list[McqRecords], int]] = []
    for path in recorded_files():
        rec = load_recorded(path)
        if isinstance(rec, McqRecords):
            models.append((rec.name, [rec], args.seeds))
    for m in simulation_family():
        models.append((m.name, [m.redrawn(d).record(300) for d in range(args.draws)], 5))
    for name, recs, seeds in models:
        if args.only and not any(part in name for part in args.only):
            continue
        defaults, other = judged(recs, seeds, variant)
        print(f"{name}: hindsight {gauges(recs)}")
        print(f"  {'defaults:':25s} {line(defaults)}")
        print(f"  {'':25s} {rationing(recs, seeds)}")
        print(f"  {label:25s} {line(other)}", flush=True)
        gv = gate_values(recs, seeds, variant)
        if gv is not None:
            print(f"  {'':25s} {gv}", flush=True)


if __name__ == "__main__":
    main()
