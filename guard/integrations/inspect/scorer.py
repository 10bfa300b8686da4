"""``choice_with_bias()``: inspect's ``choice()`` scorer, plus the bias metrics beside accuracy.

Each score keeps, in its metadata, the gold and the predicted position in the sample's original
order and the model calls the sample cost (from ``debiased_choice``'s evidence, else the
model events of the sample's transcript, cache reads left out). Two metrics read them:

- :func:`rstd`: PriDe's RStd, the population standard deviation of the recall per gold
  position, in percent (:func:`calibrators.metrics.rstd`, as ``calguard eval-offline``
  reports it): 0 when the model is as right on questions whose answer is A as on those whose
  answer is D; a model that favours some letters has a large one. Samples with several
  correct answers are left out.
- :func:`calls_per_sample`: mean model calls per sample.

It works with any solver that follows ``choice()``'s conventions (``multiple_choice()``,
``debiased_choice()``). With several epochs, inspect's reducers keep the first epoch's
metadata, so the two metrics read the first epoch's answers.
"""

from __future__ import annotations

import math
from typing import Any

from inspect_ai.event import ModelEvent
from inspect_ai.log import transcript
from inspect_ai.scorer import (
    Metric,
    SampleScore,
    Score,
    Scorer,
    Target,
    accuracy,
    choice,
    metric,
    scorer,
    stderr,
)
from inspect_ai.solver import TaskState

from calibrators import metrics
from guard.integrations.inspect.solver import EVIDENCE


def _index(char: str) -> int:
    # inspect's own convention (``answer_index``): A.. are 0..25, then "1", "2", ... for 26..
    if len(char) == 1 and char.isalpha():
        return ord(char.upper()) - ord("A")
    return 25 + int(char)


def gold_positions(target: Target) -> list[int]:
    """The correct positions a target names, read as ``choice()`` reads them."""
    out = []
    for value in target:
        for token in value.replace(",", " ").split():
            out += [_index(token)] if token.isnumeric() else [_index(c) for c in token]
    return sorted(out)


def _calls(state: TaskState) -> int | None:
    evidence = state.metadata.get(EVIDENCE)
    if isinstance(evidence, dict) and isinstance(evidence.get("calls"), int):
        return int(evidence["calls"])
    events = [e for e in transcript().events if isinstance(e, ModelEvent)]
    return len([e for e in events if e.cache != "read"]) if events else None


@metric
def rstd() -> Metric:
    """RStd: standard deviation of the recall per gold position, in percent."""

    def compute(scores: list[SampleScore]) -> float:
        rows = [
            (m["pred"], m["gold"], m["n"])
            for s in scores
            if (m := s.score.metadata or {}).get("gold") is not None
        ]
        if not rows:
            return math.nan
        n = max(r[2] for r in rows)
        return metrics.rstd([r[0] for r in rows], [r[1] for r in rows], n)

    return compute


@metric
def calls_per_sample() -> Metric:
    """Mean model calls per sample."""

    def compute(scores: list[SampleScore]) -> float:
        calls = [
            m["calls"] for s in scores if (m := s.score.metadata or {}).get("calls") is not None
        ]
        return sum(calls) / len(calls) if calls else math.nan

    return compute


@scorer(metrics=[accuracy(), stderr(), rstd(), calls_per_sample()])
def choice_with_bias() -> Scorer:
    """inspect's ``choice()`` scorer, with RStd and calls per sample beside accuracy."""
    base = choice()

    async def score(state: TaskState, target: Target) -> Score:
        result = await base(state, target)
        assert isinstance(result, Score)
        shown = sorted(state.choices, key=lambda c: c.original_position)
        picked = [i for i, c in enumerate(shown) if c.correct is True]
        gold = gold_positions(target)
        extra: dict[str, Any] = {
            "gold": gold[0] if len(gold) == 1 else None,  # RStd is for single answers
            "pred": picked[0] if len(picked) == 1 else -1,
            "n": len(shown),
            "calls": _calls(state),
        }
        result.metadata = {**(result.metadata or {}), **extra}
        return result

    return score
