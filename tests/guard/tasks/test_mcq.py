"""guard/tasks/mcq.py: one store round trip per calibrated question, state shared across
processes without lost updates, and keys whose shape does not match refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest

from calibrators.planner import PermutationPlanner
from guard.config import Settings
from guard.endpoints import CHAT
from guard.pipeline import Pipeline
from guard.store import SQLiteStore
from guard.tasks.mcq import _one_at_a_time
from guard.tasks.traffic import traffic_of
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

T = TypeVar("T")
QUESTION = "Question: Which is 2 + 2?\nOptions:\nA. three\nB. four\nC. five\nD. six\nAnswer:"


class CountingStore(SQLiteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.trips: list[str] = []

    def load(self, key: str) -> Any:
        self.trips.append("load")
        return super().load(key)

    def update(self, key: str, fn: Callable[[Any], tuple[Any, T]]) -> T:
        self.trips.append("update")
        return super().update(key, fn)


@pytest.fixture
def upstream() -> Iterator[str]:
    with serve_in_thread(create_fake_upstream(FakeUpstreamState(SimulatedResponder()))) as up:
        yield f"{up}/v1"


def ask(pipelines: list[Pipeline], n: int, guard: dict[str, Any]) -> list[Any]:
    body = {"model": "m", "messages": [{"role": "user", "content": QUESTION}], "guard": guard}

    async def go() -> list[Any]:
        out = []
        for i in range(n):
            reply = await pipelines[i % len(pipelines)].handle(CHAT, dict(body), f"r{i}")
            assert reply.status == 200, reply.body
            out.append(reply)
        for p in pipelines:
            await p.aclose()
        return out

    return asyncio.run(go())


def test_a_pride_question_after_the_warmup_is_one_store_round_trip(
    upstream: str, tmp_path: Path
) -> None:
    store = CountingStore(tmp_path / "s.db")
    pipeline = Pipeline(Settings(upstream=upstream), store)
    ask([pipeline], 12, {"calibration": "pride"})
    # The first question loads the key once; then every question is one update, nothing else.
    assert store.trips == ["load"] + ["update"] * 12


def test_two_processes_on_one_key_lose_no_update(upstream: str, tmp_path: Path) -> None:
    """Two pipelines (two workers) on one SQLite file, questions alternating between them: the
    stored planner, the key's traffic and its history count every question and every call
    exactly once."""
    a = Pipeline(Settings(upstream=upstream), SQLiteStore(tmp_path / "s.db"))
    b = Pipeline(Settings(upstream=upstream), SQLiteStore(tmp_path / "s.db"))
    replies = ask([a, b], 30, {"calibration": "pride", "key": "shared"})
    store = SQLiteStore(tmp_path / "s.db")
    (key,) = store.keys()
    state = store.load(key)
    assert state is not None
    planner = PermutationPlanner.from_dict(state["pride"])
    history = [p.methods["pride"]["seen"] for p in store.history(key)]
    store.close()
    calls = sum(json.loads(r.body)["guard"]["upstream_calls"] for r in replies)
    assert (planner.started, planner.spent) == (30, calls)
    assert traffic_of(state) == {"pride": {"requests": 30, "calls": calls}}
    assert history == list(range(1, 31))
    assert planner.estimator.count == sum(
        json.loads(r.body)["guard"]["role"] in ("warmup", "refresh") for r in replies
    )


def test_a_key_reused_with_another_option_count_is_a_400_and_the_state_survives(
    upstream: str, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    pipeline = Pipeline(Settings(upstream=upstream), store)
    ask([pipeline], 2, {"calibration": "pride", "key": "k"})
    two = {"model": "m", "messages": [{"role": "user", "content": "Q?\nA. x\nB. y\nAnswer:"}]}

    async def go() -> Any:
        reply = await pipeline.handle(CHAT, {**two, "guard": {"key": "k"}}, "r")
        await pipeline.aclose()
        return reply

    reply = asyncio.run(go())
    assert reply.status == 400
    assert b"guard.key" in reply.body
    ask([Pipeline(Settings(upstream=upstream), store)], 1, {"calibration": "pride", "key": "k"})


def test_a_question_that_waited_its_patience_for_the_warm_up_goes_ahead() -> None:
    """The warm-up gate holds a key's questions one at a time; one that has waited
    ``job.patience`` goes ahead rather than run into the request deadline, and the gate still
    works for the others."""
    job: Any = SimpleNamespace(cache={}, patience=0.01)
    order: list[str] = []

    async def question(name: str, hold: asyncio.Event | None = None) -> None:
        async with _one_at_a_time(job, "k", "adaptive"):
            order.append(f"{name} in")
            if hold is not None:
                await hold.wait()
            order.append(f"{name} out")

    async def go() -> None:
        hold = asyncio.Event()
        first = asyncio.create_task(question("first", hold))
        await asyncio.sleep(0)  # the first holds the gate
        await question("impatient")  # gives up waiting, goes ahead while the first holds it
        hold.set()
        await first
        job.patience = None  # wait as long as it takes
        release = asyncio.Event()
        a = asyncio.create_task(question("a", release))
        b = asyncio.create_task(question("b"))
        for _ in range(20):
            await asyncio.sleep(0)
        assert order[-1] == "a in"  # b waits while a holds the gate
        release.set()
        await asyncio.gather(a, b)

    asyncio.run(go())
    assert order == [
        "first in", "impatient in", "impatient out", "first out", "a in", "a out", "b in", "b out"
    ]  # fmt: skip
