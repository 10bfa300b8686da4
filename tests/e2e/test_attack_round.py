"""Ways around the policies and the relay's allow-list an adversarial review found (issue 10
round), each on the wire: a path encoded twice, the model route's path, an ``extra_body`` left
in the body, and malformed fields that were 500s."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import guard
from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import free_port, serve_in_thread
from tests.e2e.asgi_recorder import Recorder as BaseRecorder
from tests.e2e.wire import raw

DENY = [{"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block"}]
DENY_PROMPT = [{**DENY[0], "on": "prompt"}]
USER = [{"role": "user", "content": "say forbidden"}]


class Recorder(BaseRecorder):
    """Answers a completion whose text is the request's body."""

    def answer(self, body: bytes) -> bytes:
        choice = {"index": 0, "text": body.decode(), "finish_reason": "stop"}
        answer = {"id": "c", "object": "text_completion", "created": 1, "choices": [choice]}
        return json.dumps(answer).encode()


@pytest.fixture
def proxy(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Recorder]]:
    up = Recorder()
    with serve_in_thread(up) as upstream:
        settings = Settings(
            upstream=f"{upstream}/v1",
            store=f"sqlite:///{tmp_path / 'a.db'}",
            default_route=RouteConfig(policies=DENY_PROMPT),
            routes={"open": RouteConfig(upstream_model="m")},
            passthrough_paths=getattr(request, "param", None),
        )
        with serve_in_thread(create_app(settings)) as url:
            yield url, up


@pytest.mark.parametrize(
    "path",
    [
        "/v1/x/%252e%252e/completions",
        "/v1/x/%252E%252E/chat/completions",
        "/v1/x/.%252e/completions",
        "/v1/chat/%252e%252e/completions",
    ],
)
def test_a_path_encoded_twice_is_not_relayed_into_a_text_endpoint(
    proxy: tuple[str, Recorder], path: str
) -> None:
    # The server decodes the path once; the HTTP client under the relay resolved what was left
    # (%2e%2e as ..) into POST /v1/completions, which no policy read.
    url, up = proxy
    body = json.dumps({"model": "m", "prompt": "say forbidden", "messages": USER}).encode()
    assert raw(url, "POST", path, body) == 404
    assert up.seen == []


ALLOW = ["/models*", "/chat/completions*"]
AROUND_THE_LIST = [
    ("POST", "/v1/chat/completions/%252e%252e/%252e%252e/files"),
    ("POST", "/v1/models/%252e%252e/batches"),
    ("GET", "/v1/models/../files"),  # the model route did not check its path at all
    ("GET", "/v1/models/%2e%2e/files/file-1/content"),
    ("GET", "/v1/models/%2e%2e/batches"),
]


@pytest.mark.parametrize("proxy", [ALLOW], indirect=True)
@pytest.mark.parametrize(("method", "path"), AROUND_THE_LIST)
def test_files_and_batches_stay_out_of_an_allow_list_whatever_the_path(
    proxy: tuple[str, Recorder], method: str, path: str
) -> None:
    url, up = proxy
    assert raw(url, method, path, b"{}" if method == "POST" else b"") == 404
    assert up.seen == []
    assert raw(url, "GET", "/v1/models/m") == 200  # the list still relays what it names
    assert [(m, p) for m, p, _ in up.seen] == [("GET", "/v1/models/m")]


def test_an_extra_body_left_in_the_body_is_refused_where_prompts_are_checked(
    proxy: tuple[str, Recorder],
) -> None:
    # The OpenAI SDK (guard.wrap) and LiteLLM (a LiteLLM route) merge a body's 'extra_body'
    # over the fields the policies read.
    url, up = proxy
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "extra_body": {}}
    r = httpx.post(f"{url}/v1/chat/completions", json={**body, "extra_body": {"messages": USER}})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "unreadable_prompt"
    assert r.json()["error"]["param"] == "extra_body"
    assert up.seen == []
    r = httpx.post(f"{url}/v1/chat/completions", json={**body, "model": "open"})
    assert r.status_code == 200  # no prompt policy: untouched, the key too
    assert json.loads(up.seen[-1][2])["extra_body"] == {}


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.completions.create(
            model="m", prompt="ok", extra_body={"extra_body": {"prompt": "say forbidden"}}
        ),
        lambda c: c.completions.create(
            model="m", prompt="ok", extra_body={"extra_body": {"prompt_embeds": "AAAA"}}
        ),
        lambda c: c.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "ok"}],
            extra_body={"extra_body": {"messages": USER}},
        ),
        lambda c: c.embeddings.create(
            model="m", input="ok", extra_body={"extra_body": {"input": "forbidden"}}
        ),
    ],
    ids=["completions", "embeds", "chat", "embeddings"],
)
def test_the_wrapper_refuses_an_extra_body_inside_extra_body(tmp_path: Path, send: Any) -> None:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up:
        client = guard.wrap(
            openai.OpenAI(base_url=f"{up}/v1", api_key="x", max_retries=0),
            store=f"sqlite:///{tmp_path / 'w.db'}",
            route=RouteConfig(policies=DENY),
        )
        with pytest.raises(openai.BadRequestError, match="extra_body"):
            send(client)
        client.close()
    assert state.requests == []


