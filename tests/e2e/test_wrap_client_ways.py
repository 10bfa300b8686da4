"""``client.with_raw_response`` and ``client.with_streaming_response`` of a wrapped client (the
SDK's client-level forms) are the wrapped resources' own forms, through the real ``openai``
client against the scripted upstream on 127.0.0.1. Before, they were the unwrapped client's:
``wrapped.with_raw_response.chat.completions.create(...)`` sent a blocked prompt upstream
unread, and ``wrapped.with_raw_response.beta`` went around the wrapper's refusal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import guard
from guard.errors import PolicyViolationError
from guard.testing.servers import serve_in_thread
from tests.e2e.scripted_upstream import Script, create_scripted_upstream
from tests.e2e.test_attack_round import DENY_PROMPT
from tests.e2e.test_wrap_relayed import amade, made

WAYS = ["with_raw_response", "with_streaming_response"]
WORD = [{"role": "user", "content": "say forbidden"}]
CALLS: dict[str, Callable[[Any], Any]] = {
    "chat": lambda w: w.chat.completions.create(model="m", messages=WORD),
    "completions": lambda w: w.completions.create(model="m", prompt="say forbidden"),
    "responses": lambda w: w.responses.create(model="m", input="say forbidden"),
    "embeddings": lambda w: w.embeddings.create(model="e", input="say forbidden"),
    "images": lambda w: w.images.generate(prompt="say forbidden"),
    "conversations": lambda w: w.conversations.items.create(
        "conv_1", items=[{"type": "message", "role": "user", "content": "say forbidden"}]
    ),
}


@pytest.fixture
def upstream() -> Iterator[tuple[Script, str]]:
    script = Script()
    with serve_in_thread(create_scripted_upstream(script)) as url:
        yield script, f"{url}/v1"


def _wrap(client: Any, tmp_path: Path, policies: list[dict[str, Any]]) -> Any:
    route = guard.RouteConfig(policies=policies)
    return guard.wrap(client, store=f"sqlite:///{tmp_path / 'w.db'}", route=route)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", list(CALLS))
def test_a_blocked_prompt_through_the_clients_way_is_never_sent(
    upstream: tuple[Script, str], tmp_path: Path, name: str, way: str
) -> None:
    script, url = upstream
    client = openai.OpenAI(base_url=url, api_key="sk-x", max_retries=0)
    with _wrap(client, tmp_path, DENY_PROMPT) as wrapped:
        with pytest.raises(openai.BadRequestError) as got:
            made(CALLS[name](getattr(wrapped, way)), way)
        assert isinstance(got.value, PolicyViolationError)
    assert script.requests == []  # observed before: sent, unread


@pytest.mark.parametrize("way", WAYS)
def test_the_async_clients_way_is_checked(
    upstream: tuple[Script, str], tmp_path: Path, way: str
) -> None:
    script, url = upstream

    async def go() -> None:
        client = openai.AsyncOpenAI(base_url=url, api_key="sk-x", max_retries=0)
        async with _wrap(client, tmp_path, DENY_PROMPT) as wrapped:
            form = getattr(wrapped, way)
            for name in CALLS:
                with pytest.raises(openai.BadRequestError):
                    await amade(CALLS[name](form), way)

    asyncio.run(go())
    assert script.requests == []  # observed before: sent, unread


@pytest.mark.parametrize("way", WAYS)
def test_what_the_wrapper_refuses_is_refused_through_the_clients_way(
    upstream: tuple[Script, str], tmp_path: Path, way: str
) -> None:
    client = openai.OpenAI(base_url=upstream[1], api_key="sk-x", max_retries=0)
    with _wrap(client, tmp_path, []) as wrapped:
        with pytest.raises(AttributeError, match="around its policies"):
            _ = getattr(wrapped, way).beta  # observed before: the client's own
        with pytest.raises(AttributeError, match="around its policies"):
            _ = getattr(wrapped, way).responses.compact


def test_realtime_is_refused_as_beta_is(upstream: tuple[Script, str], tmp_path: Path) -> None:
    """``realtime.connect`` opens a WebSocket to the provider (and ``client_secrets`` and
    ``calls.accept`` carry a session's instructions): text a model reads, around the policies.
    Before, ``wrapped.realtime`` was the client's own."""
    client = openai.OpenAI(base_url=upstream[1], api_key="sk-x", max_retries=0)
    with _wrap(client, tmp_path, []) as wrapped:
        for form in (wrapped, wrapped.with_raw_response, wrapped.with_streaming_response):
            with pytest.raises(AttributeError, match="around its policies"):
                _ = form.realtime


def test_without_policies_the_clients_way_answers_as_the_plain_clients(
    upstream: tuple[Script, str], tmp_path: Path
) -> None:
    script, url = upstream
    plain = openai.OpenAI(base_url=url, api_key="sk-x", max_retries=0)
    client = openai.OpenAI(base_url=url, api_key="sk-x", max_retries=0)
    with _wrap(client, tmp_path, []) as wrapped:
        for c in (plain, wrapped):
            raw = c.with_raw_response.chat.completions.create(model="m", messages=WORD)
            assert raw.parse().choices[0].message.content == "hello"
            with c.with_streaming_response.models.list() as r:
                assert [m["id"] for m in r.json()["data"]] == ["a", "b"]
        assert raw.headers["x-request-id"] == "req_3"
        assert raw.headers["x-calguard-request-id"].startswith("cg-")  # the pipeline's
    first, second = script.requests[0], script.requests[2]
    assert (first["path"], first["body"]) == (second["path"], second["body"])
    plain.close()
