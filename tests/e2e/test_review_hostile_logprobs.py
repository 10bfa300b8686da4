"""An upstream whose answer has the wrong shape where calguard reads it (choices, top_logprobs
not lists; a logprob too large for a float) is read without the malformed part (as a NaN
logprob is) or is a 502, never a 500 'internal error (TypeError)' or a bare TypeError: through
the proxy and the wrapper, for every task that reads a distribution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

from tests.e2e.task_upstream import FACES, JUDGE, REVIEW, ask, chat

HUGE = -(10**400)  # valid JSON; float() of it overflows


def _top(top: Any) -> dict[str, Any]:
    done = chat("B")
    pos = {"token": "B", "logprob": -0.1, "top_logprobs": top}
    done["choices"][0]["logprobs"] = {"content": [pos]}
    return done


ANSWERS = {
    "choices-an-int": {**chat("B"), "choices": 5},
    "top-logprobs-an-int": _top(5),
    "a-logprob-too-large": _top([{"token": "B", "logprob": HUGE}, {"token": "A", "logprob": -1}]),
    "legacy-logprob-too-large": {
        **chat("B"),
        "choices": [
            {"index": 0, "message": {"content": "B"}, "logprobs": {"top_logprobs": [{"B": HUGE}]}}
        ],
    },
}
TASKS = {
    "mcq": ("Sky?\nA. green\nB. blue\nC. red\nAnswer:", {"task": "mcq", "calibration": "cyclic"}),
    "classify": (REVIEW, {"task": "classify", "labels": ["yes", "no"]}),
    "judge": (
        JUDGE.format("first", "second"),
        {"task": "judge", "candidates": ["first", "second"]},
    ),
}


@pytest.mark.parametrize("task", sorted(TASKS))
@pytest.mark.parametrize("answer", sorted(ANSWERS))
@pytest.mark.parametrize("face", sorted(FACES))
def test_a_malformed_upstream_answer_is_not_a_500(
    face: str, answer: str, task: str, tmp_path: Path
) -> None:
    """Before: the proxy answered 500 'internal error (TypeError)' / (OverflowError), the
    wrapper raised the bare TypeError; a calibrated mcq was a 502 until bc84334 re-raised any
    exception of the last order as it is."""
    content, options = TASKS[task]
    with FACES[face](lambda _body: ANSWERS[answer], tmp_path) as (client, _):
        if answer == "choices-an-int":  # no choice to read: nothing to calibrate
            with pytest.raises(openai.APIStatusError) as info:
                ask(client, content, options)
            assert info.value.status_code == 502
            return
        r = ask(client, content, options)  # the malformed part skipped, the rest read
    assert r.choices[0].message.content
