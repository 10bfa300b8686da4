"""Defects a review found by attacking the request path, each on the wire (issue 9)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

PII = [{"type": "pii", "action": "redact", "on": "response"}]
DENY = [{"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block"}]


def scripted(text: str) -> dict[str, float] | None:
    return {text[5:]: 1.0} if text.startswith("say: ") else None


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, FakeUpstreamState, FakeUpstreamState]]:
    state = FakeUpstreamState(SimulatedResponder(), text_responder=scripted)
    attacker = FakeUpstreamState(SimulatedResponder())
    with (
        serve_in_thread(create_fake_upstream(state)) as up,
        serve_in_thread(create_fake_upstream(attacker)) as evil,
    ):
        settings = Settings(
            upstream=f"{up}/v1",
            store=f"sqlite:///{tmp_path / 'r.db'}",
            passthrough_paths=["/files*"],
            routes={
                "claude": RouteConfig(
                    provider="litellm",
                    upstream_model="openai/m",
                    api_base=f"{up}/v1",
                    api_key="sk-route-SECRET-abcdef",
                ),
                "pii": RouteConfig(upstream_model="m", policies=PII),
                "deny": RouteConfig(upstream_model="m", policies=DENY),
            },
        )
        with serve_in_thread(create_app(settings)) as url:
            yield url, state, attacker, evil  # type: ignore[misc]


def test_a_client_cannot_send_a_litellm_routes_key_elsewhere(stack: Any) -> None:
    url, state, attacker, evil = stack
    for field in ("api_base", "base_url"):
        httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "claude", "messages": user("hi"), field: f"{evil}/v1"},
            timeout=300,  # LiteLLM's first call imports it: slow on a loaded machine
        )
    assert attacker.headers == []  # nothing reached the other server
    assert state.headers[-1]["authorization"] == "Bearer sk-route-SECRET-abcdef"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/x/%2e%2e/chat/completions",
        "/v1/chat/%2e/completions",
        "/v1/chat/./completions",
        "/v1/chat/completions/",
        "/v1/files/%2e%2e/chat/completions",
        "/v1/files/%2E%2E/%2E%2E/admin/secret",
    ],
)
def test_path_tricks_never_reach_the_upstream(stack: Any, path: str) -> None:
    url, state, _, _ = stack
    n = len(state.requests)
    r = httpx.post(
        url + path, json={"model": "deny", "messages": user("a forbidden word")}, timeout=30
    )
    assert r.status_code in (404, 400)
    assert len(state.requests) == n


@pytest.mark.parametrize("stream", ["false", "0", 1])
def test_a_stream_flag_that_is_not_a_boolean_is_a_400(stack: Any, stream: Any) -> None:
    url, state, _, _ = stack
    n = len(state.requests)
    r = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "deny", "messages": user("say: forbidden"), "stream": stream},
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "stream"
    assert len(state.requests) == n


def test_a_redacted_answer_keeps_no_logprobs_that_spell_it(stack: Any) -> None:
    url, _, _, _ = stack
    r = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "pii", "messages": user("say: mail bob@example.com now"), "logprobs": True},
    )
    assert r.status_code == 200
    assert "bob@example.com" not in r.text
    assert r.json()["choices"][0]["logprobs"] is None


def test_a_key_made_first_by_another_shape_is_a_400_not_a_500(stack: Any) -> None:
    url, _, _, _ = stack
    three = "Question: Pick?\nA. a\nB. b\nC. c\nAnswer:"
    four = "Question: Pick?\nA. a\nB. b\nC. c\nD. d\nAnswer:"

    async def go() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as c:
            replies = await asyncio.gather(
                *(
                    c.post(
                        f"{url}/v1/chat/completions",
                        json={
                            "model": "m",
                            "messages": user(q),
                            "guard": {"calibration": "pride", "key": "race"},
                        },
                    )
                    for q in (three, four, three, four)
                )
            )
            return [r.status_code for r in replies]

    statuses = asyncio.run(go())
    assert 500 not in statuses
    assert set(statuses) <= {200, 400}


def test_a_number_out_of_range_is_a_400(stack: Any) -> None:
    url, _, _, _ = stack
    r = httpx.post(
        f"{url}/v1/chat/completions",
        content=b'{"model": "m", "messages": [{"role": "user", "content": "x"}], '
        b'"temperature": 1e999}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400


def test_a_password_in_the_upstream_url_never_leaves(tmp_path: Path) -> None:
    settings = Settings(
        upstream="http://svc:hunter2-upstream-pw@127.0.0.1:9/v1",
        store=f"sqlite:///{tmp_path / 'p.db'}",
        max_attempts=1,
    )
    with serve_in_thread(create_app(settings)) as url:
        r = httpx.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": user("x")})
        ready = httpx.get(f"{url}/readyz")
    assert r.status_code >= 500
    assert "hunter2" not in r.text + json.dumps(dict(r.headers))
    assert "hunter2" not in ready.text
