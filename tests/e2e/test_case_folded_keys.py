"""A parser differential on key case (review rv-guards): Go's ``encoding/json`` (Ollama's and
LocalAI's OpenAI endpoints, Go gateways) takes ``"Content"``, ``"CONTENT"`` or
``"me\u017f\u017fages"`` for ``content`` / ``messages``, the last of several winning. Before,
calguard read only the exact key, so a prompt in ``"Content"`` (alone, or after a clean
``"content"``) reached such an upstream unread, and ``"Model"`` beside ``"model"`` picked a
model no route allowed.

The upstream here reads a body as Go does (keys folded, the last one counting) and answers the
text it read; calguard runs in-process, the client is the real ``openai`` SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI, Request

import guard
from guard.config import RouteConfig, Settings
from guard.folded import fold
from guard.server import create_app
from guard.testing.servers import serve_in_thread

DENY = [
    {"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block", "on": "prompt"},
    {"type": "pii", "action": "redact", "on": "prompt"},
]
FLAG = [{**DENY[0], "action": "flag"}]


def _go_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object as Go's encoding/json fills a struct: keys folded, the last one winning."""
    return {fold(k): v for k, v in pairs}


class GoLikeUpstream:
    """Reads a chat body as Ollama does; answers the model it read and the last message's text."""

    def __init__(self) -> None:
        self.read: list[dict[str, Any]] = []
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> dict[str, Any]:
            body = json.loads(await request.body(), object_pairs_hook=_go_object)
            self.read.append(body)
            said = body["messages"][-1].get("content")
            message = {"role": "assistant", "content": str(said)}
            choice = {"index": 0, "finish_reason": "stop", "message": message}
            return {"id": "c", "object": "chat.completion", "created": 1, "model": body["model"],
                    "choices": [choice]}  # fmt: skip

        self.app = app


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[openai.OpenAI, GoLikeUpstream]]:
    up = GoLikeUpstream()
    with serve_in_thread(up.app) as upstream:
        settings = Settings(
            upstream=f"{upstream}/v1",
            store=f"sqlite:///{tmp_path / 'f.db'}",
            max_attempts=1,
            routes={
                "checked": RouteConfig(upstream_model="checked", policies=DENY),
                "open": RouteConfig(upstream_model="open"),
                "flagged": RouteConfig(upstream_model="flagged", policies=FLAG),
            },
        )
        with serve_in_thread(create_app(settings)) as url:
            yield openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0), up


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "Content": "say forbidden"},
        {"role": "user", "content": "hi", "Content": "say forbidden"},
        {"role": "user", "content": "hi", "CONTENT": "say forbidden"},
        {"role": "user", "content": [{"type": "text", "text": "hi", "TEXT": "forbidden"}]},
    ],
    ids=["lone", "after-clean", "upper", "part-text"],
)
def test_a_prompt_under_a_key_in_another_case_does_not_walk_around_the_policies(
    stack: tuple[openai.OpenAI, GoLikeUpstream], message: dict[str, Any]
) -> None:
    client, up = stack
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="checked", messages=[message])  # type: ignore[list-item]
    assert err.value.code in ("denylist", "duplicate_key")
    assert up.read == []  # observed before: the upstream read "say forbidden"


def test_messages_in_another_spelling_are_refused(
    stack: tuple[openai.OpenAI, GoLikeUpstream],
) -> None:
    client, up = stack
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="checked",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"me\u017f\u017fages": [{"role": "user", "content": "forbidden"}]},
        )
    assert err.value.code == "duplicate_key"
    assert up.read == []


def test_a_redaction_under_a_key_in_another_case_reaches_the_upstream(
    stack: tuple[openai.OpenAI, GoLikeUpstream],
) -> None:
    client, up = stack
    message = {"role": "user", "CONTENT": "mail bob@example.com"}
    answer = client.chat.completions.create(model="checked", messages=[message])  # type: ignore[list-item]
    assert answer.choices[0].message.content == "mail [REDACTED]"
    assert "bob@example.com" not in json.dumps(up.read)


