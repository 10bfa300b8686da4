"""Prompt policies on the relayed bodies a model reads (``guard/relay_checks.py``), on the wire
through the real ``openai`` client: a conversation's items, an Assistants thread's messages, a
message, a run's instructions, an assistant, a run's tool outputs, an image prompt, the text of
speech, a Responses compaction's input. Before, each was relayed unread: a blocked word reached
the upstream, an address went unredacted, a flag was never recorded. Without prompt policies
the relay is as it was: the body goes as its bytes."""

from __future__ import annotations

import asyncio
import gzip
import importlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from guard.checks import OFF_LOOP_BYTES
from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.store import SQLiteStore as Store
from guard.testing.servers import serve_in_thread
from tests.e2e.asgi_recorder import Recorder
from tests.e2e.test_attack_round import DENY_PROMPT

PII = {"type": "pii", "action": "redact", "on": "prompt"}
FLAG = {"type": "regex", "params": {"patterns": ["suspicious"]}, "action": "flag", "on": "prompt"}
# only the "strict" route blocks it: a body without a model is checked by every route
STRICT = [{"type": "denylist", "params": {"words": ["classified"]}, "action": "block"}]
ADDRESS = "alice@example.com"
# The Assistants API is deprecated in the SDK; its calls warn.
assistants = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Proxy:
    def __init__(self, url: str, up: Recorder, db: Path) -> None:
        self.url, self.up, self.db = url, up, db
        self.client = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0)

    def flags(self) -> list[dict[str, Any]]:
        store = Store(str(self.db))
        try:
            return store.flags()
        finally:
            store.close()


@contextmanager
def _proxy(tmp_path: Path, **settings: Any) -> Iterator[Proxy]:
    up = Recorder()
    db = tmp_path / "a.db"
    with serve_in_thread(up) as upstream:
        s = Settings(upstream=f"{upstream}/v1", store=f"sqlite:///{db}", **settings)
        with serve_in_thread(create_app(s)) as url:
            proxy = Proxy(url, up, db)
            try:
                yield proxy
            finally:
                proxy.client.close()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxy]:
    with _proxy(
        tmp_path,
        default_route=RouteConfig(policies=[*DENY_PROMPT, PII, FLAG]),
        routes={"open": RouteConfig(), "strict": RouteConfig(policies=STRICT)},
    ) as p:
        yield p


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Proxy]:
    """No prompt policy anywhere (a response-side one only)."""
    flag = {"type": "max_length", "params": {"max_chars": 5}, "action": "flag", "on": "response"}
    with _proxy(tmp_path, default_route=RouteConfig(policies=[flag])) as p:
        yield p


