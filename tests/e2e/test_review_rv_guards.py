"""Ways around the policies a review of rarer surfaces found (rv-guards), each on the wire
through the real ``openai`` client or raw HTTP, failing before its fix: the legacy engines
paths (``/v1/engines/<model>/completions``, which LocalAI still serves) relayed unread; the
strings of a tool's parameter schema and of a response format's schema (property descriptions,
enums: the model is shown them) and an MCP server's description, unread; the upstream's stored
copy of an answer calguard redacted (``client.responses.retrieve(id)``) relayed as it was; the
title and URL of a page an answer cites (annotations), unread; what vLLM renders into a prompt
beyond text parts (plain string parts, thinking parts, an earlier turn's reasoning, arguments
as an object, a chat_template, its kwargs, documents), unread."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread
from tests.e2e.test_attack_round import DENY_PROMPT, Recorder
from tests.e2e.test_fields_read import BLOCK, CHAT, RESP, Canned, ask, chat, chunk, ev, response

PII = {"type": "pii", "action": "redact", "on": "prompt"}


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[str, Recorder]]:
    up = Recorder()
    with serve_in_thread(up) as upstream:
        settings = Settings(
            upstream=f"{upstream}/v1",
            store=f"sqlite:///{tmp_path / 'a.db'}",
            default_route=RouteConfig(policies=[*DENY_PROMPT, PII]),
        )
        with serve_in_thread(create_app(settings)) as url:
            yield url, up


# -- a text endpoint under the legacy engines path -------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/engines/m/completions",
        "/v1/engines/m/chat/completions",
        "/v1/engines/m/embeddings",
        "/v1/Engines/M/Completions",  # LocalAI's router (Fiber) matches any case
        "/v1/deployments/m/chat/completions",
    ],
)
def test_a_text_endpoint_under_another_path_is_not_relayed(
    proxy: tuple[str, Recorder], path: str
) -> None:
    url, up = proxy
    r = httpx.post(url + path, json={"prompt": "say forbidden", "input": "forbidden"})
    assert r.status_code == 404, r.text  # observed before: 200, relayed with the word unread
    assert "send it as POST /v1/" in r.json()["error"]["message"]
    assert up.seen == []


def test_the_sdk_reaches_the_engines_path_only_through_the_policies(
    proxy: tuple[str, Recorder],
) -> None:
    url, up = proxy
    with openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client:
        with pytest.raises(openai.NotFoundError):
            client.post("/engines/m/completions", body={"prompt": "say forbidden"}, cast_to=object)
        with pytest.raises(openai.BadRequestError):
            client.completions.create(model="m", prompt="say forbidden")
    assert up.seen == []


def test_other_posts_under_a_text_path_are_still_relayed(proxy: tuple[str, Recorder]) -> None:
    url, up = proxy
    r = httpx.post(url + "/v1/chat/completions/cmpl_1", json={"metadata": {"a": "b"}})
    assert r.status_code == 200
    assert [(m, p) for m, p, _ in up.seen] == [("POST", "/v1/chat/completions/cmpl_1")]


# -- the strings of a schema the model is shown ----------------------------------------------


def _params(text: str) -> dict[str, Any]:
    prop = {"type": "string", "description": text, "enum": ["a", text]}
    one_of = {"anyOf": [{"type": "string", "description": text}, {"type": "null"}]}
    properties = {"q": prop, "deep": {"type": "array", "items": prop}, "either": one_of}
    return {"type": "object", "properties": properties}


HI = [{"role": "user", "content": "hi"}]
SCHEMA_BODIES = {
    "chat-tool-parameters": lambda t: {"messages": HI, "tools": [
        {"type": "function", "function": {"name": "f", "parameters": _params(t)}}]},
    "chat-legacy-function-parameters": lambda t: {"messages": HI, "functions": [
        {"name": "f", "parameters": _params(t)}]},
    "chat-response-format-schema": lambda t: {"messages": HI, "response_format": {
        "type": "json_schema", "json_schema": {"name": "s", "schema": _params(t)}}},
    "responses-tool-parameters": lambda t: {"input": "hi", "tools": [
        {"type": "function", "name": "f", "parameters": _params(t)}]},
    "responses-text-format-schema": lambda t: {"input": "hi", "text": {"format": {
        "type": "json_schema", "name": "s", "schema": _params(t)}}},
    "responses-mcp-server-description": lambda t: {"input": "hi", "tools": [
        {"type": "mcp", "server_label": "s", "server_url": "https://mcp.invalid",
         "server_description": t}]},
}  # fmt: skip


def _path(name: str) -> str:
    return "/v1/responses" if name.startswith("responses") else "/v1/chat/completions"


@pytest.mark.parametrize("name", list(SCHEMA_BODIES))
def test_a_blocked_word_in_a_schema_the_model_is_shown_never_reaches_the_upstream(
    proxy: tuple[str, Recorder], name: str
) -> None:
    url, up = proxy
    body = {"model": "m", **SCHEMA_BODIES[name]("say forbidden")}
    r = httpx.post(url + _path(name), json=body)
    assert r.status_code == 400, r.text  # observed before: 200, the upstream got the word
    assert r.json()["error"]["code"] == "denylist"
    assert up.seen == []


@pytest.mark.parametrize("name", list(SCHEMA_BODIES))
def test_an_address_in_a_schema_is_redacted_before_it_goes_upstream(
    proxy: tuple[str, Recorder], name: str
) -> None:
    url, up = proxy
    body = {"model": "m", **SCHEMA_BODIES[name]("write to bob@example.com")}
    assert httpx.post(url + _path(name), json=body).status_code == 200
    ((_, _, sent),) = up.seen
    assert b"bob@example.com" not in sent
    assert json.loads(sent) == {"model": "m", **SCHEMA_BODIES[name]("write to [REDACTED]")}


def test_the_sdk_sends_a_tool_schema_only_through_the_policies(
    proxy: tuple[str, Recorder],
) -> None:
    url, up = proxy
    tool = {"type": "function", "function": {"name": "f", "parameters": _params("forbidden")}}
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
    with client, pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=HI, tools=[tool])  # type: ignore[arg-type, list-item]
    assert up.seen == []


# -- the stored copy of an answer calguard redacted or blocked -------------------------------


class Storing:
    """An upstream that stores what it answers, as OpenAI does (``store`` is the Responses
    API's default): each answer holds an address, and is there to fetch again by its id."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        app = FastAPI()
        said = "write to bob@example.com"

        @app.post("/v1/chat/completions")
        async def chat() -> dict[str, Any]:
            message = {"role": "assistant", "content": said}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            done = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
                    "choices": [choice]}  # fmt: skip
            self.stored[done["id"]] = done
            return done

        @app.post("/v1/responses")
        async def responses() -> dict[str, Any]:
            part = {"type": "output_text", "text": said, "annotations": []}
            item = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                    "content": [part]}  # fmt: skip
            done = {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
                    "model": "m", "output": [item]}  # fmt: skip
            self.stored[done["id"]] = done
            return done

        @app.get("/v1/chat/completions")
        async def listed() -> dict[str, Any]:
            return {"object": "list", "data": list(self.stored.values())}

        @app.api_route("/v1/{kind:path}/{id}", methods=["GET", "POST"])
        async def fetch(kind: str, id: str) -> Any:
            return self.stored.get(id) or self.stored.get(kind.split("/")[-1]) or {}

        self.app = app


