"""Issue 9, the bypass matrix on the wire: a blocked word must not reach the upstream or the
client through any door — message parts, system and earlier turns, other endpoints, a second
choice, tool-call arguments, SSE events with several data lines, Unicode look-alikes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

import guard
from guard.config import RouteConfig, Settings
from guard.server import create_app
from guard.testing.fake_upstream import FakeUpstreamState, SimulatedResponder, create_fake_upstream
from guard.testing.servers import serve_in_thread

DENY = [{"type": "denylist", "params": {"words": ["forbidden"]}, "action": "block"}]
SECRETS = [{"type": "secrets", "action": "block", "on": "prompt"}]
KEY = "sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def chunk(choices: list[dict[str, Any]]) -> bytes:
    data = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": choices}  # fmt: skip
    return f"data: {json.dumps(data)}\n\n".encode()


class Canned:
    """An upstream that answers whatever a test sets: a JSON body, or SSE bytes."""

    def __init__(self) -> None:
        self.body: dict[str, Any] = {}
        self.sse: list[bytes] = []
        self.requests: list[dict[str, Any]] = []
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            self.requests.append(await request.json())
            if self.sse:
                return StreamingResponse(iter(self.sse), media_type="text/event-stream")
            return Response(json.dumps(self.body), media_type="application/json")

        self.app = app


@pytest.fixture
def canned(tmp_path: Path) -> Iterator[tuple[Canned, str]]:
    up = Canned()
    with serve_in_thread(up.app) as upstream:
        settings = Settings(
            upstream=f"{upstream}/v1",
            store=f"sqlite:///{tmp_path / 'b.db'}",
            stream_holdback=8,
            routes={"deny": RouteConfig(upstream_model="m", policies=DENY)},
        )
        with serve_in_thread(create_app(settings)) as url:
            yield up, url


def tool(arguments: str) -> dict[str, Any]:
    return {"index": 0, "function": {"arguments": arguments}}


def completion(choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": choices}  # fmt: skip


def message(content: str | None, tool_args: str | None = None, index: int = 0) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_args is not None:
        msg["tool_calls"] = [{"id": "t", "type": "function",
                              "function": {"name": "f", "arguments": tool_args}}]  # fmt: skip
    return {"index": index, "message": msg, "finish_reason": "stop"}


@pytest.mark.parametrize(
    "choices",
    [
        [message("all fine"), message("this is forbidden", index=1)],  # n=2: the second choice
        [message(None, tool_args='{"q": "forbidden"}')],  # tool-call arguments
    ],
    ids=["second-choice", "tool-call"],
)
def test_a_blocked_answer_never_reaches_the_client(
    canned: tuple[Canned, str], choices: list[dict[str, Any]]
) -> None:
    up, url = canned
    up.body = completion(choices)
    r = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "deny", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 400
    assert "forbidden" not in r.text.replace("'forbidden'", "")  # only the policy's own reason


@pytest.mark.parametrize(
    "events",
    [
        # two choices interleaved: neither has the word, choice 1 gets it whole
        [chunk([{"index": 0, "delta": {"content": "forb"}}]),
         chunk([{"index": 1, "delta": {"content": "the forbidden"}}]),
         chunk([{"index": 0, "delta": {"content": "ade"}}])],
        # a tool call's arguments, streamed in pieces
        [chunk([{"index": 0, "delta": {"tool_calls": [tool('{"q": "forb')]}}]),
         chunk([{"index": 0, "delta": {"tool_calls": [tool('idden"}')]}}])],
        # one event, its JSON split over several data lines
        [b'data: {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",\n'
         b'data: "choices": [{"index": 0, "delta": {"content": "is forbidden here"}}]}\n\n'],
    ],
    ids=["interleaved-choices", "streamed-tool-call", "multi-line-data"],
)  # fmt: skip
def test_a_blocked_stream_never_delivers_the_word(
    canned: tuple[Canned, str], events: list[bytes]
) -> None:
    up, url = canned
    up.sse = [*events, b"data: [DONE]\n\n"]
    body = {"model": "deny", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        wire = b"".join(r.iter_bytes()).decode()
    released = wire.split('"error"')[0]
    assert "forbidden" not in released.replace("\n", "").replace('data: "', '"')
    assert "idden" not in released
    assert '"policy_violation"' in wire


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[FakeUpstreamState, openai.OpenAI]]:
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up:
        settings = Settings(
            upstream=f"{up}/v1",
            store=f"sqlite:///{tmp_path / 'f.db'}",
            routes={
                "deny": RouteConfig(upstream_model="m", policies=DENY),
                "secrets": RouteConfig(upstream_model="m", policies=SECRETS),
            },
        )
        with (
            serve_in_thread(create_app(settings)) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as client,
        ):
            yield state, client


TRICKS = {
    "fullwidth": "".join(chr(ord(c) + 0xFEE0) for c in "forbidden"),
    "cyrillic-o": "f\u043erbidden",
    "zero-width": "for\u200bbidden",
    "soft-hyphen": "forbid\u00adden",
}


@pytest.mark.parametrize(
    "send",
    [
        lambda c, w: c.chat.completions.create(
            model="deny", messages=[{"role": "user", "content": [{"type": "text", "text": w}]}]
        ),
        lambda c, w: c.chat.completions.create(
            model="deny",
            messages=[{"role": "system", "content": w}, {"role": "user", "content": "hi"}],
        ),
        lambda c, w: c.chat.completions.create(
            model="deny",
            messages=[
                {"role": "user", "content": w},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "hi"},
            ],
        ),
        lambda c, w: c.completions.create(model="deny", prompt=["fine", w]),
        lambda c, w: c.responses.create(
            model="deny", input=[{"role": "user", "content": [{"type": "input_text", "text": w}]}]
        ),
        lambda c, w: c.embeddings.create(model="deny", input=["fine", w]),
    ],
    ids=["parts", "system", "earlier-turn", "completions", "responses", "embeddings"],
)
@pytest.mark.parametrize("word", ["forbidden", *TRICKS.values()], ids=["plain", *TRICKS])
def test_a_blocked_prompt_never_reaches_the_upstream(
    fake: tuple[FakeUpstreamState, openai.OpenAI], send: Any, word: str
) -> None:
    state, client = fake
    n = len(state.requests)
    with pytest.raises(openai.BadRequestError) as exc:
        send(client, f"say {word} now")
    assert exc.value.code == "denylist"
    assert len(state.requests) == n


@pytest.mark.parametrize(
    "key",
    [KEY, KEY[:10] + "\u200b" + KEY[10:], "".join(chr(ord(c) + 0xFEE0) for c in KEY)],
    ids=["plain", "zero-width", "fullwidth"],
)
def test_a_secret_in_any_disguise_is_blocked(
    fake: tuple[FakeUpstreamState, openai.OpenAI], key: str
) -> None:
    state, client = fake
    n = len(state.requests)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="secrets", messages=[{"role": "user", "content": f"my key is {key}"}]
        )
    assert len(state.requests) == n


IDS = [3, 1415, 9265, 1234]


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.completions.create(model="deny", prompt=IDS),
        lambda c: c.completions.create(model="deny", prompt=[IDS, IDS]),
        lambda c: c.embeddings.create(model="deny", input=IDS),
        lambda c: c.embeddings.create(model="deny", input=[IDS]),
        # 3.0 is an integer to a JSON Schema validator, and pydantic's lax mode (vLLM) takes
        # floats with no fraction, and digit strings inside a token-ID list, as token IDs
        lambda c: c.completions.create(model="deny", prompt=[3.0, 1415.0]),
        lambda c: c.completions.create(model="deny", prompt=[["3", "1415"]]),
        lambda c: c.completions.create(model="deny", prompt=[["forbidden"]]),
        lambda c: c.embeddings.create(model="deny", input=[[3.0, 1415.0]]),
        lambda c: c.embeddings.create(model="deny", input=[["forbidden"]]),
    ],
    ids=[
        "completions", "completions-batch", "embeddings", "embeddings-batch",
        "float-ids", "nested-digit-strings", "nested-text", "emb-float-ids", "emb-nested-text",
    ],
)  # fmt: skip
def test_a_prompt_in_any_shape_but_text_cannot_walk_around_prompt_policies(
    fake: tuple[FakeUpstreamState, openai.OpenAI], send: Any
) -> None:
    # Only a string or a list of strings is text the policies read. Token IDs spell text no
    # policy can read ("forbidden" in any tokenizer's IDs): a route that checks prompts refuses
    # them and every other shape, saying why, and the upstream never sees them.
    assert "token IDs" in refused_unread(fake, send).message


def refused_unread(
    fake: tuple[FakeUpstreamState, openai.OpenAI], send: Any
) -> openai.BadRequestError:
    """``send(client)`` is refused as an unreadable prompt, naming the route's policy, and
    the upstream never sees it; the error, for what else it says."""
    state, client = fake
    n = len(state.requests)
    with pytest.raises(openai.BadRequestError) as exc:
        send(client)
    assert exc.value.code == "unreadable_prompt"
    assert "denylist" in exc.value.message
    assert len(state.requests) == n
    return exc.value


def test_token_ids_pass_unchanged_where_no_prompt_policy_asks(
    fake: tuple[FakeUpstreamState, openai.OpenAI],
) -> None:
    state, client = fake
    client.completions.create(model="open-model", prompt=[[3, 1415], [9265]])
    client.embeddings.create(model="open-model", input=[3, 1415])
    completions, embeddings = state.requests[-2:]
    assert completions["prompt"] == [[3, 1415], [9265]]
    assert embeddings["input"] == [3, 1415]


def test_the_wrapper_reads_tuples_as_the_sdk_sends_them(tmp_path: Path) -> None:
    # The SDK takes any sequence (a tuple of parts, of strings) and sends it as a JSON array:
    # the wrapped client's policies must read it too.
    state = FakeUpstreamState(SimulatedResponder())
    with serve_in_thread(create_fake_upstream(state)) as up:
        client = guard.wrap(
            openai.OpenAI(base_url=f"{up}/v1", api_key="x", max_retries=0),
            store=f"sqlite:///{tmp_path / 'w.db'}",
            route=RouteConfig(policies=DENY),
        )
        sends = [
            lambda: client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": ({"type": "text", "text": "forbidden"},)}],
            ),
            lambda: client.completions.create(model="m", prompt=("forbidden",)),
            lambda: client.embeddings.create(model="m", input=("forbidden",)),
        ]
        for send in sends:
            with pytest.raises(guard.PolicyViolationError):
                send()
        assert state.requests == []
        client.completions.create(model="m", prompt=("all fine",))  # read, and passed
        assert state.requests[-1]["prompt"] == ["all fine"]
        client.close()


def test_a_prompt_sent_as_embeddings_cannot_walk_around_prompt_policies(
    fake: tuple[FakeUpstreamState, openai.OpenAI],
) -> None:
    # vLLM (--enable-prompt-embeds) takes a completion's prompt as a base64 tensor in
    # 'prompt_embeds', beside or instead of 'prompt': no policy can read it.
    for prompt in ("harmless", None):
        err = refused_unread(
            fake,
            lambda c, prompt=prompt: c.completions.create(
                model="deny", prompt=prompt, extra_body={"prompt_embeds": "AAAA"}
            ),
        )
        assert err.param == "prompt_embeds"
        assert "embeddings" in err.message


def test_prompt_embeds_pass_unchanged_where_no_prompt_policy_asks(
    fake: tuple[FakeUpstreamState, openai.OpenAI],
) -> None:
    state, client = fake
    # the SDK sends "prompt": null; a client of vLLM may leave 'prompt' out altogether
    client.completions.create(model="open-model", prompt=None, extra_body={"prompt_embeds": "AAAA"})
    assert state.requests[-1]["prompt_embeds"] == "AAAA"
    url = str(client.base_url).rstrip("/")
    r = httpx.post(
        f"{url}/completions", json={"model": "open-model", "prompt_embeds": "AAAA"}, timeout=30
    )
    assert r.status_code == 200, r.text
    assert state.requests[-1] == {"model": "open-model", "prompt_embeds": "AAAA"}
