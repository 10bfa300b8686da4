"""Defects a second adversarial review found on the wire (issue 10 round 2), each failing
before its fix: a text endpoint reached through the relay by one escaped ``?``/``#``/tab/CR, a
query string re-encoded, an upstream redirect followed, 500s (a control character in a
forwarded header, a malformed model list, a lone surrogate in a UTF-16 body or stored in a
record), and flag records lost when the upstream failed after a prompt was redacted or
flagged text had streamed."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.servers import serve_in_thread
from tests.e2e.wire import raw

ADMIN = "sk-adminKEY-0123456789abcdef0123"
BLOCK = [
    {"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block"},
    {"type": "regex", "params": {"patterns": [r"\bTICKET-\d+\b"]}, "action": "redact"},
]
FLAG = [{"type": "denylist", "params": {"words": ["forbidden"]}, "action": "flag"}]
HI = [{"role": "user", "content": "hi"}]
MODELS = {"null": None, "str": "abc", "int": 5, "dict": {"a": 1}, "listid": [{"id": ["x"]}]}


class Canned:
    """An upstream that answers what a test sets (a JSON body and status, or SSE events, where
    b"DIE" breaks the stream) and records each request's path with its raw query."""

    def __init__(self) -> None:
        self.body: Any = chat("ok")
        self.status = 200
        self.sse: list[bytes] | None = None
        self.seen: list[str] = []
        self.bodies: list[bytes] = []
        app = FastAPI()

        @app.api_route("/v1/{path:path}", methods=["GET", "POST"])
        async def any_(path: str, request: Request) -> Response:
            query = request.scope["query_string"].decode()
            self.seen.append(request.scope["raw_path"].decode() + (f"?{query}" if query else ""))
            self.bodies.append(await request.body())
            if path == "models":
                data = MODELS.get(request.query_params.get("k", ""), [])
                return Response(json.dumps({"object": "list", "data": data}))
            if path == "files/moved":
                return Response(status_code=307, headers={"location": "/v1/files/elsewhere"})
            if self.sse is not None:
                events = list(self.sse)

                async def gen() -> Any:
                    for e in events:
                        if e == b"DIE":
                            await asyncio.sleep(0.2)
                            raise RuntimeError("upstream dies mid-stream")
                        yield e

                return StreamingResponse(gen(), media_type="text/event-stream")
            return Response(json.dumps(self.body), self.status, media_type="application/json")

        self.app = app


def chat(content: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip


def chunk(content: str) -> bytes:
    data = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": content}}]}  # fmt: skip
    return f"data: {json.dumps(data)}\n\n".encode()


@pytest.fixture(params=[None], ids=["relays-all"])
def env(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Canned, str, Path]]:
    up = Canned()
    db = tmp_path / "a.db"
    with serve_in_thread(up.app) as upstream:
        settings = Settings(
            upstream=f"{upstream}/v1",
            admin_key=ADMIN,
            store=f"sqlite:///{db}",
            max_attempts=1,
            stream_holdback=16,
            default_route=RouteConfig(policies=BLOCK),
            routes={
                "flagonly": RouteConfig(upstream_model="flagonly", policies=FLAG),
                "plain": RouteConfig(upstream_model="plain"),
            },
            passthrough_paths=request.param,
        )
        with serve_in_thread(create_app(settings)) as url:
            yield up, url, db


def records(db: Path) -> list[str]:
    with sqlite3.connect(db) as c:
        return [r[0] for r in c.execute("SELECT record FROM flags ORDER BY id")]


FORBIDDEN = json.dumps(
    {
        "model": "m",
        "messages": [{"role": "user", "content": "say forbidden"}],
        "prompt": "say forbidden",
        "input": "say forbidden",
    }
).encode()


@pytest.mark.parametrize("env", [None, ["/models*", "/chat/completions*"]], indirect=True,
                         ids=["relays-all", "allow-list"])  # fmt: skip