CALLS: dict[str, tuple[str, Callable[[openai.OpenAI, str], Any]]] = {
    "conversations.create": ("/v1/conversations", lambda c, t: c.conversations.create(
        items=[{"type": "message", "role": "user", "content": t}])),
    "conversations.items.create": ("/v1/conversations/conv_1/items",
        lambda c, t: c.conversations.items.create("conv_1", items=[
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": t}]}])),
    "threads.create": ("/v1/threads", lambda c, t: c.beta.threads.create(
        messages=[{"role": "user", "content": t}])),
    "threads.messages.create": ("/v1/threads/thread_1/messages",
        lambda c, t: c.beta.threads.messages.create(
            "thread_1", role="user", content=[{"type": "text", "text": t}])),
    "threads.runs.create": ("/v1/threads/thread_1/runs", lambda c, t: c.beta.threads.runs.create(
        "thread_1", assistant_id="asst_1", additional_messages=[{"role": "user", "content": t}])),
    "threads.create_and_run": ("/v1/threads/runs", lambda c, t: c.beta.threads.create_and_run(
        assistant_id="asst_1", thread={"messages": [{"role": "user", "content": t}]})),
    "assistants.create": ("/v1/assistants", lambda c, t: c.beta.assistants.create(
        model="gpt-4o", instructions=t)),
    "assistants.update": ("/v1/assistants/asst_1", lambda c, t: c.beta.assistants.update(
        "asst_1", tools=[{"type": "function", "function": {"name": "f", "description": t}}])),
    "runs.submit_tool_outputs": ("/v1/threads/thread_1/runs/run_1/submit_tool_outputs",
        lambda c, t: c.beta.threads.runs.submit_tool_outputs(
            "run_1", thread_id="thread_1", tool_outputs=[{"tool_call_id": "c", "output": t}])),
    "images.generate": ("/v1/images/generations", lambda c, t: c.images.generate(
        model="gpt-image-1", prompt=t)),
    "audio.speech.create": ("/v1/audio/speech", lambda c, t: c.audio.speech.create(
        model="tts-1", voice="alloy", input=t)),
    "responses.compact": ("/v1/responses/compact", lambda c, t: c.responses.compact(
        model="gpt-5", input=[{"role": "user", "content": t}])),
    "realtime.client_secrets.create": ("/v1/realtime/client_secrets",
        lambda c, t: c.realtime.client_secrets.create(
            session={"type": "realtime", "instructions": t})),
    "realtime.calls.accept": ("/v1/realtime/calls/rtc_1/accept",
        lambda c, t: c.realtime.calls.accept("rtc_1", type="realtime", tools=[
            {"type": "function", "name": "f", "description": t}])),
}  # fmt: skip


def _anthropic(where: str, text: str) -> dict[str, Any]:
    """An Anthropic Messages request (vLLM, SGLang and LiteLLM serve /v1/messages) with
    ``text`` at ``where``."""
    blocks: dict[str, Any] = {
        "message": {"role": "user", "content": text},
        "text block": {"role": "user", "content": [{"type": "text", "text": text}]},
        "tool result": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": text}]}
        ]},
        "tool use": {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t", "name": "f", "input": {"q": text}}]},
    }  # fmt: skip
    body: dict[str, Any] = {"model": "claude", "max_tokens": 10}
    body["messages"] = [blocks.get(where, blocks["message"] | {"content": "hi"})]
    if where == "system":
        body["system"] = [{"type": "text", "text": text}]
    if where == "tool":
        schema = {"type": "object", "properties": {"q": {"type": "string", "description": text}}}
        body["tools"] = [{"name": "f", "description": "look up", "input_schema": schema}]
    return body


OTHER_APIS = {
    **{f"/v1/messages ({w})": ("/v1/messages", lambda t, w=w: _anthropic(w, t))
       for w in ("system", "message", "text block", "tool result", "tool use", "tool")},
    "/v1/edits": ("/v1/edits", lambda t: {"model": "m", "input": t, "instruction": "fix"}),
}  # fmt: skip


@pytest.mark.parametrize("name", list(OTHER_APIS))
def test_another_apis_generating_endpoint_is_read_too(proxy: Proxy, name: str) -> None:
    """Anthropic's Messages API and LocalAI's edits are generating endpoints an OpenAI-compatible
    upstream may serve beside the text endpoints: before, relayed unread (a blocked word reached
    the model, an address went unredacted)."""
    path, body = OTHER_APIS[name]
    r = httpx.post(f"{proxy.url}{path}", json=body("please say forbidden"))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "denylist"
    assert proxy.up.seen == []
    r = httpx.post(f"{proxy.url}{path}", json=body(f"write to {ADDRESS} today"))
    assert r.status_code == 200, r.text
    [(_, seen_path, sent)] = proxy.up.seen
    assert seen_path == path
    assert ADDRESS.encode() not in sent
    assert b"write to " in sent


@assistants
@pytest.mark.parametrize("name", list(CALLS))
def test_a_blocked_word_in_a_relayed_body_never_reaches_the_upstream(
    proxy: Proxy, name: str
) -> None:
    with pytest.raises(openai.BadRequestError) as got:
        CALLS[name][1](proxy.client, "please say forbidden")
    assert got.value.status_code == 400
    body = got.value.body
    assert isinstance(body, dict)
    assert body["type"] == "policy_violation", body
    assert body["code"] == "denylist"
    assert proxy.up.seen == []  # observed before: relayed, the word unread
    [record] = proxy.flags()
    assert record["action"] == "block"
    assert record["policies"] == ["denylist"]


@assistants
@pytest.mark.parametrize("name", list(CALLS))
def test_an_address_in_a_relayed_body_reaches_the_upstream_redacted(
    proxy: Proxy, name: str
) -> None:
    path, call = CALLS[name]
    call(proxy.client, f"write to {ADDRESS} today")
    [(method, seen_path, sent)] = proxy.up.seen
    assert (method, seen_path) == ("POST", path)
    assert ADDRESS.encode() not in sent  # observed before: the address, unredacted
    assert b"write to " in sent
    assert b" today" in sent
    json.loads(sent)  # the body re-serialised as JSON
    [record] = proxy.flags()
    assert ADDRESS not in json.dumps(record)
    assert record["response"] == {"relayed": f"POST {path}"}


@assistants
@pytest.mark.parametrize("name", list(CALLS))
def test_a_flagged_relayed_body_goes_as_sent_and_is_recorded(proxy: Proxy, name: str) -> None:
    path, call = CALLS[name]
    raw = call(proxy.client.with_raw_response, "a suspicious note")
    assert raw.headers["x-calguard-flags"] == "regex"
    [(_, _, sent)] = proxy.up.seen
    assert b"a suspicious note" in sent
    [record] = proxy.flags()  # observed before: no record
    assert record["action"] == "flag"
    assert record["policies"] == ["regex"]
    assert record["request_id"] == raw.headers["x-calguard-request-id"]
    assert record["response"] == {"relayed": f"POST {path}"}
    assert record["route"] == ROUTES.get(name, "*")  # "*": every route's policies


# The route (by the model the body names) whose policies a body is checked by.
ROUTES = {
    "assistants.create": "gpt-4o",
    "images.generate": "gpt-image-1",
    "audio.speech.create": "tts-1",
    "responses.compact": "gpt-5",
}


def test_a_flagged_body_goes_as_its_bytes(proxy: Proxy) -> None:
    sent = b'{ "messages" : [ {"role": "user", "content": "a suspicious \\u006eote"} ] }'
    r = httpx.post(f"{proxy.url}/v1/threads", content=sent)
    assert r.status_code == 200
    assert proxy.up.seen == [("POST", "/v1/threads", sent)]
    assert len(proxy.flags()) == 1


def test_a_redacted_compressed_body_goes_decoded_and_rewritten(proxy: Proxy) -> None:
    body = {"items": [{"type": "message", "role": "user", "content": f"mail {ADDRESS}"}]}
    r = httpx.post(
        f"{proxy.url}/v1/conversations",
        content=gzip.compress(json.dumps(body).encode()),
        headers={"content-encoding": "gzip", "content-type": "application/json"},
    )
    assert r.status_code == 200
    [(_, _, sent)] = proxy.up.seen
    assert ADDRESS not in json.loads(sent)["items"][0]["content"]


def test_a_body_without_a_model_is_checked_by_every_route(proxy: Proxy) -> None:
    with pytest.raises(openai.BadRequestError):  # only the "strict" route blocks the word
        proxy.client.conversations.create(
            items=[{"type": "message", "role": "user", "content": "classified"}]
        )
    assert proxy.up.seen == []


def test_a_body_with_a_model_is_checked_by_that_models_route(proxy: Proxy) -> None:
    proxy.client.images.generate(model="open", prompt="say forbidden")  # a route without any
    with pytest.raises(openai.BadRequestError):
        proxy.client.images.generate(model="strict", prompt="classified")
    proxy.client.images.generate(model="gpt-image-1", prompt="classified")  # the default route
    with pytest.raises(openai.BadRequestError):
        proxy.client.images.generate(model="gpt-image-1", prompt="say forbidden")
    assert [json.loads(b)["prompt"] for _, _, b in proxy.up.seen] == ["say forbidden", "classified"]


@pytest.mark.parametrize("path", ["/v1/Threads", "/v1/threads;x", "/v1/THREADS/t/Messages"])
def test_the_path_is_read_as_an_upstream_may_route_it(proxy: Proxy, path: str) -> None:
    body = {"messages": [{"role": "user", "content": "forbidden"}], "content": "forbidden"}
    r = httpx.post(proxy.url + path, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "policy_violation"
    assert proxy.up.seen == []


@pytest.mark.parametrize(
    "sent", [b"messages=forbidden", b'{"messages": [', b'["forbidden"]', b"\xff\xfe"]
)
def test_a_body_the_policies_cannot_read_is_refused(proxy: Proxy, sent: bytes) -> None:
    r = httpx.post(f"{proxy.url}/v1/threads", content=sent)
    assert r.status_code == 400, r.text  # observed before: relayed unread
    assert "prompt policies read this body" in r.json()["error"]["message"]
    assert proxy.up.seen == []


def test_a_key_given_twice_is_refused(proxy: Proxy) -> None:
    sent = b'{"prompt": "forbidden", "prompt": "a cat"}'
    r = httpx.post(f"{proxy.url}/v1/images/generations", content=sent)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "duplicate_key"
    assert proxy.up.seen == []


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("/v1/threads", b"messages=forbidden"),
        ("/v1/threads", b"\xff\xfe"),
        ("/v1/images/generations", b'{"prompt": "forbidden", "prompt": "a cat"}'),
    ],
    ids=["form", "not-utf8", "key-twice"],
)
def test_flag_only_policies_let_what_they_cannot_read_through_flagged(
    tmp_path: Path, path: str, sent: bytes
) -> None:
    """As on the text endpoints: a flag changes nothing, so a route whose policies only flag
    relays what they cannot read for sure, flagged as not read (before, a 400)."""
    with _proxy(tmp_path, default_route=RouteConfig(policies=[FLAG])) as p:
        r = httpx.post(p.url + path, content=sent)
        assert r.status_code == 200, r.text
        assert r.headers["x-calguard-flags"]
        assert [seen for _, _, seen in p.up.seen] == [sent]  # as it came
        [record] = p.flags()
        assert record["action"] == "flag"
        assert "not read" in json.dumps(record["verdicts"])


@assistants
def test_keys_that_fold_alike_in_a_map_pass_as_sent(proxy: Proxy) -> None:
    """A tool schema's properties ``id`` and ``ID``, metadata ``Env`` and ``env``: a map's keys
    (a 400 duplicate_key before); a message's ``content`` beside ``Content`` is still one."""
    props = {"id": {"type": "string"}, "ID": {"type": "integer"}}
    tool = {"type": "function", "function": {"name": "f", "parameters": {"properties": props}}}
    proxy.client.beta.assistants.create(
        model="gpt-4o",
        tools=[tool],
        metadata={"Env": "prod", "env": "eu"},  # type: ignore[list-item]
    )
    [(_, path, sent)] = proxy.up.seen
    assert path == "/v1/assistants"
    assert json.loads(sent)["tools"][0]["function"]["parameters"]["properties"] == props
    twice = b'{"messages": [{"role": "user", "content": "hi", "Content": "forbidden"}]}'
    r = httpx.post(f"{proxy.url}/v1/threads", content=twice)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "duplicate_key"
    assert len(proxy.up.seen) == 1


def test_a_large_body_is_read_whole_before_it_goes(proxy: Proxy) -> None:
    # over RETRIED_BYTES (4 MB): before, it streamed through unread
    filler = [{"role": "user", "content": "x" * 1000} for _ in range(4500)]
    body = {"messages": [*filler, {"role": "user", "content": "forbidden"}]}
    r = httpx.post(f"{proxy.url}/v1/threads", json=body, timeout=60)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "policy_violation"
    assert proxy.up.seen == []


@pytest.mark.parametrize(
    ("path", "parts"),
    [("/v1/threads", ["relay_checks.parse_json", "relay_checks.refuse_duplicate_keys"]),
     ("/v1/chat/completions", ["server.parse_json", "checks.refuse_duplicate_keys"])],
)  # fmt: skip
def test_a_large_body_is_parsed_off_the_event_loop(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch, path: str, parts: list[str]
) -> None:
    """Parsed and searched for keys given twice on the event loop, a 16 MB body of many small
    objects held every other request for about a second (a /healthz took 963 ms)."""
    where: list[str] = []
    for part in parts:
        module, name = part.split(".")
        real = getattr(importlib.import_module(f"guard.{module}"), name)

        def spy(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
                where.append("event loop")
            except RuntimeError:
                where.append("worker thread")
            return _real(*args, **kwargs)

        monkeypatch.setattr(f"guard.{part}", spy)
    text = "x" * (OFF_LOOP_BYTES + 1)
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}
    r = httpx.post(proxy.url + path, json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert len(where) >= len(parts), where  # each called at least once
    assert set(where) == {"worker thread"}, where


def test_a_body_over_max_body_bytes_is_refused(tmp_path: Path) -> None:
    policies = RouteConfig(policies=DENY_PROMPT)
    with _proxy(tmp_path, default_route=policies, max_body_bytes=5000) as p:
        body = {"messages": [{"role": "user", "content": "x" * 6000}]}
        r = httpx.post(f"{p.url}/v1/threads", json=body)
        assert r.status_code == 413, r.text  # observed before: relayed unread
        assert "max_body_bytes" in r.json()["error"]["message"]
        assert p.up.seen == []
        files = httpx.post(f"{p.url}/v1/files", files={"file": ("a.jsonl", b"y" * 6000)})
        assert files.status_code == 200  # a file upload still streams through
        assert len(p.up.seen) == 1


def test_other_relayed_paths_are_not_read(proxy: Proxy) -> None:
    client = proxy.client
    client.moderations.create(input="forbidden")  # read by no generating model
    client.files.create(file=("batch.jsonl", b'{"forbidden": 1}'), purpose="batch")
    httpx.post(f"{proxy.url}/v1/threads/thread_1", json={"metadata": {"a": "forbidden"}})
    httpx.get(f"{proxy.url}/v1/threads/thread_1/messages")
    httpx.post(f"{proxy.url}/v1/threads")  # no body: nothing to read
    assert [p for _, p, _ in proxy.up.seen] == [
        "/v1/moderations",
        "/v1/files",
        "/v1/threads/thread_1",
        "/v1/threads/thread_1/messages",
        "/v1/threads",
    ]
    assert proxy.flags() == []


@pytest.mark.parametrize(
    ("path", "sent", "headers"),
    [
        ("/v1/threads", b'{ "messages": [{"content": "forbidden"}], "messages": 1 }', {}),
        ("/v1/conversations", b"not json at all", {}),
        ("/v1/images/generations", gzip.compress(b'{"prompt": "forbidden"}'),
         {"content-encoding": "gzip"}),
    ],
    ids=["duplicate-keys", "not-json", "gzip"],
)  # fmt: skip
def test_without_prompt_policies_a_relayed_body_goes_as_its_bytes(
    bare: Proxy, path: str, sent: bytes, headers: dict[str, str]
) -> None:
    r = httpx.post(bare.url + path, content=sent, headers=headers)
    assert r.status_code == 200
    assert bare.up.seen == [("POST", path, sent)]
