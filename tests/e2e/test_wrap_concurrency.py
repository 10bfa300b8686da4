"""A wrapped sync client is as concurrent as the plain one: as many calls in flight as the
caller has threads. An upstream that holds every request until ``WANTED`` are in flight
(bounded: it lets them go after ``HOLD_S`` whatever the count) records the most it saw."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

import guard
from guard.testing.servers import serve_in_thread
from tests.e2e.scripted_upstream import _sse, chat, chat_events

WANTED = 40  # above the default thread pool's min(32, cpu + 4) on any machine
HOLD_S = 20.0  # a loaded machine gets all 40 in well before; before the fix, 6 at a time


@dataclass
class Gauge:
    in_flight: int = 0
    most: int = 0
    all_in: asyncio.Event = field(default_factory=asyncio.Event)


def holding_upstream(gauge: Gauge) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions", response_model=None)
    async def completions(request: Request) -> dict[str, Any] | StreamingResponse:
        body = await request.json()
        gauge.in_flight += 1
        gauge.most = max(gauge.most, gauge.in_flight)
        if gauge.in_flight >= WANTED:
            gauge.all_in.set()
        try:
            await asyncio.wait_for(gauge.all_in.wait(), HOLD_S)
        except TimeoutError:
            pass
        finally:
            gauge.in_flight -= 1
        if body.get("stream"):
            events = _sse(chat_events(chat(body), usage=False), named=False)
            return StreamingResponse(events, media_type="text/event-stream")
        return chat(body)

    return app


@pytest.fixture
def upstream() -> Iterator[tuple[str, Gauge]]:
    gauge = Gauge()
    with serve_in_thread(holding_upstream(gauge)) as url:
        yield f"{url}/v1", gauge


@pytest.mark.parametrize("stream", [False, True])
def test_as_many_calls_in_flight_as_the_caller_has_threads(
    upstream: tuple[str, Gauge], tmp_path: Path, stream: bool
) -> None:
    """Before: at most min(32, cpu + 4) at once (6 on 2 cores): every sync call went through
    the portal loop's default thread pool, so 40 threads' calls queued behind 6."""
    url, gauge = upstream
    inner = openai.OpenAI(base_url=url, api_key="k", max_retries=0, timeout=60)
    wrapped = guard.wrap(inner, store=f"sqlite:///{tmp_path / 'c.db'}")
    go = threading.Barrier(WANTED, timeout=30)

    def one(i: int) -> str:
        go.wait()
        messages = [{"role": "user", "content": f"hello {i}"}]
        if not stream:
            r = wrapped.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
            return str(r.choices[0].message.content)
        parts = wrapped.chat.completions.create(model="m", messages=messages, stream=True)  # type: ignore[arg-type]
        return "".join(c.choices[0].delta.content or "" for c in parts if c.choices)

    try:
        with ThreadPoolExecutor(WANTED) as pool:
            answers = list(pool.map(one, range(WANTED)))
    finally:
        wrapped.close()
    assert answers == ["hello"] * WANTED
    assert gauge.most == WANTED
