"""choice_with_bias and its metrics: what each score keeps, RStd as calguard computes it, calls
per sample."""

from __future__ import annotations

import asyncio
import math
from random import Random
from typing import Any

import pytest
from inspect_ai.model import ChatMessageUser, ModelName
from inspect_ai.scorer import CORRECT, INCORRECT, SampleScore, Score, Target
from inspect_ai.solver import TaskState

from calibrators.metrics import rstd as calguard_rstd
from guard.integrations.inspect import EVIDENCE, calls_per_sample, choice_with_bias, rstd
from guard.integrations.inspect.scorer import gold_positions


@pytest.mark.parametrize(
    ("target", "positions"),
    [("B", [1]), (["C", "A"], [0, 2]), ("A, D", [0, 3]), ("AC", [0, 2]), ("1", [26])],
)
def test_gold_positions_are_read_as_choice_reads_them(target: Any, positions: list[int]) -> None:
    assert gold_positions(Target(target)) == positions


def state(
    picked: int, metadata: dict[str, Any] | None = None, shuffle: int | None = None
) -> TaskState:
    s = TaskState(
        ModelName("mockllm/model"), 1, 1, "q", [ChatMessageUser(content="q")],
        choices=["a", "b", "c", "d"], metadata=metadata,
    )  # fmt: skip
    if shuffle is not None:
        s.choices.shuffle(Random(shuffle))
    for i in range(4):
        s.choices.mark_choice(i, i == picked)
    return s


def score(s: TaskState, target: str) -> Score:
    result = asyncio.run(choice_with_bias()(s, Target(target)))
    assert isinstance(result, Score)
    return result


def test_a_score_keeps_gold_pred_and_the_calls_of_the_evidence() -> None:
    got = score(state(2, {EVIDENCE: {"calls": 3}}), "C")
    assert got.value == CORRECT
    assert got.metadata == {"gold": 2, "pred": 2, "n": 4, "calls": 3}
    wrong = score(state(0, {EVIDENCE: {"calls": 1}}), "C")
    assert wrong.value == INCORRECT
    assert wrong.metadata is not None
    assert wrong.metadata["pred"] == 0


def test_shuffled_choices_are_scored_in_the_samples_own_order() -> None:
    s = state(0, {EVIDENCE: {"calls": 1}}, shuffle=3)
    original = s.choices[0].original_position  # what the marked (shown first) choice was
    got = score(s, "ABCD"[original])
    assert got.value == CORRECT
    assert got.metadata is not None
    assert got.metadata["pred"] == got.metadata["gold"] == original


def test_several_correct_answers_are_left_out_of_rstd() -> None:
    got = score(state(1, {EVIDENCE: {"calls": 1}}), "B, D")
    assert got.metadata is not None
    assert got.metadata["gold"] is None


def sample_score(pred: int, gold: int | None, calls: int | None = 1, n: int = 4) -> SampleScore:
    meta = {"pred": pred, "gold": gold, "n": n, "calls": calls}
    return SampleScore(score=Score(value=CORRECT if pred == gold else INCORRECT, metadata=meta))


def test_rstd_is_calguards_rstd_over_the_single_answer_samples() -> None:
    pairs = [(0, 0), (1, 0), (1, 1), (1, 1), (2, 2), (1, 2), (3, 3), (-1, 3)]
    scores = [sample_score(p, g) for p, g in pairs] + [sample_score(1, None)]
    want = calguard_rstd([p for p, _ in pairs], [g for _, g in pairs], 4)
    assert want > 0
    assert rstd()(scores) == pytest.approx(want)
    assert math.isnan(rstd()([sample_score(1, None)]))


def test_calls_per_sample_is_the_mean_over_the_samples_that_know() -> None:
    scores = [sample_score(0, 0, 1), sample_score(0, 0, 4), sample_score(0, 0, None)]
    assert calls_per_sample()(scores) == pytest.approx(2.5)
    assert math.isnan(calls_per_sample()([sample_score(0, 0, None)]))
