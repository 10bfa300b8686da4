"""What ``calguard report`` draws, read from an eval run and from the store.

- From a ``calguard eval`` run (its ``results.json`` and the ``.jsonl`` log beside it): recall per
  gold position (or label) for each calibration, the bias picture; accuracy against upstream
  calls per item, the cost picture.
- From the store: per calibration key and method, the learned prior over option IDs or labels
  against uniform, and how much traffic taught it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from calibrators.metrics import recall_per_class
from calibrators.planner import PermutationPlanner
from guard.calibrations import CALIBRATIONS
from guard.evaluation.live_log import Answer
from guard.evaluation.recorded import ID_LETTERS
from guard.store import open_store


@dataclass(frozen=True)
class EvalRun:
    title: str
    classes: list[str]  # option IDs or label words
    rows: list[dict[str, Any]]  # the JSON rows of live_table.EvalRow
    recalls: dict[str, list[float]]  # calibration -> recall per gold class, percent


def read_eval(path: str | Path) -> EvalRun:
    """A ``calguard eval`` result (``results.json``, with ``results.jsonl`` beside it)."""
    p = Path(path)
    result = json.loads(p.read_text(encoding="utf-8"))
    run, rows = result["run"], result["rows"]
    answers = [
        Answer(**json.loads(line))
        for line in p.with_suffix(".jsonl").read_text(encoding="utf-8").splitlines()[1:]
        if line.strip().endswith("}")
    ]
    n_items = int(run["items"])
    used = [a for a in answers if a.item < n_items]
    n = max([len(a.probs) for a in used] + [max(a.gold, a.pred) + 1 for a in used] + [2])
    classes = list(run.get("labels") or ID_LETTERS[:n])
    recalls = {}
    for row in rows:
        mine = {a.item: a for a in used if a.calibration == row["calibration"]}
        if mine:
            pred = [a.pred for a in mine.values()]
            gold = [a.gold for a in mine.values()]
            recalls[row["calibration"]] = [float(x) * 100 for x in recall_per_class(pred, gold, n)]
    title = f"{run['dataset']}, model {run['model']}, {n_items} items, via {run['via']}"
    return EvalRun(title, classes, rows, recalls)


@dataclass(frozen=True)
class LearnedPrior:
    key: str
    method: str
    prior: list[float]
    seen: int  # questions or inputs that taught it

    @property
    def classes(self) -> list[str]:
        """Option IDs, or the label words when the key names them (``...|classify|a/b|...``)."""
        parts = self.key.split("|")
        if "classify" in parts and parts.index("classify") + 1 < len(parts):
            words = parts[parts.index("classify") + 1].split("/")
            if len(words) == len(self.prior):
                return words
        return list(ID_LETTERS[: len(self.prior)])


def _prior(method: str, state: dict[str, Any]) -> tuple[list[float], int] | None:
    if "n" in state and "method" in state:  # an MCQ planner
        planner = PermutationPlanner.from_dict(state)
        return [float(x) for x in planner.current_prior()], int(planner.started)
    kind = CALIBRATIONS["classify"].get(method)
    if kind is None:
        return None
    cal = kind.from_dict(state)
    p = np.exp(np.asarray(cal.log_prior, dtype=np.float64))
    return [float(x) for x in p / p.sum()], int(state.get("count", 0))


def read_store(url: str, limit: int = 12) -> list[LearnedPrior]:
    """The learned priors of the store's keys (the ``limit`` most trafficked), for methods that
    learn one (not ``none`` or ``cyclic``)."""
    store = open_store(url)
    try:
        out = []
        for key in store.keys():  # noqa: SIM118 (a Store, not a dict)
            for method, state in (store.load(key) or {}).items():
                if method in ("none", "cyclic", "full") or not isinstance(state, dict):
                    continue
                try:
                    found = _prior(method, state)
                except (KeyError, TypeError, ValueError):
                    continue  # a state this version cannot read: not drawn
                if found is not None and found[1] > 0:
                    out.append(LearnedPrior(key, method, *found))
    finally:
        store.close()
    return sorted(out, key=lambda p: -p.seen)[:limit]
