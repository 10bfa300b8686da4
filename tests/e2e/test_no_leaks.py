"""Issue 9, nothing leaks: an upstream that echoes the Authorization header it got (in an error
body, a header, a streamed error) never hands calguard's upstream key to a client, a flag record
or a log line; neither do the proxy's own keys."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.store import SQLiteStore
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

UPSTREAM_KEY = "sk-upstream-SECRET-0123456789"
PROXY_KEY = "sk-proxy-client-key-42"
ADMIN_KEY = "sk-admin-key-0987654321"
ECHO = (400, {"x-echo-auth": "1"})
FLAG = [{"type": "max_length", "params": {"max_chars": 1}, "action": "flag", "on": "response"}]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, FakeUpstreamState, Path]]:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up:
        settings = Settings(
            upstream=f"{up}/v1",
            upstream_key=UPSTREAM_KEY,
            api_keys=[PROXY_KEY],
            admin_key=ADMIN_KEY,
            store=f"sqlite:///{tmp_path / 'l.db'}",
            max_attempts=1,
            routes={"flagged": RouteConfig(upstream_model="m", policies=FLAG)},
        )
        with serve_in_thread(create_app(settings)) as url:
            yield url, state, tmp_path / "l.db"


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=PROXY_KEY, max_retries=0)


def test_an_echoed_upstream_key_never_reaches_the_client(
    stack: tuple[str, FakeUpstreamState, Path], caplog: pytest.LogCaptureFixture
) -> None:
    url, state, _ = stack
    auth = {"Authorization": f"Bearer {PROXY_KEY}"}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    seen = []
    with caplog.at_level(logging.WARNING, logger="calguard"):
        for stream in (False, True):
            state.faults[:] = [ECHO]
            r = httpx.post(
                f"{url}/v1/chat/completions", json={**body, "stream": stream}, headers=auth
            )
            assert r.status_code == 400
            seen.append(r.text + json.dumps(dict(r.headers)))
        state.faults[:] = [ECHO]  # a calibrated request: the upstream's error through a task
        r = httpx.post(
            f"{url}/v1/chat/completions",
            json={**body, "guard": {"task": "mcq", "calibration": "none"},
                  "messages": [{"role": "user", "content": "Q?\nA. a\nB. b\nAnswer:"}]},
            headers=auth,
        )  # fmt: skip
        seen.append(r.text + json.dumps(dict(r.headers)))
        state.faults[:] = [ECHO]  # another path under /v1, relayed
        r = httpx.get(f"{url}/v1/models", headers=auth)
        seen.append(r.text + json.dumps(dict(r.headers)))
    for text in seen:
        assert "[REDACTED]" in text
        assert UPSTREAM_KEY not in text
    assert UPSTREAM_KEY not in caplog.text


def test_keys_never_reach_the_flag_log_or_metrics(
    stack: tuple[str, FakeUpstreamState, Path],
) -> None:
    url, _, db = stack
    with _client(url) as c:
        c.chat.completions.create(
            model="flagged",
            messages=[{"role": "user", "content": f"my keys: {UPSTREAM_KEY} {ADMIN_KEY}"}],
        )
    store = SQLiteStore(db)
    try:
        (rec,) = store.flags()
    finally:
        store.close()
    dumped = json.dumps(rec)
    for key in (UPSTREAM_KEY, ADMIN_KEY, PROXY_KEY):
        assert key not in dumped
    metrics = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert UPSTREAM_KEY not in metrics.text


def test_a_non_ascii_bearer_token_is_a_401(stack: tuple[str, FakeUpstreamState, Path]) -> None:
    url, _, _ = stack
    r = httpx.post(
        f"{url}/v1/chat/completions",
        content=b'{"model": "m", "messages": []}',
        headers={"Authorization": "Bearer cl\xe9-\xfc".encode("latin-1")},  # type: ignore[dict-item]
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"


def test_a_bad_query_parameter_is_a_400_without_source_paths(
    stack: tuple[str, FakeUpstreamState, Path],
) -> None:
    url, _, _ = stack
    r = httpx.get(
        f"{url}/v1/guard/flags?since=abc", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "since"
    assert ".py" not in r.text


def test_every_upstream_failure_writes_one_log_line(
    stack: tuple[str, FakeUpstreamState, Path], caplog: pytest.LogCaptureFixture
) -> None:
    url, state, _ = stack
    auth = {"Authorization": f"Bearer {PROXY_KEY}"}
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    with caplog.at_level(logging.WARNING, logger="calguard"):
        state.faults[:] = [(503, {"x-echo-auth": "1"})]
        r = httpx.post(f"{url}/v1/chat/completions", json=body, headers=auth)
    assert r.status_code == 503
    lines = [rec for rec in caplog.records if rec.name == "calguard"]
    assert len(lines) == 1
    assert "503" in lines[0].getMessage()
    assert UPSTREAM_KEY not in lines[0].getMessage()
