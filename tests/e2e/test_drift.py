"""A model swapped behind the proxy's key, end to end: real uvicorn on 127.0.0.1, the real
``openai`` client, a real SQLite file, and the fake upstream's simulated model changing its
position bias halfway (calibrators.drift)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from calibrators.planner import PermutationPlanner
from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.store.sqlite import SQLiteStore
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread
from guard.testing.simulated import SimulatedMcqModel

FIRST = (0.55, 0.15, 0.15, 0.15)  # the model answers A too often
SECOND = (0.15, 0.15, 0.15, 0.55)  # the model behind the same name now answers D too often


def question(i: int) -> str:
    return (
        f"Question: Which number comes after {i}?\nOptions:\nA. {i + 1}\nB. {i + 2}\n"
        f"C. {i - 1}\nD. {i + 3}\nAnswer:"
    )


def _model(prior: tuple[float, ...]) -> SimulatedResponder:
    return SimulatedResponder(SimulatedMcqModel(prior=prior, strength=1.5, seed=5))


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[FakeUpstreamState, openai.OpenAI, Path]]:
    state = FakeUpstreamState(_model(FIRST))
    db = tmp_path / "calguard.db"
    with serve_in_thread(create_fake_upstream(state)) as up:
        settings = Settings(
            upstream=f"{up}/v1",
            store=f"sqlite:///{db}",
            routes={
                "watched": RouteConfig(upstream_model="sim-biased-llm", mcq="adaptive"),
                # another upstream model: a key of its own
                "blind": RouteConfig(upstream_model="other-llm", mcq="adaptive", drift_check=False),
            },
        )
        with (
            serve_in_thread(create_app(settings)) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="test", max_retries=0) as client,
        ):
            yield state, client, db


def _planners(db: Path) -> list[PermutationPlanner]:
    store = SQLiteStore(db)
    try:
        keys = store.keys()
        states: list[dict[str, Any]] = [store.load(k) or {} for k in keys]
    finally:
        store.close()
    return [PermutationPlanner.from_dict(s["adaptive"]) for s in states if "adaptive" in s]


def _ask(client: openai.OpenAI, model: str, i: int) -> None:
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question(i)}],
        extra_body={"guard": {"task": "mcq"}},
    )
    assert r.choices[0].message.content in ("A", "B", "C", "D")


def test_a_key_whose_model_changes_behind_it_learns_afresh(
    proxy: tuple[FakeUpstreamState, openai.OpenAI, Path],
) -> None:
    state, client, db = proxy
    for i in range(400):
        _ask(client, "watched", i)
    (before,) = _planners(db)
    assert before.relearned == 0  # 400 questions of one model: nothing changed
    assert before.current_prior()[0] > 0.4  # it learned to divide A's excess out

    state.responder = _model(SECOND)
    for i in range(400, 650):
        _ask(client, "watched", i)
    (after,) = _planners(db)
    assert after.relearned == 1
    prior = after.current_prior()
    assert prior[3] > prior[0]  # what it divides out now is D's excess, not A's


def test_a_route_can_leave_the_drift_check_off(
    proxy: tuple[FakeUpstreamState, openai.OpenAI, Path],
) -> None:
    _, client, db = proxy
    for model in ("watched", "blind"):
        _ask(client, model, 0)
    checks = sorted(p.drift_check for p in _planners(db))
    assert checks == [False, True]
