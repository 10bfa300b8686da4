"""Does agreement with the cyclic answer choose the better way to spend two calls? (It does not.)

    python -m bench.cyclic_agreement [--draws 10]

On the questions asked in every order (warm-up, refresh) the cyclic answer, the mean of every
order's debiased log answer, is known, and so is what each way of spending the budget would
have answered there, without labels: the far pair (shown + shift by n // 2, log-space mean), or
concentrated spending (every order where the first answer's margin is under the threshold that
spends the budget, which agrees with cyclic by construction, else the debiased first answer),
or three orders pooled ``position_free`` (:mod:`calibrators.pooling`) on the least certain half.
The selector takes the arm that disagrees least with the cyclic answer, used as a pseudo-label.

Per model with hindsight on whole files (the prior of all questions divided out, as
:func:`guard.evaluation.hindsight.two_call_answers`; simulated models: mean over ``--draws``
draws of 300 questions): each arm's accuracy (labels, judging only), its disagreement with the
cyclic answer (label-free), the selector's pick, and the paired per-question difference in
disagreement (far pair minus concentrated) with its standard error and the number of
full-cycle questions at which it would be 2 s.e. from zero. Beside them: where the accuracy
difference comes from (the least certain 1/(n-1), which concentrated spending answers with the
whole cycle, and the rest, which it answers with the first order), and the same pick against a
held-out pseudo-label (the orders the far pair does not ask, pooled).

Result (issue 10, branch agree-selector): the concentrated arm disagrees least with the cyclic
answer on all 12 models (far minus concentrated: +0.010 to +0.106 a question), so the selector
always picks it; three orders position-free sits in between and never wins. That is right on 11
and wrong on Llama-2-7b-chat (far pair 60.3 %, concentrated 57.7 %), where the difference is
+0.077 ± 0.023: 3.3 s.e. on the wrong side with all 300 questions, so no sample size helps. The
pseudo-label is the cause: there cyclic (58.0 %) is itself worse than the far pair, the shown
order is the best single order (58.3; the others 56.3, 51.3, 54.7), and on the least certain
third the whole cycle loses 2.0 pt to the far pair. Agreement with cyclic measures closeness to
cyclic, which concentrated spending has by construction on the questions where disagreement
lives, not accuracy. On the two interaction models, where cyclic (72.5, 78.9 %) is under the
shown order (76.2, 83.3), concentrated is a little above the far pair (+0.3, +0.6 pt) but both
are under the shown order, and the selector gives no hint that it should back off. Against the
held-out orders it picks concentrated everywhere too (on Llama-2-7b-chat 0.160 against 0.243):
with four cyclic orders no pseudo-label is independent of the whole-cycle answers. No planner
variant was built.

``--orders``: each cyclic order's accuracy (labels) beside two label-free readings of its
quality, agreement with the other orders' pool and mean top probability. The shown order beats
the others by 2.5-4.2 pt on the three larger recordings and by 11.5-15.9 on the interaction
models; only the interaction models show it without labels, so nothing tells Llama-2-7b-chat
(where concentrated spending loses) from Llama-2-13b-chat and llama-65b (where it pays).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.data import recorded_files
from calibrators.permutation import cyclic_shift
from calibrators.pooling import position_free
from guard.evaluation.hindsight import hindsight_logs
from guard.evaluation.recorded import McqRecords, load_recorded
from guard.testing.simulated import simulation_family

Logs = npt.NDArray[np.float64]  # (questions, n cyclic orders, n options), original option order
Answers = npt.NDArray[np.int64]

FAR, CONC, THREE = "far pair", "concentrated", "3 orders pf"
ARMS = (FAR, CONC, THREE)


def margins(logs: Logs) -> npt.NDArray[np.float64]:
    """Top-two margin of each question's debiased first (shown-order) answer."""
    top2 = np.sort(logs[:, 0], axis=1)[:, -2:]
    out: npt.NDArray[np.float64] = top2[:, 1] - top2[:, 0]
    return out


def least_certain(logs: Logs, share: float) -> npt.NDArray[np.bool_]:
    """The round(share * questions) questions with the smallest first-answer margin."""
    k = round(share * len(logs))
    mask = np.zeros(len(logs), dtype=bool)
    mask[np.argsort(margins(logs), kind="stable")[:k]] = True
    return mask


