"""guard/tasks/traffic.py: each key's requests and upstream calls, counted in its state by the
tasks that write one (here the classification ones; the MCQ path in test_mcq.py), and nothing
for a method that keeps no state."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guard.calibrations import STATE_ENTRIES, register_calibration
from guard.config import Settings
from guard.endpoints import CHAT
from guard.pipeline import Pipeline
from guard.store import SQLiteStore
from guard.tasks.traffic import TRAFFIC, counted, traffic_of
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread


def lean_positive(text: str) -> dict[str, float] | None:
    good = text.count("good") - text.count("bad")
    p = 0.7 + 0.1 * good
    return {" Positive": p, " Negative": 1.0 - p}


@pytest.fixture
def upstream() -> Iterator[str]:
    fake = FakeUpstreamState(SimulatedResponder(), text_responder=lean_positive)
    with serve_in_thread(create_fake_upstream(fake)) as up:
        yield f"{up}/v1"


def classify(pipeline: Pipeline, reviews: list[str], calibration: str) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        out = []
        for i, review in enumerate(reviews):
            guard = {"task": "classify", "labels": ["negative", "positive"], "input": review,
                     "calibration": calibration, "key": calibration}  # fmt: skip
            text = f"Review: {review}\nSentiment:"
            body = {"model": "m", "guard": guard, "messages": [{"role": "user", "content": text}]}
            reply = await pipeline.handle(CHAT, body, f"r{i}")
            assert reply.status == 200, reply.body
            out.append(json.loads(reply.body)["guard"])
        await pipeline.aclose()
        return out

    return asyncio.run(go())


@pytest.mark.parametrize("calibration", ["batch", "prior-match", "contextual", "domain"])
def test_each_input_and_its_calls_are_counted_once(
    upstream: str, tmp_path: Path, calibration: str
) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    pipeline = Pipeline(Settings(upstream=upstream), store)
    reviews = ["a good film", "a bad film", "a film", "good", "bad", "fine"]
    guards = classify(pipeline, reviews, calibration)
    (key,) = store.keys()
    state = store.load(key)
    assert state is not None
    calls = sum(g["upstream_calls"] for g in guards)
    assert calls > len(reviews) or calibration in ("batch", "prior-match")  # probes counted
    assert traffic_of(state) == {calibration: {"requests": len(reviews), "calls": calls}}
    assert [p.methods[calibration]["seen"] for p in store.history(key)] == list(range(1, 7))


def test_none_keeps_no_state_so_nothing_is_counted(upstream: str, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    pipeline = Pipeline(Settings(upstream=upstream), store)
    classify(pipeline, ["a good film"], "none")
    assert store.keys() == []


def test_counted_adds_to_one_method_and_keeps_the_rest() -> None:
    state = counted({"pride": {"n": 4}}, "pride", 4)
    state = counted(state, "pride", 1)
    state = counted(state, "adaptive", 2)
    assert state["pride"] == {"n": 4}
    assert traffic_of(state) == {
        "pride": {"requests": 2, "calls": 5},
        "adaptive": {"requests": 1, "calls": 2},
    }
    assert traffic_of({}) == {}


def test_no_calibration_may_be_named_after_a_state_entry() -> None:
    assert TRAFFIC in STATE_ENTRIES
    with pytest.raises(ValueError, match="entry of the stored state"):
        register_calibration("classify", TRAFFIC, object)