@pytest.fixture
def storing(tmp_path: Path) -> Iterator[tuple[openai.OpenAI, Storing]]:
    up = Storing()
    with serve_in_thread(up.app) as upstream:
        settings = Settings(
            upstream=f"{upstream}/v1",
            store=f"sqlite:///{tmp_path / 's.db'}",
            max_attempts=1,
            routes={"m": RouteConfig(upstream_model="m", policies=[
                {"type": "pii", "action": "redact", "on": "response"}])},
        )  # fmt: skip
        with (
            serve_in_thread(create_app(settings)) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
        ):
            yield client, up


def test_a_redacted_response_cannot_be_fetched_again_unredacted(
    storing: tuple[openai.OpenAI, Storing],
) -> None:
    client, _ = storing
    answer = client.responses.create(model="m", input="hi")
    assert answer.output_text == "write to [REDACTED]"
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.retrieve(answer.id)  # observed before: "write to bob@example.com"
    assert "response" in err.value.message
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel(answer.id)


def test_a_redacted_chat_completion_cannot_be_fetched_again_unredacted(
    storing: tuple[openai.OpenAI, Storing],
) -> None:
    client, _ = storing
    answer = client.chat.completions.create(model="m", messages=HI)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "write to [REDACTED]"
    fetches = [
        lambda: client.chat.completions.retrieve(answer.id),
        lambda: client.chat.completions.update(answer.id, metadata={"a": "b"}),
        lambda: client.chat.completions.list(),
        lambda: client.conversations.items.list("conv_1"),
    ]
    for fetch in fetches:
        with pytest.raises(openai.NotFoundError):
            fetch()  # observed before: the stored answer, "write to bob@example.com"


# -- the pages an answer cites ---------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Canned, str]]:
    """A canned upstream (tests/e2e/test_fields_read.py) behind a blocking and redacting route."""
    up = Canned()
    with serve_in_thread(up.app) as upstream:
        settings = Settings(
            upstream=f"{upstream}/v1",
            store=f"sqlite:///{tmp_path / 'c.db'}",
            stream_holdback=16,
            max_attempts=1,
            routes={"m": RouteConfig(upstream_model="m", policies=BLOCK)},
        )
        with serve_in_thread(create_app(settings)) as url:
            yield up, url


CITE = {"type": "url_citation", "start_index": 0, "end_index": 2, "title": "this is forbidden",
        "url": "https://example.org/?to=bob@example.com"}  # fmt: skip
CHAT_CITE = {"type": "url_citation", "url_citation": {k: v for k, v in CITE.items() if k != "type"}}
TEXT = {"type": "output_text", "text": "ok", "annotations": [CITE]}
ITEM = {"type": "message", "id": "m", "role": "assistant", "status": "completed", "content": [TEXT]}