@pytest.mark.parametrize(
    "path",
    ["/v1/chat/completions%3F", "/v1/chat/completions%3Fx=1", "/v1/chat/completions%23",
     "/v1/chat/comp%09letions", "/v1/chat/completions%0D", "/v1/completions%3F",
     "/v1/responses%23x", "/v1/embeddings%3F", "/v1/files%20"],
)  # fmt: skip
def test_an_escaped_query_fragment_or_space_does_not_relay_into_a_text_endpoint(
    env: tuple[Canned, str, Path], path: str
) -> None:
    # decoded once by the server, the HTTP client read them as a query, a fragment, or dropped
    # them: POST /v1/chat/completions reached the upstream around every prompt policy
    up, url, _ = env
    assert raw(url, "POST", path, FORBIDDEN) == 404
    assert up.seen == []


@pytest.mark.parametrize(
    "query", ["a=%zz", "sig=ab%2Fcd%2B%3D", "x=%7e", "ids[]=1&ids[]=2", "se=2024-01-01T00%3A00Z"]
)
def test_the_query_string_reaches_the_upstream_as_sent(
    env: tuple[Canned, str, Path], query: str
) -> None:
    up, url, _ = env
    body = json.dumps({"model": "plain", "messages": HI}).encode()
    assert raw(url, "GET", f"/v1/files/file-1?{query}") == 200
    assert raw(url, "POST", f"/v1/chat/completions?{query}", body) == 200
    assert up.seen == [f"/v1/files/file-1?{query}", f"/v1/chat/completions?{query}"]


def test_an_upstream_redirect_reaches_the_client(env: tuple[Canned, str, Path]) -> None:
    up, url, _ = env
    r = httpx.get(f"{url}/v1/files/moved", follow_redirects=False)
    assert (r.status_code, r.headers.get("location")) == (307, "/v1/files/elsewhere")
    assert up.seen == ["/v1/files/moved"]  # not followed by calguard


@pytest.mark.parametrize("kind", list(MODELS))
def test_a_malformed_model_list_is_not_a_500(env: tuple[Canned, str, Path], kind: str) -> None:
    _, url, _ = env
    r = httpx.get(f"{url}/v1/models", params={"k": kind})
    assert r.status_code == 200, r.text  # the upstream's answer, as it said it


