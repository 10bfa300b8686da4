"""The replay upstream (:mod:`guard.testing.replay`): recorded label words as top_logprobs,
recorded ID distributions for any cyclic order, and the files it refuses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from guard.evaluation.recorded import ClassifyRecords, McqRecords, load_recorded
from guard.evaluation.replay import arc_prompt
from guard.testing.replay import LabelReplay, create_replay_upstream, replay_state

ARC = "arc_0s_Llama-2-13b-chat-hf.jsonl"
SST2 = "sst2_train_labelprobs.jsonl"


def test_label_words_come_back_with_their_recorded_probabilities(
    recorded: Callable[[str], Path],
) -> None:
    rec = load_recorded(recorded(SST2))
    assert isinstance(rec, ClassifyRecords)
    found = LabelReplay(rec)(f"Review: {rec.texts[7]}\nSentiment:")
    assert found == pytest.approx(
        {" Negative": np.exp(rec.logprobs[7][0]), " Positive": np.exp(rec.logprobs[7][1])}
    )
    assert LabelReplay(rec)("Review: not a recorded sentence\nSentiment:") is None


def test_any_cyclic_order_is_answered_with_its_row(recorded: Callable[[str], Path]) -> None:
    rec = load_recorded(recorded(ARC))
    assert isinstance(rec, McqRecords)
    assert rec.questions
    app = create_replay_upstream([recorded(ARC)])
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for k in range(4):
            shown = [rec.options[3][(j + k) % 4] for j in range(4)]
            body = {
                "model": "replay",
                "messages": [{"role": "user", "content": arc_prompt(rec.questions[3], shown)}],
                "logprobs": True,
                "top_logprobs": 4,
            }
            r = (client.post("/v1/chat/completions", json=body)).json()
            top = r["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            got = {t["token"]: np.exp(t["logprob"]) for t in top}
            want = dict(zip("ABCD", rec.probs_cyclic[3][k], strict=True))
            assert got == pytest.approx(want, rel=1e-6)


def test_files_it_refuses(recorded: Callable[[str], Path]) -> None:
    with pytest.raises(ValueError, match="one MCQ recording per replay upstream"):
        replay_state([recorded(ARC), recorded("arc_0s_llama-65b.jsonl")])
    with pytest.raises(ValueError, match="at least one recorded file"):
        replay_state([])
