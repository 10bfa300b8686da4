"""The fake upstream's other endpoints (completions, responses, embeddings), its fault
injection, and its wire: extra response headers and gzip (streams too), as real providers
send them. A test aid, never a real model."""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from guard.testing.fake_upstream import FakeUpstreamState


def injected(state: FakeUpstreamState, request: Request) -> Response:
    """The next injected fault: (status, headers), with an OpenAI-style error body. With
    ``x-echo-auth`` among the fault's headers, the message echoes the request's Authorization
    header (a leaky upstream) and the fault's headers carry it too."""
    status, headers = state.faults.pop(0)
    message = f"injected {status}"
    if "x-echo-auth" in headers:
        auth = request.headers.get("authorization", "")
        message += f" for {auth}"
        headers = {**headers, "x-echo-auth": auth}
    body = {"error": {"message": message, "type": "fake", "param": None, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)


def record(state: FakeUpstreamState, request: Request, body: dict[str, Any]) -> None:
    state.requests.append(body)
    state.headers.append(dict(request.headers))
    state.queries.append(request.url.query)


async def take(state: FakeUpstreamState, request: Request) -> dict[str, Any] | Response:
    """The request's body, recorded; or the next injected fault, if one is due."""
    if state.faults:
        return injected(state, request)
    raw = await request.body()
    state.raw_requests.append(raw)
    body: dict[str, Any] = json.loads(raw)
    record(state, request, body)
    return body


def _echo(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if isinstance(value, list):
        parts = []
        for v in value:
            if isinstance(v, dict):
                c = v.get("content")
                parts.append(c if isinstance(c, str) else json.dumps(c))
            else:
                parts.append(v if isinstance(v, str) else json.dumps(v))
        value = " ".join(parts)
    return "echo: " + (value if isinstance(value, str) else json.dumps(value))


def _pieces(text: str) -> list[str]:
    return [text[i : i + 8] for i in range(0, len(text), 8)] or [""]


def _response_events(done: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """A Responses stream as OpenAI sends one (the SDK's ``responses.stream`` helper needs
    ``response.created`` first), without the sequence numbers."""
    item = done["output"][0]
    part = item["content"][0]
    at = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    started = {**done, "status": "in_progress", "output": [], "usage": None}
    deltas = [{"type": "response.output_text.delta", **at, "delta": piece, "logprobs": []}
              for piece in _pieces(text)]  # fmt: skip
    return [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {**item, "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", **at, "part": {**part, "text": ""}},
        *deltas,
        {"type": "response.output_text.done", **at, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **at, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": done},
    ]  # fmt: skip


def add_endpoints(app: FastAPI, state: FakeUpstreamState) -> None:
    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        body = await take(state, request)
        if isinstance(body, Response):
            return body
        text = _echo(body, "prompt")
        done = {
            "id": "cmpl-fake",
            "object": "text_completion",
            "created": 1_700_000_000,
            "model": body.get("model", "sim-biased-llm"),
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }
        if body.get("stream"):

            async def events() -> AsyncIterator[bytes]:
                for piece in _pieces(text):
                    chunk = {**done, "choices": [{**done["choices"][0], "text": piece}]}
                    yield f"data: {json.dumps(chunk)}\n\n".encode()
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        state.last_body = json.dumps(done).encode()
        return Response(state.last_body, media_type="application/json")

    @app.post("/v1/responses")
    async def responses(request: Request) -> Response:
        body = await take(state, request)
        if isinstance(body, Response):
            return body
        text = _echo(body, "input")
        part = {"type": "output_text", "text": text, "annotations": []}
        item = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant"}
        done = {
            "id": "resp_fake",
            "object": "response",
            "created_at": 1_700_000_000,
            "status": "completed",
            "model": body.get("model", "sim-biased-llm"),
            "output": [{**item, "content": [part]}],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7},
        }
        if body.get("stream"):

            async def events() -> AsyncIterator[bytes]:
                for n, ev in enumerate(_response_events(done, text)):
                    ev = {**ev, "sequence_number": n}
                    yield f"event: {ev['type']}\ndata: {json.dumps(ev)}\n\n".encode()

            return StreamingResponse(events(), media_type="text/event-stream")
        state.last_body = json.dumps(done).encode()
        return Response(state.last_body, media_type="application/json")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        body = await take(state, request)
        if isinstance(body, Response):
            return body
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(str(x))), 1.0, 0.0]}
            for i, x in enumerate(items)
        ]
        done = {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
        state.last_body = json.dumps(done).encode()
        return Response(state.last_body, media_type="application/json")


class WireMiddleware:
    """Adds ``state.response_headers`` to every answer and, with ``state.gzip``, compresses it
    (a stream chunk by chunk, flushed, so it still streams)."""

    def __init__(self, app: ASGIApp, state: FakeUpstreamState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        z = zlib.compressobj(wbits=31) if self.state.gzip else None

        async def wire(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in self.state.response_headers.items():
                    headers[k] = v
                if z is not None:
                    del headers["content-length"]
                    headers["content-encoding"] = "gzip"
            elif message["type"] == "http.response.body" and z is not None:
                data = z.compress(message.get("body", b""))
                more = message.get("more_body", False)
                data += z.flush(zlib.Z_SYNC_FLUSH if more else zlib.Z_FINISH)
                message = {**message, "body": data}
            await send(message)

        await self.app(scope, receive, wire)
