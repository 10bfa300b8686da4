"""``guard.wrap(client)`` reads the calls whose bodies a model reads later as the proxy reads
them (``guard/relayed_calls.py``, ``guard/relay_checks.py``): ``conversations.create``,
``conversations.items.create``, ``images.generate``, ``audio.speech.create``, plain,
``with_raw_response`` and ``with_streaming_response``, sync and async, through the real
``openai`` client against the scripted upstream on 127.0.0.1. Before, each was the wrapped
client's own call: a blocked word reached the upstream, an address went unredacted, a flag
was never recorded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import guard
from guard.errors import PolicyViolationError
from guard.store import SQLiteStore
from guard.testing.servers import serve_in_thread
from tests.e2e.scripted_upstream import Script, create_scripted_upstream
from tests.e2e.test_attack_round import DENY_PROMPT

PII = {"type": "pii", "action": "redact", "on": "prompt"}
FLAG = {"type": "regex", "params": {"patterns": ["suspicious"]}, "action": "flag", "on": "prompt"}
POLICIES = [*DENY_PROMPT, PII, FLAG]
ADDRESS = "alice@example.com"
WAYS = ["", "with_raw_response", "with_streaming_response"]


def _on(resource: Any, way: str) -> Any:
    return getattr(resource, way) if way else resource


Call = Callable[[Any, str, str], Any]  # (client, way, text) -> what the call returns
# name -> (the upstream path, the path the flag record names, the call)
CALLS: dict[str, tuple[str, str, Call]] = {
    "conversations.create": ("conversations", "/conversations",
        lambda c, w, t: _on(c.conversations, w).create(
            items=[{"type": "message", "role": "user", "content": t}])),
    "conversations.items.create": ("conversations/conv_1/items", "/conversations/{id}/items",
        lambda c, w, t: _on(c.conversations.items, w).create("conv_1", items=[
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": t}]}])),
    "images.generate": ("images/generations", "/images/generations",
        lambda c, w, t: _on(c.images, w).generate(model="gpt-image-1", prompt=t)),
    "audio.speech.create": ("audio/speech", "/audio/speech",
        lambda c, w, t: _on(c.audio.speech, w).create(model="tts-1", voice="alloy", input=t)),
    "audio.speech.create-instructions": ("audio/speech", "/audio/speech",
        lambda c, w, t: _on(c.audio.speech, w).create(
            model="tts-1", voice="alloy", input="hello", instructions=t)),
    # the form taken from the parent resource
    "conversations.<way>.items.create": ("conversations/conv_1/items",
        "/conversations/{id}/items",
        lambda c, w, t: _on(c.conversations, w).items.create("conv_1", items=[
            {"type": "message", "role": "user", "content": t}])),
    "audio.<way>.speech.create": ("audio/speech", "/audio/speech",
        lambda c, w, t: _on(c.audio, w).speech.create(model="tts-1", voice="alloy", input=t)),
}  # fmt: skip
# The route (by the model the body names) a flag record names; "*": every route's policies.
ROUTES = {
    "images.generate": "gpt-image-1",
    "audio.speech.create": "tts-1",
    "audio.speech.create-instructions": "tts-1",
    "audio.<way>.speech.create": "tts-1",
}


def made(out: Any, way: str) -> Any:
    """What the call returned; a streamed response entered and read, as its caller would."""
    if way == "with_streaming_response":
        with out as response:
            response.read()
        return response
    return out


class Wrapped:
    def __init__(self, url: str, db: Path, policies: list[dict[str, Any]]) -> None:
        self.db = db
        self.url = f"{url}/v1"
        self.plain = openai.OpenAI(base_url=self.url, api_key="sk-x", max_retries=0)
        inner = openai.OpenAI(base_url=self.url, api_key="sk-x", max_retries=0)
        route = guard.RouteConfig(policies=policies)
        self.client = guard.wrap(inner, store=f"sqlite:///{db}", route=route)

    def flags(self) -> list[dict[str, Any]]:
        store = SQLiteStore(str(self.db))
        try:
            return store.flags()
        finally:
            store.close()


@pytest.fixture
def script() -> Iterator[tuple[Script, str]]:
    s = Script()
    with serve_in_thread(create_scripted_upstream(s)) as url:
        yield s, url


@pytest.fixture
def wrapped(script: tuple[Script, str], tmp_path: Path) -> Iterator[Wrapped]:
    w = Wrapped(script[1], tmp_path / "w.db", POLICIES)
    yield w
    w.plain.close()
    w.client.close()


def _sent(script: Script) -> list[tuple[str, str, Any]]:
    return [(r["method"], r["path"], r["body"]) for r in script.requests]


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", list(CALLS))
def test_a_blocked_word_is_refused_as_a_blocked_chat_prompt_and_never_sent(
    wrapped: Wrapped, script: tuple[Script, str], name: str, way: str
) -> None:
    with pytest.raises(openai.BadRequestError) as chat:
        wrapped.client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "say forbidden"}]
        )
    with pytest.raises(openai.BadRequestError) as got:
        made(CALLS[name][2](wrapped.client, way, "please say forbidden"), way)
    assert type(got.value) is type(chat.value)  # the same class: also PolicyViolationError
    assert isinstance(got.value, PolicyViolationError)
    assert got.value.status_code == 400
    assert got.value.body == chat.value.body
    assert got.value.body["type"] == "policy_violation"
    assert got.value.body["code"] == "denylist"
    assert _sent(script[0]) == []  # observed before: sent, the word unread
    _, record = wrapped.flags()  # the chat prompt's, then this one's
    assert record["action"] == "block"
    assert record["policies"] == ["denylist"]
    assert record["request_id"] == got.value.request_id


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", list(CALLS))
def test_an_address_goes_redacted(
    wrapped: Wrapped, script: tuple[Script, str], name: str, way: str
) -> None:
    path, where, call = CALLS[name]
    made(call(wrapped.client, way, f"write to {ADDRESS} today"), way)
    [(method, seen_path, body)] = _sent(script[0])
    assert (method, seen_path) == ("POST", path)
    sent = json.dumps(body)
    assert ADDRESS not in sent  # observed before: the address, unredacted
    assert "write to " in sent
    assert " today" in sent
    [record] = wrapped.flags()
    assert record["policies"] == ["pii"]
    assert ADDRESS not in json.dumps(record)
    assert record["response"] == {"relayed": f"POST /v1{where}"}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", list(CALLS))
def test_a_flagged_call_goes_as_made_and_is_recorded(
    wrapped: Wrapped, script: tuple[Script, str], name: str, way: str
) -> None:
    _, where, call = CALLS[name]
    made(call(wrapped.plain, way, "a suspicious note"), way)
    made(call(wrapped.client, way, "a suspicious note"), way)
    plain, ours = script[0].requests
    assert (ours["path"], ours["body"]) == (plain["path"], plain["body"])
    assert ours["headers"]["content-length"] == plain["headers"]["content-length"]
    [record] = wrapped.flags()  # observed before: no record
    assert record["action"] == "flag"
    assert record["policies"] == ["regex"]
    assert record["route"] == ROUTES.get(name, "*")
    assert record["response"] == {"relayed": f"POST /v1{where}"}


def test_a_redaction_in_extra_body_goes_redacted(
    wrapped: Wrapped, script: tuple[Script, str]
) -> None:
    wrapped.client.images.generate(
        prompt="a cat", extra_body={"prompt": f"mail {ADDRESS}", "style": "vivid"}
    )
    [(_, _, body)] = _sent(script[0])
    assert ADDRESS not in body["prompt"]
    assert body["style"] == "vivid"


def _async_run(url: str, db: Path, test: Callable[[Any, Any], Any]) -> None:
    async def go() -> None:
        plain = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-x", max_retries=0)
        inner = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-x", max_retries=0)
        route = guard.RouteConfig(policies=POLICIES)
        client = guard.wrap(inner, store=f"sqlite:///{db}", route=route)
        try:
            await test(plain, client)
        finally:
            await plain.close()
            await client.close()

    asyncio.run(go())


async def amade(out: Any, way: str) -> Any:
    if way == "with_streaming_response":
        async with out as response:
            await response.read()
        return response
    return await out


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", list(CALLS))
def test_async_block_redact_and_flag(
    script: tuple[Script, str], tmp_path: Path, name: str, way: str
) -> None:
    path, _, call = CALLS[name]
    requests = script[0].requests

    async def test(plain: Any, client: Any) -> None:
        with pytest.raises(openai.BadRequestError) as got:
            await amade(call(client, way, "please say forbidden"), way)
        assert isinstance(got.value, PolicyViolationError)
        assert requests == []  # observed before: sent
        await amade(call(client, way, f"write to {ADDRESS}"), way)
        assert ADDRESS not in json.dumps(requests[0]["body"])  # observed before: sent as is
        assert requests[0]["path"] == path
        await amade(call(plain, way, "a suspicious note"), way)
        await amade(call(client, way, "a suspicious note"), way)
        assert requests[2]["body"] == requests[1]["body"]

    _async_run(script[1], tmp_path / "a.db", test)
    store = SQLiteStore(str(tmp_path / "a.db"))
    policies = [(f["action"], f["policies"]) for f in store.flags()]
    store.close()
    # observed before: no record
    assert sorted(policies) == [("block", ["denylist"]), ("flag", ["pii"]), ("flag", ["regex"])]


def test_a_body_with_two_keys_that_fold_alike_is_refused(
    wrapped: Wrapped, script: tuple[Script, str]
) -> None:
    with pytest.raises(openai.BadRequestError) as got:
        wrapped.client.images.generate(prompt="a cat", extra_body={"Prompt": "forbidden"})
    assert got.value.code == "duplicate_key"
    assert _sent(script[0]) == []


def test_items_given_as_a_generator_go_as_the_plain_clients(
    wrapped: Wrapped, script: tuple[Script, str]
) -> None:
    """The policies read a generator once: the call is made with what they read."""

    def items(text: str) -> Iterator[dict[str, Any]]:
        yield {"type": "message", "role": "user", "content": text}

    for c in (wrapped.plain, wrapped.client, wrapped.client):
        c.conversations.create(items=items("a suspicious note"))
    wrapped.client.conversations.create(items=items(f"mail {ADDRESS}"))
    plain, flagged, again, redacted = (r["body"] for r in script[0].requests)
    assert flagged == again == plain  # observed before this fix: {"items": []}
    assert redacted["items"][0]["content"] == "mail [REDACTED]"
