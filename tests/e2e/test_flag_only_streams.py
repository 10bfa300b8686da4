"""A stream on a route whose response policies only flag: none of them can end it, so none reads
ahead of the client. Events reach the client as the upstream sends them (the same events, in
the same order, as directly), the flag is still recorded, and a policy that may block still
holds back ``stream_holdback`` characters. Before, a flag-only ``pii`` policy held the first
256 characters (1.9 s of a 20-token/s stream before the first token) and, when the client left,
the upstream went on until calguard next wrote to it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread

ADMIN = "sk-admin-flag-only"
ROUTES = {
    "flagging": RouteConfig(upstream_model="m", policies=[{"type": "pii", "action": "flag"}]),
    "blocking": RouteConfig(upstream_model="m", policies=[{"type": "pii", "action": "block"}]),
}


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    c = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [choice]}  # fmt: skip
    return f"data: {json.dumps(c)}\n\n".encode()


class Gated:
    """A chat stream: a first event, then a wait of at most ``wait_s`` for the test to say the
    client has it, then the rest (an e-mail address in it: flagged)."""

    def __init__(self) -> None:
        self.wait_s = 20.0
        self.client_had_first = threading.Event()
        self.waited: list[bool] = []
        self.app = FastAPI()

        @self.app.post("/v1/chat/completions")
        async def chat(request: Request) -> StreamingResponse:
            async def events() -> Any:
                yield chunk({"role": "assistant", "content": "Hello "})
                self.waited.append(await asyncio.to_thread(self.client_had_first.wait, self.wait_s))
                yield chunk({"content": "mail bob@example.com"})
                yield chunk({}, "stop")
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")


@dataclass
class Stack:
    up: Gated
    direct: str
    calguard: str


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    up = Gated()
    with serve_in_thread(up.app) as upstream:
        s = Settings(upstream=f"{upstream}/v1", store=f"sqlite:///{tmp_path / 'f.db'}",
                     admin_key=ADMIN, routes=ROUTES)  # fmt: skip
        with serve_in_thread(create_app(s)) as url:
            yield Stack(up, upstream, url)


def read(stack: Stack, base: str, model: str) -> list[str | None]:
    """The stream's deltas, telling the upstream to go on once the first has come."""
    got: list[str | None] = []
    with openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0) as c:
        stream = c.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        for ev in stream:
            got.append(ev.choices[0].delta.content)
            stack.up.client_had_first.set()
    stack.up.client_had_first.clear()
    return got


def test_a_flag_only_stream_reaches_the_client_event_by_event(stack: Stack) -> None:
    direct = read(stack, stack.direct, "m")
    through = read(stack, stack.calguard, "flagging")
    assert stack.up.waited == [True, True]  # the first event came while the upstream waited
    assert through == direct == ["Hello ", "mail bob@example.com", None]
    flags = httpx.get(
        f"{stack.calguard}/v1/guard/flags", headers={"Authorization": f"Bearer {ADMIN}"}
    ).json()["data"]
    assert [f["policies"] for f in flags] == [["pii"]]  # recorded all the same


def test_a_policy_that_may_block_still_holds_the_stream_back(stack: Stack) -> None:
    """Nothing reaches the client while the upstream waits (the first event is held until the
    policies have read past it); then the address ends the stream, never sent."""
    stack.up.wait_s = 0.5  # the client cannot have the first event however long it waits
    with pytest.raises(openai.APIError, match="blocked by policy 'pii'"):
        read(stack, stack.calguard, "blocking")
    assert stack.up.waited == [False]
