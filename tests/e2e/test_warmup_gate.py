"""The warm-up gate and the in-flight reservations under attack (defects a review found, each
failing before its fix): the real server (or the in-process client) against the fake upstream,
wrapped to be slow and to count the calls in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import guard
from guard.config import Settings
from guard.server import create_app
from guard.store import open_store
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread


class SlowUpstream:
    """The fake upstream; every chat call takes ``delay`` seconds; ``peak``: most calls in
    flight at once."""

    def __init__(self, delay: float) -> None:
        self.app = create_fake_upstream(FakeUpstreamState(SimulatedResponder()))
        self.delay = delay
        self.now = 0
        self.peak = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            return await self.app(scope, receive, send)
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(self.delay)
            await self.app(scope, receive, send)
        finally:
            self.now -= 1


def question(i: int, n: int = 4) -> str:
    options = "\n".join(f"{'ABCDE'[k]}. option {k} of question {i}" for k in range(n))
    return f"Question {i}: which one?\n{options}\nAnswer:"


async def burst(
    url: str, prompts: list[str], guard_opts: dict[str, Any], timeout: float = 30
) -> list[dict[str, Any]]:
    """Every prompt at once through the proxy: each one's guard evidence, or its status."""
    async with openai.AsyncOpenAI(
        base_url=url, api_key="x", max_retries=0, timeout=timeout
    ) as client:

        async def ask(prompt: str) -> dict[str, Any]:
            try:
                r = await client.chat.completions.create(
                    model="m",
                    messages=[{"role": "user", "content": prompt}],
                    extra_body={"guard": guard_opts},
                )
            except openai.APIStatusError as exc:
                return {"status": exc.status_code}
            return {"status": 200, **(r.model_extra or {})["guard"]}

        return await asyncio.gather(*(ask(p) for p in prompts))


@pytest.fixture
def slow() -> Iterator[tuple[SlowUpstream, str]]:
    up = SlowUpstream(0.3)
    with serve_in_thread(up) as url:
        yield up, f"{url}/v1"


def stored(db: Path, key: str, method: str) -> dict[str, Any]:
    store = open_store(f"sqlite:///{db}")
    try:
        return dict((store.load(key) or {})[method])
    finally:
        store.close()


def test_questions_queued_at_the_gate_go_concurrently_once_the_warm_up_has_ended(
    slow: tuple[SlowUpstream, str], tmp_path: Path
) -> None:
    """A burst of a PriDe key's first 24 questions: the 4 warm-up questions go one at a time,
    the 20 after them need nothing from each other (``warming()`` is false) and go together.
    Before, a question that queued at the gate while the key was warming kept the gate for its
    whole run (``warming()`` was not asked again once it held the gate), so all 24 went one at
    a time: 4 calls in flight at most (a warm-up's orders)."""
    up, url = slow
    settings = Settings(upstream=url, store=f"sqlite:///{tmp_path / 'c.db'}")
    with serve_in_thread(create_app(settings)) as px:
        started = time.monotonic()
        evidence = asyncio.run(
            burst(f"{px}/v1", [question(i) for i in range(24)], {"calibration": "pride"})
        )
        took = time.monotonic() - started
    roles = [g["role"] for g in evidence]
    assert roles.count("warmup") == 4
    assert roles.count("single") == 20
    assert up.peak > 4, f"at most {up.peak} calls in flight; the burst took {took:.1f} s"


def test_a_client_key_reused_with_another_option_count_in_a_burst_is_a_400_never_a_500(
    slow: tuple[SlowUpstream, str], tmp_path: Path
) -> None:
    """Questions of 4 and of 5 options at once on one new ``guard.key`` (method ``cyclic``,
    no warm-up, so no gate): one option count makes the key, the other is refused with a 400.
    Before, some were 500s: both shapes got into the questions in flight (``_snapshot`` cached
    whatever planner it loaded, even when a concurrent request had cached one of the other
    shape meanwhile), and reserving one of another shape raised after the question had been
    written to the store."""
    _, url = slow
    settings = Settings(upstream=url, store=f"sqlite:///{tmp_path / 'c.db'}")
    prompts = [question(i, 4 if i % 2 else 5) for i in range(16)]
    with serve_in_thread(create_app(settings)) as px:
        evidence = asyncio.run(burst(f"{px}/v1", prompts, {"calibration": "cyclic", "key": "k"}))
    statuses = sorted(g["status"] for g in evidence)
    assert set(statuses) <= {200, 400}, statuses


def test_a_slow_question_at_the_gate_does_not_time_out_those_behind_it(
    tmp_path: Path,
) -> None:
    """Questions that take 3 s each (one upstream latency) and a request deadline of 5 s: sent
    together with ``cyclic`` (no gate) all 6 are answered. With ``pride`` the 5 behind the
    first wait at the gate for a quarter of the deadline (1.25 s), go ahead and are answered
    too. Before, they waited half of it (2.5 s) and timed out (504) needing 3 s more."""
    up = SlowUpstream(3.0)
    with serve_in_thread(up) as url:
        settings = Settings(
            upstream=f"{url}/v1", store=f"sqlite:///{tmp_path / 'c.db'}", deadline_s=5.0
        )
        with serve_in_thread(create_app(settings)) as px:
            plain = asyncio.run(
                burst(f"{px}/v1", [question(i) for i in range(6)], {"calibration": "cyclic"})
            )
            gated = asyncio.run(
                burst(f"{px}/v1", [question(i) for i in range(6)], {"calibration": "pride"})
            )
    assert [g["status"] for g in plain] == [200] * 6
    assert [g["status"] for g in gated] == [200] * 6


def test_with_options_copies_of_a_wrapped_client_share_the_warm_up(tmp_path: Path) -> None:
    """``client.with_options(timeout=...)`` per request (as the SDK's docs show) on a wrapped
    AsyncOpenAI share the parent's pipeline state: a burst of 16 warms up with 4 PriDe
    questions, as one at a time. Before, every copy had its own pipeline (its own cache,
    snapshot, gate, store connection and portal thread): 16 of 16 were warm-ups."""
    db = tmp_path / "c.db"
    up = SlowUpstream(0.05)
    with serve_in_thread(up) as url:
        client = guard.wrap(
            openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0),
            store=f"sqlite:///{db}",
        )

        copies: list[Any] = []

        async def go() -> list[dict[str, Any]]:
            async def ask(i: int) -> dict[str, Any]:
                copy = client.with_options(timeout=30)
                copies.append(copy)
                r = await copy.chat.completions.create(
                    model="m",
                    messages=[{"role": "user", "content": question(i)}],
                    extra_body={"guard": {"calibration": "pride", "key": "k"}},
                )
                return dict((r.model_extra or {})["guard"])

            try:
                return await asyncio.gather(*(ask(i) for i in range(16)))
            finally:
                for c in [*copies, client]:
                    await c.close()

        evidence = asyncio.run(go())
    saved = stored(db, evidence[0]["key"], "pride")
    assert [g["role"] for g in evidence].count("warmup") == saved["warmup"] == 4
