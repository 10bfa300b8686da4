"""Classification and judge answers read from sampled text (an upstream that gives no logprobs,
as llama.cpp without logits_all), through the proxy and the wrapper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.task_upstream import FACES, JUDGE, REVIEW, ask, chat, evidence


def no_logprobs(text: str) -> Any:
    """An upstream that answers every call with ``text`` and never any logprobs."""

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        done = chat(text)
        done["choices"] = [{**done["choices"][0], "index": i} for i in range(body.get("n") or 1)]
        return done

    return respond


@pytest.mark.parametrize("face", sorted(FACES))
def test_a_sampled_answer_with_a_lower_case_letter_is_not_a_500(face: str, tmp_path: Path) -> None:
    """ "The answer is a toss-up" read "a" as an ID case-insensitively, then looked it up
    case-sensitively among A and B: a ValueError, a 500 (the wrapper: a raw ValueError)."""
    with FACES[face](no_logprobs("The answer is a toss-up, but I lean to B."), tmp_path) as (
        client,
        _,
    ):
        r = ask(
            client,
            JUDGE.format("first", "second"),
            {"task": "judge", "candidates": ["first", "second"], "calibration": "none"},
        )
    assert evidence(r)["answer"] in ("A", "B", "tie")
    assert r.choices[0].message.content != "A"  # "a toss-up" names no candidate


@pytest.mark.parametrize("face", sorted(FACES))
@pytest.mark.parametrize(
    ("said", "labels"),
    [
        (" Positive", ["negative", "positive"]),  # the model's own capitalisation
        ("positive", ["Negative", "Positive"]),
        ("Answer: positive", ["Negative", "Positive"]),
        ("POSITIVE.", ["negative", "positive"]),
    ],
)
def test_sampled_label_words_are_read_in_any_case(
    face: str, said: str, labels: list[str], tmp_path: Path
) -> None:
    """With logprobs a label counts in any case (its surface forms); sampled, it counted only as
    written in guard.labels: every sample unread, a uniform distribution, and labels[0] as the
    answer, with nothing in the evidence to say so."""
    with FACES[face](no_logprobs(said), tmp_path) as (client, _):
        r = ask(client, REVIEW, {"task": "classify", "labels": labels, "calibration": "none"})
    g = evidence(r)
    assert r.choices[0].message.content == labels[1]
    assert g["raw_probs"][1] > 0.9


@pytest.mark.parametrize("face", sorted(FACES))
def test_classify_and_judge_say_when_their_answer_is_from_samples(
    face: str, tmp_path: Path
) -> None:
    """mcq's evidence says answers_from: samples; classify's and judge's said nothing, so a
    client could not tell 8 parsed samples (9 upstream calls) from a read of logprobs."""
    with FACES[face](no_logprobs("B"), tmp_path) as (client, _):
        c = ask(client, REVIEW, {"task": "classify", "labels": ["A", "B"], "calibration": "none"})
        j = ask(
            client,
            JUDGE.format("first", "second"),
            {"task": "judge", "candidates": ["first", "second"], "calibration": "none"},
        )
    assert evidence(c).get("answers_from") == "samples"
    assert evidence(j).get("answers_from") == "samples"


@pytest.mark.parametrize("face", sorted(FACES))
def test_an_upstream_that_gives_no_choices_is_not_an_answer(face: str, tmp_path: Path) -> None:
    def empty(body: dict[str, Any]) -> dict[str, Any]:
        return {**chat(None), "choices": []}

    with FACES[face](empty, tmp_path) as (client, _), pytest.raises(openai.APIStatusError) as info:
        ask(client, REVIEW, {"task": "classify", "labels": ["yes", "no"], "calibration": "none"})
    assert info.value.status_code == 502
    assert info.value.code == "upstream_unreadable"
