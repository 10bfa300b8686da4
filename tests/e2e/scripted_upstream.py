"""A scripted OpenAI-compatible upstream for differential tests (a plain client and a wrapped
one asked the same thing): every answer is a function of the request alone, so both sides get
the same bytes, and every request is recorded. The model name picks the answer:
``tools`` (a tool call), ``json`` (a JSON object as content), anything else ``hello``."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

HEADERS = {"x-ratelimit-remaining-requests": "99", "openai-processing-ms": "7"}
USAGE = {
    "input_tokens": 3,
    "output_tokens": 1,
    "total_tokens": 4,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens_details": {"reasoning_tokens": 0},
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": '{"a": 1}'}}


@dataclass
class Script:
    requests: list[dict[str, Any]] = field(default_factory=list)  # path, query, headers, body
    faults: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # next answers
    delay_s: float = 0.0  # before every answer


def _headers(script: Script) -> dict[str, str]:
    return {**HEADERS, "x-request-id": f"req_{len(script.requests)}"}


def _message(model: str) -> dict[str, Any]:
    if model == "tools":
        return {"role": "assistant", "content": None, "tool_calls": [CALL]}
    return {"role": "assistant", "content": '{"a": 1}' if model == "json" else "hello"}


def chat(body: dict[str, Any]) -> dict[str, Any]:
    model = str(body.get("model"))
    finish = "tool_calls" if model == "tools" else "stop"
    choices = [
        {"index": i, "message": _message(model), "logprobs": None, "finish_reason": finish}
        for i in range(int(body.get("n") or 1))
    ]
    return {
        "id": "chatcmpl-s",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        "system_fingerprint": "fp_s",
    }


def chat_events(done: dict[str, Any], usage: bool) -> list[dict[str, Any]]:
    base = {k: done[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    out = []
    for c in done["choices"]:
        msg = c["message"]
        delta: dict[str, Any] = {"role": "assistant", "content": msg["content"]}
        if msg.get("tool_calls"):
            delta["tool_calls"] = [{**CALL, "index": 0}]
        ch = [{"index": c["index"], "delta": delta, "logprobs": None, "finish_reason": None}]
        out.append({**base, "choices": ch})
        end = {"index": c["index"], "delta": {}, "logprobs": None}
        out.append({**base, "choices": [{**end, "finish_reason": c["finish_reason"]}]})
    if usage:
        out.append({**base, "choices": [], "usage": done["usage"]})
    return out


def response(body: dict[str, Any]) -> dict[str, Any]:
    text = '{"a": 1}' if body.get("model") == "json" else "hello"
    part = {"type": "output_text", "text": text, "annotations": []}
    item = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant"}
    return {
        "id": "resp_s",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": "completed",
        "model": body.get("model"),
        "output": [{**item, "content": [part]}],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": USAGE,
    }


def response_events(done: dict[str, Any]) -> list[dict[str, Any]]:
    item = done["output"][0]
    part = item["content"][0]
    empty = {**item, "status": "in_progress", "content": []}
    at = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    started = {**done, "status": "in_progress", "output": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {"type": "response.output_item.added", "output_index": 0, "item": empty},
        {"type": "response.content_part.added", **at, "part": {**part, "text": ""}},
        {"type": "response.output_text.delta", **at, "delta": part["text"], "logprobs": []},
        {"type": "response.output_text.done", **at, "text": part["text"], "logprobs": []},
        {"type": "response.content_part.done", **at, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": done},
    ]
    return [{**e, "sequence_number": i} for i, e in enumerate(events)]


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = []
    for i, x in enumerate(inputs):
        vec = [float(len(str(x))), 0.5, -1.0]
        emb: Any = vec
        if body.get("encoding_format") == "base64":
            emb = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": emb})
    usage = {"prompt_tokens": 2, "total_tokens": 2}
    return {"object": "list", "data": data, "model": body.get("model"), "usage": usage}


def completion(body: dict[str, Any]) -> dict[str, Any]:
    choice = {"index": 0, "text": "hello", "logprobs": None, "finish_reason": "stop"}
    return {"id": "cmpl-s", "object": "text_completion", "created": 1_700_000_000,
            "model": body.get("model"), "choices": [choice],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}  # fmt: skip


async def _sse(events: list[dict[str, Any]], named: bool) -> AsyncIterator[bytes]:
    for e in events:
        head = f"event: {e['type']}\n" if named else ""
        yield f"{head}data: {json.dumps(e)}\n\n".encode()
    if not named:
        yield b"data: [DONE]\n\n"


def create_scripted_upstream(script: Script) -> FastAPI:
    app = FastAPI()

    @app.api_route("/v1/{path:path}", methods=["GET", "POST", "DELETE"])
    async def any_path(path: str, request: Request) -> Response:
        raw = await request.body()
        typed = request.headers.get("content-type", "").startswith("application/json")
        body = (json.loads(raw) if raw else {}) if typed or not raw else {"raw": raw}
        seen = {"method": request.method, "path": path, "query": request.url.query}
        script.requests.append({**seen, "body": body, "headers": dict(request.headers)})
        headers = _headers(script)
        if script.delay_s:
            await asyncio.sleep(script.delay_s)
        if script.faults:
            status, fault_headers = script.faults.pop(0)
            err = {"message": f"scripted {status}", "type": "scripted", "param": None,
                   "code": f"code_{status}"}  # fmt: skip
            return JSONResponse({"error": err}, status, {**headers, **fault_headers})
        stream = bool(body.get("stream"))
        if path == "chat/completions" and request.method == "POST":
            done = chat(body)
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events, named = chat_events(done, usage), False
        elif path == "responses" and request.method == "POST":
            done = response(body)
            events, named = response_events(done), True
        elif path == "completions":
            done = completion(body)
            events, named = [done], False
        elif path == "embeddings":
            done = embeddings(body)
        elif path == "files" and request.method == "POST":
            done = {"id": "file-1", "object": "file", "bytes": len(raw), "created_at": 0,
                    "filename": "x.jsonl", "purpose": "batch", "status": "processed"}  # fmt: skip
        elif path == "audio/transcriptions":
            done = {"text": "hello", "usage": {"type": "duration", "seconds": 1}}
        elif path == "images/generations":
            done = {"created": 0, "data": [{"b64_json": "aGk=", "revised_prompt": "a cat"}]}
        elif path == "models":
            m = [{"id": m, "object": "model", "created": 0, "owned_by": "s"} for m in "ab"]
            done = {"object": "list", "data": m}
        else:  # stored completions, files, batches, ...: one empty page
            done = {"object": "list", "data": [], "has_more": False}
        if stream:
            gen = _sse(events, named)
            return StreamingResponse(gen, media_type="text/event-stream", headers=headers)
        return JSONResponse(done, headers=headers)

    return app