def test_a_model_in_another_case_cannot_pick_another_model(
    stack: tuple[openai.OpenAI, GoLikeUpstream],
) -> None:
    client, up = stack
    for extra in ({"Model": "expensive"}, {"MODEL": "expensive"}):
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(
                model="open", messages=[{"role": "user", "content": "hi"}], extra_body=extra
            )
        assert err.value.code == "duplicate_key"
    assert up.read == []  # observed before: the upstream read model "expensive"
    # keys in another case elsewhere pass as sent where prompts are not checked
    ok = client.chat.completions.create(
        model="open",
        messages=[{"role": "user", "content": "hi", "Content": "x"}],  # type: ignore[list-item]
    )
    assert ok.choices[0].message.content == "x"


def test_a_schema_with_properties_in_any_case_still_passes(
    stack: tuple[openai.OpenAI, GoLikeUpstream],
) -> None:
    client, up = stack
    params = {"type": "object", "properties": {"userId": {"type": "string"}}}
    tool = {"type": "function", "function": {"name": "f", "parameters": params}}
    client.chat.completions.create(
        model="checked",
        messages=[{"role": "user", "content": "hi"}],
        tools=[tool],  # type: ignore[list-item]
    )
    assert len(up.read) == 1


def test_keys_that_fold_alike_in_a_map_pass_and_each_value_is_read(
    stack: tuple[openai.OpenAI, GoLikeUpstream],
) -> None:
    """A JSON schema's properties ``id`` and ``ID``, metadata ``Env`` and ``env``: a map's keys,
    kept apart by Go too (a 400 duplicate_key before, on every route with a prompt policy)."""
    client, up = stack
    props = {"id": {"type": "string"}, "ID": {"type": "integer", "description": "row number"}}
    tool = {"type": "function", "function": {"name": "f", "parameters": {"properties": props}}}
    schema = {"type": "object", "properties": props}
    fmt = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
    client.chat.completions.create(
        model="checked",
        messages=[{"role": "user", "content": "hi"}],
        tools=[tool],  # type: ignore[list-item]
        response_format=fmt,  # type: ignore[arg-type]
        extra_body={"metadata": {"Env": "prod", "env": "eu"}},
    )
    assert len(up.read) == 1  # (this upstream folds every key: Go keeps a map's apart)
    # every value of the map is still read: the second property's description too
    props["ID"]["description"] = "say forbidden"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="checked",
            messages=[{"role": "user", "content": "hi"}],
            tools=[tool],  # type: ignore[list-item]
        )
    assert err.value.code == "denylist"
    assert len(up.read) == 1


def test_the_wrapper_reads_keys_in_another_case_too(tmp_path: Path) -> None:
    up = GoLikeUpstream()
    with serve_in_thread(up.app) as upstream:
        plain = openai.OpenAI(base_url=f"{upstream}/v1", api_key="k", max_retries=0)
        wrapped = guard.wrap(
            plain, store=f"sqlite:///{tmp_path / 'w.db'}", route=RouteConfig(policies=DENY)
        )
        with pytest.raises(guard.PolicyViolationError):
            wrapped.chat.completions.create(
                model="m",
                messages=[{"role": "user", "Content": "say forbidden"}],  # type: ignore[list-item]
            )
        answer = wrapped.chat.completions.create(
            model="m",
            messages=[{"role": "user", "CONTENT": "mail bob@example.com"}],  # type: ignore[list-item]
        )
    assert answer.choices[0].message.content == "mail [REDACTED]"
    assert "bob@example.com" not in json.dumps(up.read)  # before: the address went as it was


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "flagged", "messages": [{"role": "user", "content": "hi", '
        b'"Content": "say forbidden"}]}',
        b'{"model": "flagged", "messages": [{"role": "user", "content": "hi", '
        b'"content": "say forbidden"}]}',
    ],
    ids=["in-another-case", "given-twice"],
)
def test_flag_only_policies_let_an_ambiguous_key_through_flagged_as_not_read(
    stack: tuple[openai.OpenAI, GoLikeUpstream], body: bytes
) -> None:
    """A flag changes nothing, so a route whose policies only flag does not refuse what they
    cannot read for sure (as for a prompt sent as token IDs): before, a 400 duplicate_key."""
    client, up = stack  # the SDK cannot send a key twice: the bytes go as written
    got = httpx.post(f"{client.base_url}chat/completions", content=body,
                     headers={"content-type": "application/json"})  # fmt: skip
    assert got.status_code == 200, got.text
    assert "denylist" in got.headers["x-calguard-flags"]
    assert len(up.read) == 1  # the body went as it came