def test_a_litellm_route_refuses_an_extra_body_that_would_replace_the_messages(
    tmp_path: Path,
) -> None:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up:
        route = RouteConfig(provider="litellm", upstream_model="openai/m", api_base=f"{up}/v1",
                            api_key="route-key", policies=DENY_PROMPT)  # fmt: skip
        settings = Settings(
            upstream=f"http://127.0.0.1:{free_port()}/v1",
            store=f"sqlite:///{tmp_path / 'l.db'}",
            routes={"lite": route},
        )
        with serve_in_thread(create_app(settings)) as url:
            body = {"model": "lite", "messages": [{"role": "user", "content": "hi"}]}
            r = httpx.post(
                f"{url}/v1/chat/completions",
                json={**body, "extra_body": {"messages": USER}},
                timeout=60,
            )
    assert r.status_code == 400
    assert state.requests == []


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/v1/chat/completions", {"tools": 5}),
        ("/v1/chat/completions", {"tools": True}),
        ("/v1/responses", {"input": [{"role": "user", "content": "hi", "summary": 5}]}),
    ],
)
def test_a_malformed_list_field_is_not_a_500_where_prompts_are_checked(
    proxy: tuple[str, Recorder], path: str, extra: dict[str, Any]
) -> None:
    # Nothing in it to read: the upstream is the one to refuse it (this one answers).
    url, _ = proxy
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
    assert raw(url, "POST", path, json.dumps(body).encode()) < 500


DUPLICATED = [
    # the key read last is checked; a parser that keeps the first (RapidJSON's FindMember,
    # some strict decoders) would see the other text
    b'{"model": "m", "messages": [{"role": "user", "content": "say forbidden"}],'
    b' "messages": [{"role": "user", "content": "hi"}]}',
    b'{"model": "m", "messages": [{"role": "user", "content": "say forbidden", "content": "hi"}]}',
    b'{"model": "m", "prompt": "say forbidden", "prompt": "hi"}',
]


@pytest.mark.parametrize("body", DUPLICATED, ids=["messages", "content", "prompt"])
def test_a_key_given_twice_is_refused_where_prompts_are_checked(
    proxy: tuple[str, Recorder], body: bytes
) -> None:
    url, up = proxy
    path = "/v1/completions" if b'"prompt"' in body else "/v1/chat/completions"
    r = httpx.post(f"{url}{path}", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "duplicate_key"
    assert "forbidden" not in r.text  # the error names the key, not the text
    assert up.seen == []
    opened = body.replace(b'"model": "m"', b'"model": "open"')
    r = httpx.post(f"{url}{path}", content=opened, headers={"content-type": "application/json"})
    assert r.status_code == 200  # no prompt policy: not refused


@pytest.mark.parametrize(
    "model", [b'"model": "unserved"', b'"m\\u006fdel": "unserved"'], ids=["plain", "escaped"]
)
def test_a_model_given_twice_is_refused_on_every_route(
    proxy: tuple[str, Recorder], model: bytes
) -> None:
    # Only "open" and the default route's "m" are served; an upstream whose parser keeps the
    # first key would have served "unserved".
    url, up = proxy
    body = b"{" + model + b', "prompt": "hi", "model": "open"}'
    r = httpx.post(
        f"{url}/v1/completions", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert (r.json()["error"]["code"], r.json()["error"]["param"]) == ("duplicate_key", "model")
    assert up.seen == []
    nested = b'{"model": "open", "prompt": "the model", "tools": [{"model": 1, "model": 2}]}'
    r = httpx.post(
        f"{url}/v1/completions", content=nested, headers={"content-type": "application/json"}
    )
    assert r.status_code == 200  # a nested key given twice is not the routing's business
