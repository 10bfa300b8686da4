"""A judge candidate that the text after the responses also holds: two models' letter answers
compared ('C' and 'A') under the instruction 'Answer A or B.'. Since 2159d84 each candidate is
taken at its LAST place, so 'A' is taken inside 'Answer A or B.' and the swapped order asks the
upstream 'Response A: A / Response B: A / Answer C or B.' (before, the first place after the
previous candidate: right here, wrong for a candidate the question mentions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.task_upstream import FACES, JUDGE, ask, judge_answer


@pytest.mark.parametrize("face", sorted(FACES))
def test_a_candidate_that_the_instruction_after_the_responses_holds_is_swapped_where_shown(
    face: str, tmp_path: Path
) -> None:
    with FACES[face](judge_answer, tmp_path) as (client, seen):
        ask(
            client,
            JUDGE.format("C", "A"),
            {"task": "judge", "candidates": ["C", "A"], "calibration": "swap"},
        )
    asked = {b["messages"][-1]["content"] for b in seen}
    assert asked == {JUDGE.format("C", "A"), JUDGE.format("A", "C")}


@pytest.mark.parametrize(
    ("text", "candidates", "shown"),
    [
        ("Is 4 the answer to 2+2?\nResponse A: 4\nResponse B: 5\nAnswer A or B.", ["4", "5"],
         ["Response A: 4", "Response B: 5"]),
        (JUDGE.format("C", "A"), ["C", "A"], ["Response A: C", "Response B: A"]),
        (JUDGE.format("A", "B"), ["A", "B"], ["Response A: A", "Response B: B"]),
        ("Rate: 1) cat 2) a cat\nFirst: cat\nSecond: a cat\nPick First or Second.",
         ["cat", "a cat"], ["First: cat", "Second: a cat"]),
    ],
)  # fmt: skip
def test_each_candidate_is_found_where_it_is_shown(
    text: str, candidates: list[str], shown: list[str]
) -> None:
    from guard.tasks.candidate_spans import candidate_spans

    spans = candidate_spans(text, candidates)
    assert spans is not None
    for (start, end), line in zip(spans, shown, strict=True):
        assert text[start:end] in line
        assert text.rfind("\n", 0, start) + 1 == text.index(line)  # on that line
