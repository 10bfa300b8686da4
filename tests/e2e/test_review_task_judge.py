"""The judge task's position swap as a client sees it, through the proxy and the wrapper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.task_upstream import FACES, JUDGE, Answer, ask, evidence, judge_answer


def fails_when_swapped(body: dict[str, Any]) -> Answer:
    """A judge whose second order (the swap) the upstream refuses, as a 400 (not retried)."""
    if "Response A: second" in body["messages"][-1]["content"]:
        error = {"message": "this prompt was refused", "type": "invalid_request_error"}
        return 400, {"error": error}
    return judge_answer(body)


@pytest.mark.parametrize("face", sorted(FACES))
def test_a_swap_with_an_order_unanswered_does_not_claim_consistency(
    face: str, tmp_path: Path
) -> None:
    """The swapped order failed, and the reply was the unswapped (position-biased) verdict with
    consistent: true and no flag: uncalibrated, and saying it had been checked."""
    with FACES[face](fails_when_swapped, tmp_path) as (client, seen):
        r = ask(
            client,
            JUDGE.format("first", "second"),
            {"task": "judge", "candidates": ["first", "second"], "calibration": "swap"},
        )
    assert len(seen) == 2  # both orders were asked
    g = evidence(r)
    assert g["consistent"] is not True
    assert [f["policy"] for f in g["flags"]] == ["order_consistency"]
    assert "1 of 2" in g["flags"][0]["reason"]


@pytest.mark.parametrize("face", sorted(FACES))
def test_a_candidate_that_also_appears_in_the_question_is_swapped_where_it_is_shown(
    face: str, tmp_path: Path
) -> None:
    text = "Is 4 the answer to 2+2?\nResponse A: 4\nResponse B: 5\nAnswer A or B."
    with FACES[face](judge_answer, tmp_path) as (client, seen):
        ask(client, text, {"task": "judge", "candidates": ["4", "5"], "calibration": "swap"})
    asked = [b["messages"][-1]["content"] for b in seen]
    swapped = "Is 4 the answer to 2+2?\nResponse A: 5\nResponse B: 4\nAnswer A or B."
    assert sorted(asked) == sorted([text, swapped])  # the two orders go at once
