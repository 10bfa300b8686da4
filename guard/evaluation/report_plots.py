"""The report's pictures as PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from guard.evaluation.report_data import EvalRun
from guard.evaluation.report_store import LearnedPrior


def _png(fig: object) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return buf.getvalue()


def _pyplot() -> object:
    import matplotlib

    matplotlib.use("Agg")  # files only: never a window
    import matplotlib.pyplot as plt

    return plt


def bias_png(run: EvalRun) -> bytes:
    """Recall per gold position for each calibration: flat bars are an unbiased model."""
    plt: object = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))  # type: ignore[attr-defined]
    names = list(run.recalls)
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        xs = [i + (k - (len(names) - 1) / 2) * width for i in range(len(run.classes))]
        ax.bar(xs, run.recalls[name], width, label=name)
    ax.set_xticks(range(len(run.classes)), run.classes)
    ax.set_xlabel("gold answer")
    ax.set_ylabel("recall %")
    ax.set_ylim(0, 100)
    ax.set_title("Recall per gold position (bias picture)", fontsize=10)
    ax.legend(fontsize=8, ncols=min(4, len(names)))
    return _png(fig)


def cost_png(run: EvalRun) -> bytes:
    """Accuracy against upstream calls per item, one point per calibration."""
    plt: object = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))  # type: ignore[attr-defined]
    for row in run.rows:
        if row["items"]:
            ax.scatter(row["calls"], row["accuracy"], s=40)
            ax.annotate(row["calibration"], (row["calls"], row["accuracy"]),
                        textcoords="offset points", xytext=(6, 4), fontsize=9)  # fmt: skip
    ax.set_xlabel("upstream calls per item")
    ax.set_ylabel("accuracy %")
    ax.set_title("Accuracy against cost (cost picture)", fontsize=10)
    ax.grid(alpha=0.3)
    return _png(fig)


def priors_png(priors: Sequence[LearnedPrior]) -> bytes:
    """Each key's learned prior against uniform (the dashed line)."""
    plt: object = _pyplot()
    cols = min(3, len(priors))
    rows = math.ceil(len(priors) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), squeeze=False)  # type: ignore[attr-defined]
    for ax, p in zip(axes.flat, priors, strict=False):
        n = len(p.prior)
        ax.bar(range(n), p.prior, color="tab:orange")
        ax.axhline(1.0 / n, linestyle="--", color="gray", linewidth=1)
        ax.set_xticks(range(n), p.classes)
        ax.set_ylim(0, max(max(p.prior) * 1.2, 1.5 / n))
        key = p.key if len(p.key) <= 36 else "…" + p.key[-35:]
        ax.set_title(f"{key}\n{p.method}, {p.seen} seen", fontsize=7)
    for ax in list(axes.flat)[len(priors) :]:
        ax.axis("off")
    fig.suptitle("Learned priors in the store (dashed: uniform)", fontsize=10, y=1.06)
    return _png(fig)


def history_png(priors: Sequence[LearnedPrior]) -> bytes:
    """How each key's prior moved: one line per option ID or label against the questions (or
    inputs) the key had seen, uniform dashed."""
    plt: object = _pyplot()
    cols = min(3, len(priors))
    rows = math.ceil(len(priors) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.7 * rows), squeeze=False)  # type: ignore[attr-defined]
    for ax, p in zip(axes.flat, priors, strict=False):
        seen = [s for s, _ in p.history]
        top = 0.0
        for i, name in enumerate(p.classes):
            ys = [prior[i] for _, prior in p.history]
            top = max(top, *ys)
            ax.plot(seen, ys, marker="." if len(seen) <= 24 else None, linewidth=1.2, label=name)
        ax.axhline(1.0 / len(p.prior), linestyle="--", color="gray", linewidth=1)
        ax.set_ylim(0, max(top * 1.15, 1.5 / len(p.prior)))
        ax.set_xlim(left=0)
        ax.set_xlabel("questions seen" if "|classify|" not in p.key else "inputs seen", fontsize=7)
        ax.tick_params(labelsize=7)
        key = p.key if len(p.key) <= 36 else "…" + p.key[-35:]
        ax.set_title(f"{key}\n{p.method}, {len(p.history)} points", fontsize=7)
        ax.legend(fontsize=6, ncols=min(5, len(p.classes)), loc="upper right")
    for ax in list(axes.flat)[len(priors) :]:
        ax.axis("off")
    fig.suptitle("How the learned priors moved (dashed: uniform)", fontsize=10, y=1.04)
    fig.tight_layout()
    return _png(fig)