@pytest.mark.parametrize("header", ["openai-beta", "idempotency-key", "openai-organization"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/files", "/v1/models"])
def test_a_control_character_in_a_forwarded_header_is_a_400(
    env: tuple[Canned, str, Path], header: str, path: str
) -> None:
    up, url, _ = env
    method = "GET" if path == "/v1/models" else "POST"
    r = httpx.request(
        method, url + path, json={"model": "plain", "messages": HI}, headers={header: "a\x01b"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == header
    assert up.seen == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_body_in_another_encoding_than_utf8_is_a_400(
    env: tuple[Canned, str, Path], encoding: str
) -> None:
    # json.loads(bytes) took UTF-16/32, where the lone-surrogate check could not see an escape
    # (a 500 from the store, and the record lost, after the request had gone upstream)
    up, url, _ = env
    text = '{"model": "m\\ud800", "messages": [{"role": "user", "content": "TICKET-1"}]}'
    r = httpx.post(f"{url}/v1/chat/completions", content=text.encode(encoding))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_json"
    assert up.seen == []


def test_a_lone_surrogate_from_the_upstream_cannot_break_the_flag_log(
    env: tuple[Canned, str, Path],
) -> None:
    up, url, db = env
    for body in (
        b'{"model":"m","messages":[{"role":"user","content":"\xed\xa0\x80 TICKET-1"}]}',
        json.dumps({"model": "flagonly", "messages": HI}).encode(),
    ):
        up.body = chat("forbidden \ud800")  # an answer holding \ud800 as its JSON says it
        httpx.post(f"{url}/v1/chat/completions", content=body)
    assert len(records(db)) == 1  # the UTF-8-encoded surrogate is a 400; the answer's recorded
    r = httpx.get(f"{url}/v1/guard/flags", headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200, r.text
    assert "forbidden \ufffd" in r.text or "forbidden \\ufffd" in r.text


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("status", [400, 500])
def test_a_prompt_redaction_is_recorded_when_the_upstream_fails(
    env: tuple[Canned, str, Path], stream: bool, status: int
) -> None:
    up, url, db = env
    up.body, up.status = {"error": {"message": "boom", "type": "server_error"}}, status
    messages = [{"role": "user", "content": "TICKET-42"}]
    r = httpx.post(
        f"{url}/v1/chat/completions", json={"model": "m", "stream": stream, "messages": messages}
    )
    assert r.status_code == status
    [rec] = records(db)
    assert "TICKET-42" not in rec
    assert json.loads(rec)["response"]["status"] == status


def test_a_flagged_stream_is_recorded_when_the_upstream_fails_after_it(
    env: tuple[Canned, str, Path],
) -> None:
    up, url, db = env
    up.sse = [chunk("this is forbidden "), chunk("x " * 40), b"DIE"]
    body = {"model": "flagonly", "stream": True, "messages": HI}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        wire = b"".join(r.iter_bytes()).decode()
    assert "this is forbidden" in wire  # flag only: the text reached the client
    [rec] = records(db)
    assert json.loads(rec)["response"]["cut_short"]


def test_a_redacting_policys_match_is_not_stored_when_the_request_is_blocked(
    env: tuple[Canned, str, Path],
) -> None:
    # The block was raised before the redactions were made (or before a later message was
    # read): the record held the text the redact policy matched.
    up, url, db = env
    up.body = chat("TICKET-777 is forbidden")
    assert (
        httpx.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": HI}).status_code
        == 400
    )
    for messages in (
        [{"role": "user", "content": "TICKET-9 forbidden"}],
        [{"role": "user", "content": "forbidden"}, {"role": "user", "content": "TICKET-10"}],
    ):
        body = {"model": "m", "messages": messages}
        assert httpx.post(f"{url}/v1/chat/completions", json=body).status_code == 400
    up.sse = [chunk("TICKET-55 then "), chunk("forbidden " + "x " * 20), b"data: [DONE]\n\n"]
    body = {"model": "m", "stream": True, "messages": HI}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        wire = b"".join(r.iter_bytes()).decode()
    assert "policy_violation" in wire
    recs = records(db)
    assert len(recs) == 4
    assert not any(
        t in rec for rec in recs for t in ("TICKET-777", "TICKET-9", "TICKET-10", "TICKET-55")
    )
    assert all("[REDACTED]" in rec for rec in recs)


def test_a_responses_call_with_a_stored_prompt_needs_no_model(
    env: tuple[Canned, str, Path], request: pytest.FixtureRequest
) -> None:
    # The SDK's responses.create makes model, input and prompt all optional: a stored prompt
    # names its own model. It takes the default route, and its policies.
    up, url, _ = env
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    request.addfinalizer(client.close)
    client.responses.create(prompt={"id": "pmpt_abc"}, input="hi")
    client.responses.create(prompt={"id": "pmpt_abc", "variables": {"city": "Paris"}})
    assert up.seen == ["/v1/responses", "/v1/responses"]
    sent = [json.loads(b) for b in up.bodies]
    assert [("model" in b, b.get("input")) for b in sent] == [(False, "hi"), (False, None)]
    with pytest.raises(openai.BadRequestError, match="forbidden"):
        client.responses.create(prompt={"id": "p", "variables": {"x": "say forbidden"}})
    with pytest.raises(openai.BadRequestError, match="'model' is required"):
        client.responses.create(input="hi")  # type: ignore[call-overload]
    assert len(up.seen) == 2
