"""What ``calguard report`` draws from a ``calguard eval`` run (its ``results.json`` and the
``.jsonl`` log beside it): recall per gold position (or label) for each calibration, the bias
picture; accuracy against upstream calls per item, the cost picture. What it reads from a store
is in :mod:`guard.evaluation.report_store`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calibrators.metrics import recall_per_class
from guard.evaluation.live_log import Answer
from guard.evaluation.recorded import ID_LETTERS


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
