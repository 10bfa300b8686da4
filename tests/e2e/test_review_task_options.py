"""Malformed guard options of the classification and judge tasks: each a clean 400 naming the
field, through the proxy (the openai client's BadRequestError) and the wrapper (the same)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.task_upstream import FACES, JUDGE, REVIEW, ask, judge_answer


@pytest.mark.parametrize("face", sorted(FACES))
@pytest.mark.parametrize(
    "labels",
    [
        ["Positive", "positive"],  # one word in two cases: the same surface forms
        ["yes", " yes"],  # one word, once with a space
        ["yes", "no", "YES"],
        ["yes", "  "],  # blank
        [f"label{i}" for i in range(101)],  # 100 at most (100,000 were a 200 after 2.6 s)
        ["yes", "n" * 201],  # 200 characters at most
    ],
    ids=["cases", "space", "three", "blank", "101-labels", "long-label"],
)
def test_labels_that_are_one_word_or_blank_are_a_400(
    face: str, labels: list[str], tmp_path: Path
) -> None:
    """Before: a 500 "internal error (ValueError)" (label_scores or surface_forms refused them
    after the upstream was asked), a raw ValueError from the wrapper."""
    with (
        FACES[face](judge_answer, tmp_path) as (client, seen),
        pytest.raises(openai.BadRequestError, match=r"guard\.labels") as err,
    ):
        ask(client, REVIEW, {"task": "classify", "labels": labels, "calibration": "none"})
    assert err.value.status_code == 400
    assert seen == []  # refused before anything was asked


@pytest.mark.parametrize("face", sorted(FACES))
@pytest.mark.parametrize("labels", [["A", " A"], ["A", "A)"], ["", "B"], ["A", " "]])
def test_judge_labels_that_read_as_one_another_are_a_400(
    face: str, labels: list[str], tmp_path: Path
) -> None:
    """Verdict IDs whose token forms overlap (" A" is a form of "A", "A)" too) were a 500 after
    both orders were asked; a blank one answered "tie" from nothing."""
    options: dict[str, Any] = {"task": "judge", "candidates": ["first", "second"], "labels": labels}
    with (
        FACES[face](judge_answer, tmp_path) as (client, seen),
        pytest.raises(openai.BadRequestError, match=r"guard\.labels") as err,
    ):
        ask(client, JUDGE.format("first", "second"), options)
    assert err.value.status_code == 400
    assert seen == []


@pytest.mark.parametrize("face", sorted(FACES))
@pytest.mark.parametrize("calibration", ["contextual", "domain", "batch"])
def test_a_key_reused_with_another_label_count_is_a_400(
    face: str, calibration: str, tmp_path: Path
) -> None:
    """batch and prior-match said so; contextual and domain divided a 2-label prior out of 3
    label scores: a 500 "internal error (ValueError)"."""
    base = {"task": "classify", "calibration": calibration, "input": "ok", "key": "mine"}
    with FACES[face](judge_answer, tmp_path) as (client, _):
        ask(client, REVIEW, {**base, "labels": ["yes", "no"]})
        with pytest.raises(openai.BadRequestError, match=r"guard\.key|holds 2 labels") as err:
            ask(client, REVIEW, {**base, "labels": ["yes", "no", "maybe"]})
    assert err.value.status_code == 400


@pytest.mark.parametrize("face", sorted(FACES))
def test_a_domain_input_with_no_words_is_a_400(face: str, tmp_path: Path) -> None:
    """guard.input " " is in the prompt, so it passed the check; domain calibration then drew
    probes from a pool of no words: a 500 "internal error (ValueError)"."""
    options = {"task": "classify", "labels": ["yes", "no"], "calibration": "domain", "input": " "}
    with (
        FACES[face](judge_answer, tmp_path) as (client, _),
        pytest.raises(openai.BadRequestError, match=r"guard\.input") as err,
    ):
        ask(client, "Review: \nSentiment:", options)
    assert err.value.status_code == 400