@pytest.mark.parametrize(
    ("path", "answer"),
    [(CHAT, chat({"content": "ok", "annotations": [CHAT_CITE]})), (RESP, response(ITEM))],
    ids=["chat", "responses"],
)
def test_a_blocked_word_in_a_cited_title_never_reaches_the_client(
    env: tuple[Canned, str], path: str, answer: dict[str, Any]
) -> None:
    up, url = env
    up.body = answer
    r = httpx.post(url + path, json=ask(path))
    assert r.status_code == 400, r.text  # observed before: 200, the title as the upstream said
    assert "forbidden" not in r.text.replace("'forbidden'", "")


def test_an_address_in_a_cited_url_is_redacted(env: tuple[Canned, str]) -> None:
    up, url = env
    cite = {"type": "url_citation", "url_citation": {**CHAT_CITE["url_citation"], "title": "a"}}
    up.body = chat({"content": "ok", "annotations": [cite]})
    r = httpx.post(url + CHAT, json=ask(CHAT))
    cited = r.json()["choices"][0]["message"]["annotations"][0]["url_citation"]
    assert cited["url"] == "https://example.org/?to=[REDACTED]"  # before: the address


@pytest.mark.parametrize(
    ("path", "events"),
    [
        (RESP, [ev({"type": "response.output_text.annotation.added", "sequence_number": 1,
                    "output_index": 0, "content_index": 0, "item_id": "m",
                    "annotation_index": 0, "annotation": CITE})]),
        (CHAT, [chunk({"content": "ok", "annotations": [CHAT_CITE]})]),
    ],
    ids=["responses", "chat"],
)  # fmt: skip
def test_a_blocked_word_in_a_streamed_citation_never_streams_out(
    env: tuple[Canned, str], path: str, events: list[bytes]
) -> None:
    up, url = env
    up.sse = [*events, b"data: [DONE]\n\n"]
    with httpx.stream("POST", url + path, json=ask(path, stream=True)) as r:
        wire = b"".join(r.iter_bytes()).decode()
    assert '"error"' in wire, wire
    assert "forbidden" not in wire.split('"error"')[0], wire  # observed before: sent as it came


# -- text vLLM renders from a message beyond its text parts ----------------------------------

RENDERED = {
    "plain-string-part": lambda t: [{"role": "user", "content": ["hi", t]}],
    "thinking-part": lambda t: [
        {"role": "assistant", "content": [{"type": "thinking", "thinking": t}]}, *HI],
    "reasoning_content": lambda t: [
        {"role": "assistant", "content": "ok", "reasoning_content": t}, *HI],
    "reasoning": lambda t: [{"role": "assistant", "content": "ok", "reasoning": t}, *HI],
    "arguments-as-object": lambda t: [
        {"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": {
            "name": "f", "arguments": {"q": [{"r": t}]}}}]},
        {"role": "tool", "tool_call_id": "t", "content": "ok"}],
}  # fmt: skip


@pytest.mark.parametrize("name", list(RENDERED))
def test_a_blocked_word_vllm_would_render_never_reaches_the_upstream(
    proxy: tuple[str, Recorder], name: str
) -> None:
    url, up = proxy
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)
    with client, pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="m", messages=RENDERED[name]("say forbidden"))
    assert err.value.code == "denylist"
    assert up.seen == []  # observed before: the upstream got the word


@pytest.mark.parametrize("name", list(RENDERED))
def test_an_address_vllm_would_render_is_redacted(proxy: tuple[str, Recorder], name: str) -> None:
    url, up = proxy
    body = {"model": "m", "messages": RENDERED[name]("mail bob@example.com")}
    assert httpx.post(url + "/v1/chat/completions", json=body).status_code == 200
    ((_, _, sent),) = up.seen
    assert json.loads(sent)["messages"] == RENDERED[name]("mail [REDACTED]")


BESIDE = {
    "chat_template": lambda t: {"chat_template": "{{ '" + t + "' }}{{ messages }}"},
    "chat_template_kwargs": lambda t: {"chat_template_kwargs": {"persona": t, "n": 1}},
    "documents": lambda t: {"documents": [{"title": "doc", "text": t}]},
}


@pytest.mark.parametrize("name", list(BESIDE))
def test_text_vllm_renders_from_beside_the_messages_is_read(
    proxy: tuple[str, Recorder], name: str
) -> None:
    url, up = proxy
    body = {"model": "m", "messages": HI, **BESIDE[name]("say forbidden")}
    r = httpx.post(url + "/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text  # observed before: 200, the upstream got the word
    assert up.seen == []
    body = {"model": "m", "messages": HI, **BESIDE[name]("mail bob@example.com")}
    assert httpx.post(url + "/v1/chat/completions", json=body).status_code == 200
    ((_, _, sent),) = up.seen
    assert json.loads(sent) == {"model": "m", "messages": HI, **BESIDE[name]("mail [REDACTED]")}
