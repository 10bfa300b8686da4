"""Fields the policies once left unread, on every side (tests/e2e/test_adversarial_guards.py).

Answers: a chat message's audio transcript, reasoning, custom tool call input, content parts,
JSON-escaped tool-call arguments (a redaction there reaches the parsed arguments); a Responses
custom tool call, code interpreter logs, JSON-escaped MCP arguments; a redacted Responses
``output_text`` keeps no logprob token. Streams: the same chat fields as deltas, Responses
reasoning-summary and custom tool input deltas, and the events that carry whole texts
(``response.output_item.done``, ``response.completed``). Requests: refusal parts, legacy
``functions`` and custom tools, custom tool calls and JSON-escaped arguments in the history, a
JSON schema's description; Responses tool output parts, custom tool calls, prompt variables
given as ``input_text``, tool descriptions, strings in an ``input`` list.

A canned upstream answers whatever a test sets (JSON body or SSE events) on every text endpoint
and records what it got; calguard runs in-process (create_app) against it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread

BLOCK = [
    {"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block"},
    {"type": "regex", "params": {"patterns": [r"\bTICKET-\d+\b"]}, "action": "redact"},
    {"type": "pii", "action": "redact"},
]
HI = [{"role": "user", "content": "hi"}]
CHAT, RESP = "/v1/chat/completions", "/v1/responses"
W = "this is forbidden"


class Canned:
    def __init__(self) -> None:
        self.body: Any = chat({"content": "ok"})
        self.sse: list[bytes] | None = None
        self.requests: list[dict[str, Any]] = []
        app = FastAPI()

        @app.post("/v1/{path:path}")
        async def any_(path: str, request: Request) -> Response:
            self.requests.append(json.loads(await request.body()))
            if self.sse is not None:
                events = list(self.sse)

                async def gen() -> Any:
                    for e in events:
                        yield e

                return StreamingResponse(gen(), media_type="text/event-stream")
            return Response(json.dumps(self.body), media_type="application/json")

        self.app = app


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Canned, str]]:
    up = Canned()
    with serve_in_thread(up.app) as upstream:
        settings = Settings(
            upstream=f"{upstream}/v1",
            upstream_key="sk-upstream",
            store=f"sqlite:///{tmp_path / 'a.db'}",
            stream_holdback=16,
            max_attempts=1,
            routes={"m": RouteConfig(upstream_model="m", policies=BLOCK)},
        )
        with serve_in_thread(create_app(settings)) as url:
            yield up, url


def chat(msg: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", **msg},
                         "finish_reason": "stop", **extra}]}  # fmt: skip


def response(*output: dict[str, Any]) -> dict[str, Any]:
    return {"id": "r", "object": "response", "status": "completed", "model": "m",
            "output": list(output)}  # fmt: skip


def chunk(delta: dict[str, Any]) -> bytes:
    data = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta}]}  # fmt: skip
    return f"data: {json.dumps(data)}\n\n".encode()


def ev(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


def ask(path: str, **body: Any) -> dict[str, Any]:
    body.update({"messages": HI} if "chat" in path else {"input": "hi"})
    return {"model": "m", **body}


# -- answers ---------------------------------------------------------------------------------------

RESP_ITEM = {"type": "custom_tool_call", "id": "ct", "call_id": "c", "name": "f",
             "input": "this is forbidden"}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        (CHAT, chat({"content": None, "audio": {
            "id": "a", "data": "", "expires_at": 1, "transcript": "this is forbidden"}})),
        (CHAT, chat({"content": "ok", "reasoning_content": "this is forbidden"})),
        (CHAT, chat({"content": None, "tool_calls": [{"id": "t", "type": "custom",
                                                      "custom": {"name": "f", "input": W}}]})),
        (CHAT, chat({"content": [{"type": "text", "text": "this is forbidden"}]})),
        (CHAT, chat({"content": None, "tool_calls": [
            {"id": "t", "type": "function", "function": {
                "name": "f", "arguments": '{"q": "\\u0066orbidden"}'}}]})),
        (RESP, response(RESP_ITEM)),
        (RESP, response({"type": "code_interpreter_call", "id": "ci", "status":
            "completed", "code": "print(1)", "outputs": [{"type": "logs", "logs": "forbidden"}]})),
        (RESP, response({"type": "mcp_call", "id": "mc", "name": "f", "server_label":
            "s", "arguments": '{"q": "\\u0066orbidden"}', "output": "ok"})),
    ],
    ids=["audio-transcript", "reasoning_content", "custom-tool-call", "content-parts",
         "json-escaped-tool-args", "responses-custom-tool-call", "responses-code-logs",
         "responses-mcp-escaped-args"],
)  # fmt: skip
def test_a_blocked_word_in_any_answer_field_is_blocked(
    env: tuple[Canned, str], path: str, answer: dict[str, Any]
) -> None:
    up, url = env
    up.body = answer
    r = httpx.post(url + path, json=ask(path))
    assert r.status_code == 400, r.text  # observed: 200 with the word delivered


def test_a_redacted_responses_text_keeps_no_logprob_tokens(env: tuple[Canned, str]) -> None:
    up, url = env
    part = {"type": "output_text", "text": "mail bob@example.com", "annotations": [],
            "logprobs": [{"token": "mail", "logprob": 0, "bytes": [], "top_logprobs": []},
                         {"token": " bob@example.com", "logprob": 0, "bytes": [],
                          "top_logprobs": []}]}  # fmt: skip
    up.body = response({"type": "message", "id": "m", "role": "assistant",
                        "status": "completed", "content": [part]})  # fmt: skip
    r = httpx.post(f"{url}/v1/responses", json={"model": "m", "input": "hi"})
    assert r.status_code == 200
    assert "[REDACTED]" in r.text
    assert "bob@example.com" not in r.text  # observed: still in output[0].content[0].logprobs


def test_a_redaction_in_escaped_arguments_reaches_the_parsed_arguments(
    env: tuple[Canned, str],
) -> None:
    up, url = env
    args = '{"to": "bob\\u0040example.com", "n": 1}'
    call = {"id": "t", "type": "function", "function": {"name": "f", "arguments": args}}
    up.body = chat({"content": None, "tool_calls": [call]})
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": HI})
    assert r.status_code == 200, r.text
    sent = r.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(sent) == {"to": "[REDACTED]", "n": 1}  # observed: the address, parsed


# -- streams ---------------------------------------------------------------------------------------

ITEM = {
    "type": "message",
    "id": "m",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": "this is forbidden", "annotations": []}],
}
PAD = chunk({"content": "x " * 20})


@pytest.mark.parametrize(
    ("path", "events"),
    [
        (CHAT, [chunk({"audio": {"transcript": "this is forbidden "}}), PAD]),
        (CHAT, [chunk({"reasoning_content": "this is forbidden "}), PAD]),
        (CHAT, [chunk({"tool_calls": [
            {"index": 0, "type": "custom", "custom": {"input": "this is forbidden "}}]}), PAD]),
        (CHAT, [chunk({"content": [{"type": "text", "text": "forbidden "}]}), PAD]),
        (RESP, [ev({"type": "response.output_item.done", "sequence_number": 1,
                               "output_index": 0, "item": ITEM}),
                           ev({"type": "response.completed", "sequence_number": 2,
                               "response": {"id": "r", "object": "response",
                                            "status": "completed", "output": [ITEM]}})]),
        (RESP, [ev({"type": "response.reasoning_summary_text.delta",
                               "sequence_number": 1, "output_index": 0, "summary_index": 0,
                               "item_id": "rs", "delta": "this is forbidden "}),
                           ev({"type": "response.output_text.delta", "sequence_number": 2,
                               "output_index": 1, "content_index": 0, "item_id": "m",
                               "delta": "x " * 20})]),
        (RESP, [ev({"type": "response.custom_tool_call_input.delta",
                               "sequence_number": 1, "output_index": 0, "item_id": "ct",
                               "delta": "this is forbidden "}),
                           ev({"type": "response.output_text.delta", "sequence_number": 2,
                               "output_index": 1, "content_index": 0, "item_id": "m",
                               "delta": "x " * 20})]),
        (CHAT, [chunk({"tool_calls": [{"index": 0, "type": "function",
            "function": {"name": "f", "arguments": '{"q": "\\u0066orbidden"}'}}]})]),
    ],
    ids=["audio-transcript", "reasoning_content", "custom-tool-call", "content-parts",
         "responses-done-events", "responses-reasoning-summary", "responses-custom-input",
         "json-escaped-tool-args"],
)  # fmt: skip
def test_a_blocked_word_never_streams_out(
    env: tuple[Canned, str], path: str, events: list[bytes]
) -> None:
    up, url = env
    up.sse = [*events, b"data: [DONE]\n\n"]
    with httpx.stream("POST", url + path, json=ask(path, stream=True)) as r:
        wire = b"".join(r.iter_bytes()).decode()
    assert '"error"' in wire, wire
    assert "forbidden" not in wire.split('"error"')[0], wire  # observed: released as sent


# -- requests --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, {"messages": [
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "forbidden"}]},
            {"role": "user", "content": "hi"}]}),
        (CHAT, {"messages": HI, "functions": [
            {"name": "f", "description": "forbidden", "parameters": {"type": "object"}}]}),
        (CHAT, {"messages": HI, "tools": [
            {"type": "custom", "custom": {"name": "f", "description": "forbidden"}}]}),
        (CHAT, {"messages": [
            {"role": "assistant", "tool_calls": [
                {"id": "t", "type": "custom", "custom": {"name": "f", "input": "forbidden"}}]},
            {"role": "tool", "tool_call_id": "t", "content": "ok"}]}),
        (CHAT, {"messages": [
            {"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": {
                "name": "f", "arguments": '{"q": "\\u0066orbidden"}'}}]},
            {"role": "tool", "tool_call_id": "t", "content": "ok"}]}),
        (CHAT, {"messages": HI, "response_format": {"type": "json_schema",
            "json_schema": {"name": "s", "description": "forbidden", "schema": {}}}}),
        (RESP, {"input": [{"type": "function_call_output", "call_id": "c",
                                      "output": [{"type": "input_text", "text": "forbidden"}]}]}),
        (RESP, {"input": [{"type": "custom_tool_call", "call_id": "c", "name": "f",
                                      "input": "forbidden"}]}),
        (RESP, {"prompt": {"id": "pmpt_1", "variables": {
            "v": {"type": "input_text", "text": "forbidden"}}}}),
        (RESP, {"input": "hi", "tools": [
            {"type": "function", "name": "f", "description": "forbidden", "parameters": {}}]}),
        (RESP, {"input": [{"role": "assistant", "content": [
            {"type": "refusal", "refusal": "forbidden"}]}]}),
        (RESP, {"input": ["hi", "forbidden"]}),
    ],
    ids=["chat-refusal-part", "chat-functions-description", "chat-custom-tool-description",
         "chat-custom-tool-call-input", "chat-json-escaped-tool-args",
         "chat-schema-description", "responses-function-output-parts",
         "responses-custom-tool-call", "responses-prompt-variable-object",
         "responses-tool-description", "responses-refusal-part", "responses-input-strings"],
)  # fmt: skip
def test_a_blocked_word_in_any_request_field_never_reaches_the_upstream(
    env: tuple[Canned, str], path: str, body: dict[str, Any]
) -> None:
    up, url = env
    r = httpx.post(url + path, json={"model": "m", **body})
    assert r.status_code == 400, r.text  # observed: 200, the upstream got the word
    assert up.requests == []
