"""A relayed stream (an Assistants run with ``stream: true``, ``POST /v1/threads/{id}/runs``)
streams: its events reach the client as the upstream sends them, a stream longer than
``timeout_s`` is not cut, and the POST is sent once. Before, the relay read the whole answer
under ``timeout_s`` and retried the POST when it ran out."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from guard.config import Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread

KEY = "sk-upstream-relay-secret-0123456789"


class Runs:
    """``POST /v1/threads/t/runs``: an event, then (``gated``) a wait of at most 20 s for the
    test to say it has that event, then ``more`` events ``gap`` seconds apart; the last one
    echoes the upstream key, to be scrubbed."""

    def __init__(self, more: int, gap: float, gated: bool) -> None:
        self.posts = 0
        self.client_had_first = threading.Event()
        self.waited: bool | None = None
        app = FastAPI()

        @app.post("/v1/threads/t/runs")
        async def runs(request: Request) -> StreamingResponse:
            self.posts += 1

            async def events() -> Any:
                yield event("thread.run.created", 0)
                if gated:
                    self.waited = await asyncio.to_thread(self.client_had_first.wait, 20.0)
                for i in range(1, more + 1):
                    await asyncio.sleep(gap)
                    yield event("thread.run.step.delta", i)
                yield event("thread.message.delta", KEY)
                yield b"event: done\ndata: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        self.app = app


def event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'id': 'run_1', 'n': data})}\n\n".encode()


def stack(tmp_path: Path, up: Runs, timeout_s: float) -> Iterator[str]:
    with serve_in_thread(up.app) as upstream:
        settings = Settings(
            upstream=f"{upstream}/v1",
            upstream_key=KEY,
            store=f"sqlite:///{tmp_path / 'r.db'}",
            timeout_s=timeout_s,
            max_attempts=3,
            retry_max_wait_s=0.01,
        )
        with serve_in_thread(create_app(settings)) as url:
            yield url


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[str, Runs]]:
    up = Runs(more=2, gap=0.0, gated=True)
    for url in stack(tmp_path, up, 30.0):
        yield url, up


@pytest.fixture
def long(tmp_path: Path) -> Iterator[tuple[str, Runs]]:
    up = Runs(more=10, gap=0.3, gated=False)  # 3 s of events against a 2 s timeout_s
    for url in stack(tmp_path, up, 2.0):
        yield url, up


def test_a_relayed_stream_reaches_the_client_event_by_event(gated: tuple[str, Runs]) -> None:
    url, up = gated
    seen: list[str] = []
    with httpx.stream("POST", f"{url}/v1/threads/t/runs", json={"stream": True}, timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            seen.append(line)
            if "thread.run.created" in line:
                up.client_had_first.set()  # the upstream sends the rest only now
    assert up.waited is True  # the first event reached the client while the run went on
    assert [s for s in seen if s.startswith("event:")] == [
        "event: thread.run.created", "event: thread.run.step.delta",
        "event: thread.run.step.delta", "event: thread.message.delta", "event: done",
    ]  # fmt: skip
    assert KEY not in "\n".join(seen)  # scrubbed, event by event
    assert up.posts == 1


def test_a_relayed_stream_longer_than_timeout_s_is_neither_cut_nor_sent_again(
    long: tuple[str, Runs],
) -> None:
    url, up = long
    r = httpx.post(f"{url}/v1/threads/t/runs", json={"stream": True}, timeout=60)
    assert r.status_code == 200
    assert r.text.count("event: thread.run.step.delta") == 10
    assert up.posts == 1


@pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning")
def test_the_sdk_streams_an_assistants_run_through_the_relay(gated: tuple[str, Runs]) -> None:
    url, up = gated
    up.client_had_first.set()
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    with client.beta.threads.runs.with_streaming_response.create(
        thread_id="t", assistant_id="a", stream=True
    ) as response:
        names = [line for line in response.iter_lines() if line.startswith("event:")]
    assert names[0] == "event: thread.run.created"
    assert names[-1] == "event: done"