def three_orders(logs: Logs) -> Answers:
    """Orders 0, n // 2 and 1 pooled position-free (the mean where it cannot be fitted)."""
    n = logs.shape[-1]
    ks = (0, n // 2, 1)
    perms = [cyclic_shift(n, k) for k in ks]
    out = np.empty(len(logs), dtype=np.int64)
    for q, lq in enumerate(logs):
        sub = lq[list(ks)]
        content = position_free(sub, perms, np.ones(len(ks)))
        out[q] = int((sub.mean(axis=0) if content is None else content).argmax())
    return out


def arm_answers(logs: Logs) -> dict[str, Answers]:
    """What each arm answers on every question, at two calls a question on average."""
    n = logs.shape[-1]
    shown = logs[:, 0].argmax(axis=1)
    cyc = cyclic_answers(logs)
    conc_mask = least_certain(logs, 1 / (n - 1))
    half = least_certain(logs, 0.5)
    return {
        FAR: (logs[:, 0] + logs[:, n // 2]).argmax(axis=1),
        CONC: np.where(conc_mask, cyc, shown),
        THREE: np.where(half, three_orders(logs), shown),
    }


def cyclic_answers(logs: Logs) -> Answers:
    out: Answers = logs.sum(axis=1).argmax(axis=1)
    return out


def disagreements(logs: Logs) -> dict[str, npt.NDArray[np.float64]]:
    """Per question, 1.0 where an arm's answer differs from the cyclic one (label-free)."""
    cyc = cyclic_answers(logs)
    return {a: (ans != cyc).astype(np.float64) for a, ans in arm_answers(logs).items()}


def held_out_disagreements(logs: Logs) -> dict[str, npt.NDArray[np.float64]]:
    """As :func:`disagreements`, against the pooled orders the far pair does not ask (1 and 3
    for four options) instead of the whole cycle: independent of the far pair's orders, but the
    concentrated arm's whole-cycle answers still contain them."""
    n = logs.shape[-1]
    rest = [k for k in range(n) if k not in (0, n // 2)]
    label = logs[:, rest].sum(axis=1).argmax(axis=1)
    return {a: (ans != label).astype(np.float64) for a, ans in arm_answers(logs).items()}


def pick(disagree: dict[str, float], arms: tuple[str, ...] = (FAR, CONC)) -> str:
    """The arm that disagrees least with the cyclic answer (first listed on a tie)."""
    return min(arms, key=lambda a: disagree[a])


@dataclass
class ModelResult:
    name: str
    acc: dict[str, float]  # arms plus "cyclic", "shown": percent, labels
    disagree: dict[str, float]  # arms: share of questions
    diff_mean: float  # far minus concentrated disagreement, per question
    diff_sd: float  # its per-question standard deviation
    acc_diff_mean: float  # concentrated minus far pair correct, per question (labels)
    acc_diff_sd: float
    questions: int
    held_out: dict[str, float]  # arms: disagreement with the orders the far pair leaves out
    split: tuple[float, float]  # conc - far accuracy (pt) from the least certain / the rest

    def needed(self) -> float:
        """Full-cycle questions at which the disagreement difference is 2 s.e. from zero."""
        return float("inf") if self.diff_mean == 0 else 4 * self.diff_sd**2 / self.diff_mean**2


def measure(name: str, recs: list[McqRecords]) -> ModelResult:
    acc: dict[str, list[float]] = {}
    dis: dict[str, list[float]] = {}
    held: dict[str, list[float]] = {}
    diffs, acc_diffs, split = [], [], []
    for rec in recs:
        logs = hindsight_logs(rec)
        answers = arm_answers(logs)
        answers["cyclic"] = cyclic_answers(logs)
        answers["shown"] = logs[:, 0].argmax(axis=1)
        for a, ans in answers.items():
            acc.setdefault(a, []).append(100 * float(np.mean(ans == rec.gold)))
        d = disagreements(logs)
        for a in ARMS:
            dis.setdefault(a, []).append(float(d[a].mean()))
        for a, v in held_out_disagreements(logs).items():
            held.setdefault(a, []).append(float(v.mean()))
        diffs.append(d[FAR] - d[CONC])
        gain = (answers[CONC] == rec.gold) * 1.0 - (answers[FAR] == rec.gold)
        acc_diffs.append(gain)
        u = least_certain(logs, 1 / (logs.shape[-1] - 1))
        split.append((100 * gain[u].sum() / len(gain), 100 * gain[~u].sum() / len(gain)))
    diff, acc_diff = np.concatenate(diffs), np.concatenate(acc_diffs)
    return ModelResult(
        name,
        {a: float(np.mean(v)) for a, v in acc.items()},
        {a: float(np.mean(v)) for a, v in dis.items()},
        float(diff.mean()),
        float(diff.std(ddof=1)),
        float(acc_diff.mean()),
        float(acc_diff.std(ddof=1)),
        len(diff),
        {a: float(np.mean(v)) for a, v in held.items()},
        (float(np.mean([x[0] for x in split])), float(np.mean([x[1] for x in split]))),
    )


def models(draws: int) -> list[tuple[str, list[McqRecords]]]:
    out: list[tuple[str, list[McqRecords]]] = []
    for path in recorded_files():
        rec = load_recorded(path)
        if isinstance(rec, McqRecords):
            out.append((rec.name.removeprefix("arc_0s_"), [rec]))
    for sim in simulation_family():
        out.append((sim.name, [sim.redrawn(d).record(300) for d in range(draws)]))
    return out


def row(r: ModelResult) -> str:
    best = max((FAR, CONC), key=lambda a: r.acc[a])
    chosen = pick(r.disagree)
    se = r.diff_sd / np.sqrt(r.questions)
    acc_se = 100 * r.acc_diff_sd / np.sqrt(r.questions)
    return (
        f"{r.name} | {r.acc['shown']:.1f} {r.acc['cyclic']:.1f} | "
        + " ".join(f"{r.acc[a]:.1f}" for a in ARMS)
        + " | "
        + " ".join(f"{r.disagree[a]:.3f}" for a in ARMS)
        + f" | {chosen} | {'right' if chosen == best else 'WRONG'} (best {best})"
        + f" | {r.diff_mean:+.3f} ± {se:.3f} (sd {r.diff_sd:.2f}, n {r.questions})"
        + f" | {r.needed():.0f} | {100 * r.acc_diff_mean:+.1f} ± {acc_se:.1f}"
        + f" ({r.split[0]:+.1f} {r.split[1]:+.1f})"
        + f" | {pick(r.held_out)} ("
        + " ".join(f"{r.held_out[a]:.3f}" for a in (FAR, CONC))
        + ")"
    )


def order_signals(logs: Logs) -> tuple[Logs, Logs]:
    """Per cyclic order, two label-free readings of its quality: how often its answer agrees
    with the pool of the other orders (leave one out), and its mean top probability."""
    n = logs.shape[1]
    agree = np.array(
        [np.mean(logs[:, k].argmax(1) == np.delete(logs, k, axis=1).sum(1).argmax(1))
         for k in range(n)]
    )  # fmt: skip
    p = np.exp(logs - logs.max(-1, keepdims=True))
    top = (p.max(-1) / p.sum(-1)).mean(0)
    return agree, top


def order_row(name: str, recs: list[McqRecords]) -> str:
    acc, agree, top = [], [], []
    for rec in recs:
        logs = hindsight_logs(rec)
        acc.append(100 * np.mean(logs.argmax(-1) == rec.gold[:, None], axis=0))
        a, t = order_signals(logs)
        agree.append(a)
        top.append(t)
    acc_, agree_, top_ = (np.mean(x, axis=0) for x in (acc, agree, top))
    return (
        f"{name} | " + " ".join(f"{x:.1f}" for x in acc_)
        + f" | {acc_[0] - acc_[1:].mean():+.1f} | {agree_[0] - agree_[1:].mean():+.3f}"
        + f" | {top_[0] - top_[1:].mean():+.3f}"
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=10, help="draws of 300 per simulated model")
    ap.add_argument(
        "--orders", action="store_true", help="per-order accuracy and label-free quality signals"
    )
    args = ap.parse_args()
    if args.orders:
        print(
            "model | accuracy of each cyclic order (labels) | shown - rest (pt) | agreement with"
            " the other orders' pool, shown - rest | top probability, shown - rest"
        )
        for name, recs in models(args.draws):
            print(order_row(name, recs), flush=True)
        return
    print(
        "model | acc shown cyclic | acc " + " / ".join(ARMS) + " | disagree with cyclic "
        + " / ".join(ARMS) + " | pick (far vs conc) | right? | far - conc disagreement ± s.e."
        + " | full-cycle q for 2 s.e. | conc - far accuracy (pt, labels) ± s.e. (from least"
        + " certain, from the rest) | held-out pick (far / conc disagreement)"
    )  # fmt: skip
    for name, recs in models(args.draws):
        print(row(measure(name, recs)), flush=True)


if __name__ == "__main__":
    main()
