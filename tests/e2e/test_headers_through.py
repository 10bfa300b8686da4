"""Headers cross calguard as they were sent, both ways (transparent by default).

Before this change the client's headers were cut to four (``OpenAI-Organization``,
``-Project``, ``-Beta``, ``Idempotency-Key``): the SDK's ``User-Agent`` and ``X-Stainless-*``,
a provider's attribution headers (OpenRouter's ``HTTP-Referer`` / ``X-Title``) and any custom
header never reached the upstream. And a field the upstream sent on two lines (Cloudflare's two
``Set-Cookie``) reached the client as one: the last. Through a real ``calguard`` app on
127.0.0.1, the real ``openai`` client and raw HTTP, against an upstream that records what it
got and answers every path with repeated fields.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from guard.config import Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread
from tests.e2e.wire import raw_with_header

COOKIES = ["__cf_bm=abc; path=/; HttpOnly", "_cfuvid=def; path=/; Secure"]
LINKS = ['<https://a.example>; rel="a"', '<https://b.example>; rel="b"']
PROXY_KEY = "cg-proxy-key-0123456789"
CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ],
}


@dataclass
class Seen:
    headers: list[dict[str, str]] = field(default_factory=list)


def repeated(response: Response) -> Response:
    for cookie in COOKIES:
        response.headers.append("set-cookie", cookie)
    for link in LINKS:
        response.headers.append("link", link)
    return response


def wire_upstream(seen: Seen) -> FastAPI:
    """Records every request's headers; answers chat (whole or streamed), anything else, and
    a 429 on ``/v1/limited``, each with two ``Set-Cookie`` and two ``Link`` lines."""
    app = FastAPI()

    @app.api_route("/v1/{path:path}", methods=["GET", "POST", "DELETE"])
    async def anything(path: str, request: Request) -> Response:
        seen.headers.append(dict(request.headers))
        body = await request.body()
        if path == "limited" or b'"model":"limited"' in body.replace(b" ", b""):
            return repeated(Response(b'{"error": {"message": "slow down"}}', 429))
        if path == "chat/completions" and json.loads(body).get("stream"):
            chunk = {**CHAT, "object": "chat.completion.chunk"}
            chunk["choices"] = [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]
            events = [f"data: {json.dumps(chunk)}\n\n".encode(), b"data: [DONE]\n\n"]

            async def sse() -> AsyncIterator[bytes]:
                for e in events:
                    yield e

            return repeated(StreamingResponse(sse(), media_type="text/event-stream"))
        if path == "chat/completions":
            return repeated(Response(json.dumps(CHAT).encode(), media_type="application/json"))
        return repeated(Response(b'{"object": "list", "data": []}', media_type="application/json"))

    return app


@dataclass
class Stack:
    seen: Seen
    url: str


def stack_for(tmp_path: Path, **settings: object) -> Iterator[Stack]:
    seen = Seen()
    with serve_in_thread(wire_upstream(seen)) as up:
        s = Settings(upstream=f"{up}/v1", store=f"sqlite:///{tmp_path / 'h.db'}", **settings)
        with serve_in_thread(create_app(s)) as url:
            yield Stack(seen, url)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    yield from stack_for(tmp_path, upstream_key="sk-upstream-0123456789", max_attempts=1)


def msgs() -> list[dict[str, str]]:
    return [{"role": "user", "content": "hi"}]


# -- upstream to client ------------------------------------------------------------------------


def test_repeated_response_fields_reach_the_sdk_as_the_lines_they_were(stack: Stack) -> None:
    with openai.OpenAI(base_url=f"{stack.url}/v1", api_key="x", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(model="m", messages=msgs())
        assert raw.headers.get_list("set-cookie") == COOKIES
        assert raw.headers.get_list("link") == LINKS
        assert raw.parse().choices[0].message.content == "hi"
        with client.chat.completions.with_streaming_response.create(
            model="m", messages=msgs(), stream=True
        ) as streamed:
            assert streamed.headers.get_list("set-cookie") == COOKIES
            assert "".join(streamed.iter_lines()).endswith("[DONE]")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/files", 200), ("DELETE", "/v1/files/file-1", 200), ("POST", "/v1/limited", 429)],
)
def test_repeated_fields_of_relayed_answers_and_errors_stay_lines(
    stack: Stack, method: str, path: str, status: int
) -> None:
    r = httpx.request(method, f"{stack.url}{path}", content=b"{}" if method == "POST" else None)
    assert r.status_code == status
    assert r.headers.get_list("set-cookie") == COOKIES
    assert r.headers.get_list("link") == LINKS


def test_a_rejected_pipeline_request_keeps_its_repeated_fields(stack: Stack) -> None:
    for stream in (False, True):
        r = httpx.post(
            f"{stack.url}/v1/chat/completions",
            json={"model": "limited", "messages": msgs(), "stream": stream},
        )
        assert r.status_code == 429
        assert r.headers.get_list("set-cookie") == COOKIES
        assert r.headers.get_list("link") == LINKS


# -- client to upstream ------------------------------------------------------------------------


def test_the_sdks_own_and_custom_headers_reach_the_upstream(stack: Stack) -> None:
    extra = {"HTTP-Referer": "https://myapp.example", "X-Title": "My App", "X-Trace": "t-1"}
    with openai.OpenAI(base_url=f"{stack.url}/v1", api_key="sk-client-key-99", max_retries=0) as c:
        c.chat.completions.create(model="m", messages=msgs(), extra_headers=extra)
        chat = stack.seen.headers[-1]
        c.with_raw_response.files.list(extra_headers=extra)
        relayed = stack.seen.headers[-1]
    for got in (chat, relayed):
        assert got["user-agent"].startswith("OpenAI/Python")
        assert got["x-stainless-lang"] == "python"
        assert got["http-referer"] == "https://myapp.example"
        assert got["x-title"] == "My App"
        assert got["x-trace"] == "t-1"
        # what is calguard's, not the client's
        assert got["authorization"] == "Bearer sk-upstream-0123456789"
        assert "sk-client-key-99" not in json.dumps(got)
        assert got["host"] != stack.url.split("//")[1]


def test_a_field_sent_twice_goes_on_combined(stack: Stack) -> None:
    r = httpx.post(
        f"{stack.url}/v1/chat/completions",
        json={"model": "m", "messages": msgs()},
        headers=[("x-tag", "a"), ("x-tag", "b")],
    )
    assert r.status_code == 200
    assert stack.seen.headers[-1]["x-tag"] == "a, b"


def test_credentials_and_cookies_stay_with_calguard(tmp_path: Path) -> None:
    sent = {
        "api-key": "azure-client-key",
        "x-api-key": "anthropic-client-key",
        "cookie": "__cf_bm=abc",
        "x-my-proxy": f"Bearer {PROXY_KEY}",  # a client that put its proxy key elsewhere
        "x-ok": "yes",
    }
    for st in stack_for(tmp_path, api_keys=[PROXY_KEY]):
        r = httpx.post(
            f"{st.url}/v1/chat/completions",
            json={"model": "m", "messages": msgs()},
            headers={**sent, "authorization": f"Bearer {PROXY_KEY}"},
        )
        assert r.status_code == 200
        got = st.seen.headers[-1]
        assert got["x-ok"] == "yes"
        for name in ("api-key", "x-api-key", "cookie", "x-my-proxy", "authorization"):
            assert name not in got, name
        assert PROXY_KEY not in json.dumps(st.seen.headers)


def test_with_forward_client_key_the_clients_provider_keys_go_upstream(tmp_path: Path) -> None:
    for st in stack_for(tmp_path, forward_client_key=True):
        httpx.post(
            f"{st.url}/v1/chat/completions",
            json={"model": "m", "messages": msgs()},
            headers={"api-key": "azure-client-key", "authorization": "Bearer own", "cookie": "c=1"},
        )
        got = st.seen.headers[-1]
        assert got["api-key"] == "azure-client-key"
        assert got["authorization"] == "Bearer own"
        assert "cookie" not in got  # one client's cookies would reach every route's provider


def test_a_header_goes_on_as_its_bytes_or_is_a_400(stack: Stack) -> None:
    """The server reads header bytes one character each; the HTTP client sends text as UTF-8.
    A UTF-8 value goes on as its bytes (before, "café" arrived as "cafÃ©"); bytes that are not
    UTF-8 cannot be sent as they came and are a 400 naming the header, never a 500."""
    body = json.dumps({"model": "m", "messages": msgs()}).encode()
    for value, status in (("café ✓".encode(), 200), (b"caf\xe9", 400)):
        for path in ("/v1/chat/completions", "/v1/files"):
            before = len(stack.seen.headers)
            status_got, answer = raw_with_header(stack.url, path, body, b"x-name", value)
            assert status_got == status, (path, value)
            if status == 200:
                assert stack.seen.headers[-1]["x-name"].encode("latin-1") == value
            else:
                assert json.loads(answer)["error"]["param"] == "x-name"
                assert len(stack.seen.headers) == before  # nothing went upstream
