"""``guard.wrap(client)`` as a drop-in, differentially: the same calls on a plain OpenAI client
and on a wrapped one, against the same scripted upstream (:mod:`tests.e2e.scripted_upstream`),
give the same objects, the same upstream requests, the same errors and the same helpers."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import BaseModel

import guard
from guard.testing.servers import serve_in_thread
from tests.e2e.scripted_upstream import Script, create_scripted_upstream

MESSAGES = [{"role": "user", "content": "hi"}]


class Pair:
    """A plain client and a wrapped one on the same upstream; ``each`` runs a call on both."""

    def __init__(self, script: Script, url: str, db: str) -> None:
        self.script = script
        self.plain = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-x", max_retries=0)
        inner = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-x", max_retries=0)
        self.wrapped = guard.wrap(inner, store=db)

    def each(self, call: Callable[[Any], Any]) -> list[tuple[Any, list[dict[str, Any]]]]:
        """(what ``call`` returned, the upstream requests it made), plain first."""
        out = []
        for client in (self.plain, self.wrapped):
            n = len(self.script.requests)
            result = call(client)
            out.append((result, self.script.requests[n:]))
        return out


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    script = Script()
    with serve_in_thread(create_scripted_upstream(script)) as url:
        p = Pair(script, url, f"sqlite:///{tmp_path / 'w.db'}")
        yield p
        p.plain.close()
        p.wrapped.close()


def _bodies(requests: list[dict[str, Any]]) -> list[Any]:
    return [(r["method"], r["path"], r["body"]) for r in requests]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.embeddings.create(model="e", input=["ab", "c"], encoding_format="float"),
        lambda c: c.embeddings.create(model="e", input="abc"),  # the SDK asks base64, decodes
        lambda c: c.responses.create(model="m", input="hi"),
    ],
    ids=["embeddings-float", "embeddings-default", "responses"],
)
def test_an_answer_without_choices_is_one_call_and_the_sdks_own_object(
    pair: Pair, call: Callable[[Any], Any]
) -> None:
    (plain, plain_sent), (wrapped, wrapped_sent) = pair.each(call)
    assert _bodies(wrapped_sent) == _bodies(plain_sent)  # once, not twice
    assert type(wrapped) is type(plain)
    assert wrapped.model_dump() == plain.model_dump()  # no "choices": [] added
    assert "choices" not in (wrapped.model_extra or {})
    assert wrapped._request_id == f"req_{len(pair.script.requests)}"


def test_a_base64_embedding_comes_back_as_the_sdk_gives_it_without_a_warning(pair: Pair) -> None:
    """The SDK keeps an asked-for base64 embedding a str (its model says floats); calguard
    reading that object must not warn where the SDK does not (warnings are errors here)."""
    (plain, _), (wrapped, sent) = pair.each(
        lambda c: c.embeddings.create(model="e", input=["ab", "c"], encoding_format="base64")
    )
    assert len(sent) == 1
    assert [d.embedding for d in wrapped.data] == [d.embedding for d in plain.data]
    assert isinstance(wrapped.data[0].embedding, str)


def _events(stream: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(type(e).__name__, e.model_dump()) for e in stream]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: _events(c.responses.create(model="m", input="hi", stream=True)),
        lambda c: _events(c.chat.completions.create(model="tools", messages=MESSAGES, stream=True)),
        lambda c: _events(
            c.chat.completions.create(
                model="m",
                messages=MESSAGES,
                n=2,
                stream=True,
                stream_options={"include_usage": True},
            )
        ),
    ],
    ids=["responses", "chat-tool-call", "chat-n2-usage"],
)
def test_stream_events_are_the_sdks_objects(pair: Pair, call: Callable[[Any], Any]) -> None:
    """Every event is the SDK's model, built as leniently as the SDK builds it: an upstream
    that leaves out a field the SDK's model names (many do) still gives models, not dicts."""
    (plain, plain_sent), (wrapped, wrapped_sent) = pair.each(call)
    assert _bodies(wrapped_sent) == _bodies(plain_sent)
    assert wrapped == plain


def _sent_headers(requests: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The headers a request carried, but the SDK's per-attempt and platform ones."""
    varying = ("x-stainless-retry-count", "x-stainless-read-timeout", "x-stainless-async")
    return [{k: v for k, v in r["headers"].items() if k not in varying} for r in requests]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.chat.completions.with_raw_response.create(model="m", messages=MESSAGES),
        lambda c: c.completions.with_raw_response.create(model="m", prompt="hi"),
        lambda c: c.embeddings.with_raw_response.create(model="e", input="hi"),
        lambda c: c.responses.with_raw_response.create(model="m", input="hi"),
    ],
    ids=["chat", "completions", "embeddings", "responses"],
)
def test_with_raw_response_has_the_upstreams_headers_and_request_id(
    pair: Pair, call: Callable[[Any], Any]
) -> None:
    (plain, plain_sent), (wrapped, wrapped_sent) = pair.each(call)
    # the upstream sees what the plain client sends (the SDK marks a raw call as raw)
    assert _sent_headers(wrapped_sent) == _sent_headers(plain_sent)
    here = f"req_{len(pair.script.requests)}"
    assert wrapped.headers["x-request-id"] == here
    assert wrapped.request_id == here
    for name in ("x-ratelimit-remaining-requests", "openai-processing-ms", "content-type"):
        assert wrapped.headers[name] == plain.headers[name]
    assert wrapped.headers["x-calguard-request-id"].startswith("cg-")
    assert wrapped.status_code == plain.status_code == 200
    assert wrapped.parse().model_dump() == plain.parse().model_dump()
    assert wrapped.parse()._request_id == here
    assert wrapped.http_response.status_code == 200
    assert wrapped.retries_taken == plain.retries_taken == 0


@pytest.mark.parametrize("raw", [False, True], ids=["create", "with_raw_response"])
def test_a_stream_has_the_upstreams_response(pair: Pair, raw: bool) -> None:
    def call(c: Any) -> Any:
        chat = c.chat.completions.with_raw_response if raw else c.chat.completions
        out = chat.create(model="m", messages=MESSAGES, stream=True)
        stream = out.parse() if raw else out
        with stream:
            events = _events(stream)
        return stream.response, events

    (plain, _), (wrapped, _) = pair.each(call)
    assert wrapped[1] == plain[1]
    assert wrapped[0].status_code == 200
    assert wrapped[0].headers["x-request-id"] == f"req_{len(pair.script.requests)}"
    assert wrapped[0].headers["x-ratelimit-remaining-requests"] == "99"
    assert wrapped[0].is_closed


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_not_given_and_omit_are_left_out_as_the_sdk_leaves_them(pair: Pair, stream: bool) -> None:
    """``logprobs=NOT_GIVEN`` (the SDK's way to say "not this time") is no value at all: not
    a field calguard checks and refuses."""

    def call(c: Any) -> Any:
        out = c.chat.completions.create(
            model="m",
            messages=MESSAGES,
            stream=stream,
            logprobs=openai.NOT_GIVEN,
            n=openai.omit,
            stream_options=openai.omit,
            tools=openai.NOT_GIVEN,
            extra_body={"top_logprobs": openai.omit},
        )
        return _events(out) if stream else out.model_dump()

    (plain, plain_sent), (wrapped, wrapped_sent) = pair.each(call)
    assert _bodies(wrapped_sent) == _bodies(plain_sent)
    assert wrapped == plain


class Answer(BaseModel):
    a: int


def _sent(requests: list[dict[str, Any]]) -> list[Any]:
    """What reached the upstream: method, path, body and headers (the SDK's helper header too)."""
    return list(zip(_bodies(requests), _sent_headers(requests), strict=True))


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.chat.completions.parse(model="json", messages=MESSAGES, response_format=Answer),
        lambda c: c.chat.completions.parse(
            model="tools",
            messages=MESSAGES,
            tools=[openai.pydantic_function_tool(Answer, name="get")],
        ),
        lambda c: c.responses.parse(model="json", input="hi", text_format=Answer),
    ],
    ids=["chat-response-format", "chat-strict-tool", "responses-text-format"],
)
def test_the_parse_helpers(pair: Pair, call: Callable[[Any], Any]) -> None:
    (plain, plain_sent), (wrapped, wrapped_sent) = pair.each(call)
    assert _sent(wrapped_sent) == _sent(plain_sent)
    assert type(wrapped) is type(plain)
    assert wrapped.model_dump(warnings=False) == plain.model_dump(warnings=False)
    assert wrapped._request_id == f"req_{len(pair.script.requests)}"


def _chat_helper(c: Any) -> Any:
    with c.chat.completions.stream(model="json", messages=MESSAGES, response_format=Answer) as s:
        kinds = [e.type for e in s]
        return kinds, s.get_final_completion()


def _responses_helper(c: Any) -> Any:
    with c.responses.stream(model="json", input="hi", text_format=Answer) as s:
        kinds = [e.type for e in s]
        return kinds, s.get_final_response()


@pytest.mark.parametrize("helper", [_chat_helper, _responses_helper], ids=["chat", "responses"])
def test_the_stream_helpers(pair: Pair, helper: Callable[[Any], Any]) -> None:
    (plain, plain_sent), (wrapped, wrapped_sent) = pair.each(helper)
    assert _sent(wrapped_sent) == _sent(plain_sent)
    assert wrapped[0] == plain[0]
    assert wrapped[1].model_dump(warnings=False) == plain[1].model_dump(warnings=False)


def _async_pair(tmp_path: Path, compare: Callable[[Any], Awaitable[Any]]) -> None:
    """``compare`` run on a plain async client and on a wrapped one against the scripted
    upstream; the two results must be equal."""

    async def go(url: str) -> None:
        plain = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-x", max_retries=0)
        inner = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-x", max_retries=0)
        wrapped = guard.wrap(inner, store=f"sqlite:///{tmp_path / 'a.db'}")
        out = [await compare(c) for c in (plain, wrapped)]
        assert out[1] == out[0]
        await plain.close()
        await wrapped.close()

    with serve_in_thread(create_scripted_upstream(Script())) as url:
        asyncio.run(go(url))


def test_the_async_helpers(tmp_path: Path) -> None:
    async def compare(c: Any) -> Any:
        parsed = await c.chat.completions.parse(
            model="json", messages=MESSAGES, response_format=Answer
        )
        async with c.chat.completions.stream(model="json", messages=MESSAGES) as s:
            kinds = [e.type async for e in s]
            final = await s.get_final_completion()
        async with c.responses.stream(model="m", input="hi") as rs:
            rkinds = [e.type async for e in rs]
            rfinal = await rs.get_final_response()
        resp = await c.responses.parse(model="json", input="hi", text_format=Answer)
        assert parsed.choices[0].message.parsed == Answer(a=1)
        dumps = [x.model_dump(warnings=False) for x in (parsed, final, rfinal, resp)]
        return dumps, kinds, rkinds, parsed.choices[0].message.parsed

    _async_pair(tmp_path, compare)


def test_what_does_not_ask_the_model_is_the_clients_own(pair: Pair) -> None:
    calls: list[Callable[[Any], Any]] = [
        lambda c: c.chat.completions.list().data,
        lambda c: c.chat.completions.retrieve("chatcmpl-s").model_dump(),
        lambda c: c.chat.completions.messages.list("chatcmpl-s").data,
        lambda c: c.chat.completions.delete("chatcmpl-s").model_dump(),
        lambda c: c.responses.input_items.list("resp_s").data,
        lambda c: c.responses.delete("resp_s"),
        lambda c: c.responses.cancel("resp_s").model_dump(),
    ]
    for call in calls:
        (plain, plain_sent), (wrapped, wrapped_sent) = pair.each(call)
        assert (wrapped, _sent(wrapped_sent)) == (plain, _sent(plain_sent))


def test_the_wrapped_clients_timeout_is_the_only_time_limit(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call as long as the client allows is answered, as without calguard: the proxy's
    own deadline (timeout_s x max_attempts and the waits, 1,840 s by default) is not the
    wrapper's. Here that deadline is made shorter than the upstream's answer, which the client
    waits for."""
    import guard.client

    short = functools.partial(guard.client.Settings, timeout_s=0.05, retry_max_wait_s=0)
    monkeypatch.setattr(guard.client, "Settings", short)
    inner = openai.OpenAI(base_url=str(pair.plain.base_url), api_key="sk-x", max_retries=0)
    wrapped = guard.wrap(inner.with_options(timeout=30), store=pair.wrapped._store)
    pair.script.delay_s = 0.5
    r = wrapped.chat.completions.create(model="m", messages=MESSAGES)
    assert r.choices[0].message.content == "hello"
    wrapped.close()


def _streamed(stream: bool, read: str) -> Callable[[Any], Any]:
    def call(c: Any) -> Any:
        with c.chat.completions.with_streaming_response.create(
            model="m", messages=MESSAGES, stream=stream
        ) as r:
            head = (
                r.status_code,
                r.headers["x-request-id"],
                r.request_id,
                r.headers["x-ratelimit-remaining-requests"],
            )
            if read == "lines":
                body: Any = [line for line in r.iter_lines() if line]
            elif read == "parse":
                parsed = r.parse()
                body = _events(parsed) if stream else parsed.model_dump()
            else:
                body = r.json()
        return head, body

    return call


@pytest.mark.parametrize(
    ("stream", "read"),
    [(False, "parse"), (False, "json"), (False, "lines"), (True, "parse"), (True, "lines")],
)
def test_with_streaming_response(pair: Pair, stream: bool, read: str) -> None:
    (plain, plain_sent), (wrapped, wrapped_sent) = pair.each(_streamed(stream, read))
    assert _bodies(wrapped_sent) == _bodies(plain_sent)
    (status, request_id, said_id, remaining), body = wrapped
    assert (status, remaining) == (plain[0][0], plain[0][3])
    assert request_id == said_id == f"req_{len(pair.script.requests)}"
    if read == "lines":  # the same JSON values (in-process, a stream's chunks are re-serialised)
        body, plain = _values(body), (None, _values(plain[1]))
    assert body == plain[1]


def _values(lines: list[str]) -> list[Any]:
    if not lines[0].startswith("data: "):
        return [json.loads("".join(lines))]
    return [line if line == "data: [DONE]" else json.loads(line[6:]) for line in lines]


def test_with_streaming_response_async(tmp_path: Path) -> None:
    async def compare(c: Any) -> Any:
        chat = c.chat.completions.with_streaming_response
        async with chat.create(model="m", messages=MESSAGES) as r:
            whole = (await r.parse()).model_dump()
        async with chat.create(model="m", messages=MESSAGES, stream=True) as r:
            lines = _values([line async for line in r.iter_lines() if line])
        async with chat.create(model="m", messages=MESSAGES, stream=True) as r:
            events = [e.model_dump() async for e in await r.parse()]
        return whole, lines, events, r.headers["x-ratelimit-remaining-requests"]

    _async_pair(tmp_path, compare)


def _error(call: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def caught(c: Any) -> Any:
        with pytest.raises(openai.APIStatusError) as info:
            call(c)
        e = info.value
        said = {k: v for k, v in e.response.headers.items() if k.startswith(("x-", "retry"))}
        return type(e), e.status_code, e.body, e.request_id, e.message, said

    return caught


ERROR_CALLS: dict[str, Callable[[Any], Any]] = {
    "chat": lambda c: c.chat.completions.create(model="m", messages=MESSAGES),
    "chat-stream": lambda c: c.chat.completions.create(model="m", messages=MESSAGES, stream=True),
    "raw": lambda c: c.chat.completions.with_raw_response.create(model="m", messages=MESSAGES),
    "parse": lambda c: c.chat.completions.parse(model="m", messages=MESSAGES),
    "responses-stream": lambda c: c.responses.create(model="m", input="hi", stream=True),
    "embeddings": lambda c: c.embeddings.create(model="e", input="hi"),
    "completions": lambda c: c.completions.create(model="m", prompt="hi"),
}


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500])
@pytest.mark.parametrize("name", list(ERROR_CALLS))
def test_upstream_errors_are_the_sdks_own(pair: Pair, status: int, name: str) -> None:
    def call(c: Any) -> Any:
        pair.script.faults.append((status, {"retry-after": "0"}))
        return _error(ERROR_CALLS[name])(c)

    (plain, _), (wrapped, sent) = pair.each(call)
    assert len(sent) == 1
    here = f"req_{len(pair.script.requests)}"
    assert wrapped[3] == wrapped[5]["x-request-id"] == here
    # the one part that differs: which request it was
    plain = (*plain[:3], here, plain[4], {**plain[5], "x-request-id": here})
    assert wrapped == plain


def test_a_timeout_is_the_sdks(pair: Pair) -> None:
    def call(c: Any) -> Any:
        with pytest.raises(openai.APITimeoutError) as info:
            c.chat.completions.create(model="m", messages=MESSAGES, timeout=0.05)
        return type(info.value)

    pair.script.delay_s = 0.5
    (plain, _), (wrapped, _) = pair.each(call)
    assert wrapped is plain


def test_request_options_reach_the_upstream_as_the_plain_clients(pair: Pair) -> None:
    def call(c: Any) -> Any:
        c2 = c.with_options(max_retries=1, timeout=20)
        assert (c2.max_retries, c2.timeout) == (1, 20)
        pair.script.faults.append((429, {"retry-after": "0"}))  # retried once, by the SDK
        out = c2.chat.completions.create(
            model="m",
            messages=MESSAGES,
            extra_headers={"X-Mine": "1"},
            extra_query={"q": "2"},
            extra_body={"foo": 3},
        )
        return out.model_dump(), c.copy(max_retries=3).max_retries, [m.id for m in c.models.list()]

    (plain, plain_sent), (wrapped, wrapped_sent) = pair.each(call)
    assert wrapped == plain
    assert [(r["query"], r["body"]) for r in wrapped_sent] == [
        (r["query"], r["body"]) for r in plain_sent
    ]
    assert _sent_headers(wrapped_sent[:2]) == _sent_headers(plain_sent[:2])
    assert wrapped_sent[1]["headers"]["x-mine"] == "1"
    assert wrapped_sent[1]["headers"]["x-stainless-retry-count"] == "1"


def test_files_and_batches_are_the_clients(pair: Pair) -> None:
    (plain, plain_sent), (wrapped, wrapped_sent) = pair.each(
        lambda c: (c.files.list().data, c.batches.list().data)
    )
    assert (wrapped, _sent(wrapped_sent)) == (plain, _sent(plain_sent))


def test_guard_evidence_is_the_only_difference_and_only_when_asked(pair: Pair) -> None:
    asked = {"guard": {"task": "none"}}
    (plain, plain_sent), (wrapped, wrapped_sent) = pair.each(
        lambda c: c.chat.completions.create(
            model="m", messages=MESSAGES, extra_body=asked if c is pair.wrapped else None
        )
    )
    assert _sent(wrapped_sent) == _sent(plain_sent)  # the guard object never goes upstream
    assert wrapped.model_dump() == plain.model_dump()

    # A policy that flags the answer: the evidence (and its header) is all that is added.
    flag = [{"type": "denylist", "params": {"words": ["hello"]}, "action": "flag"}]
    inner = openai.OpenAI(base_url=str(pair.plain.base_url), api_key="sk-x", max_retries=0)
    flagged = guard.wrap(inner, store=pair.wrapped._store, route=guard.RouteConfig(policies=flag))
    raw = flagged.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    out = raw.parse().model_dump()
    evidence = out.pop("guard")
    assert out == plain.model_dump()
    assert [f["policy"] for f in evidence["flags"]] == ["denylist"]
    assert raw.headers["x-calguard-flags"] == "denylist"
    assert raw.headers["x-request-id"] == f"req_{len(pair.script.requests)}"
    assert raw.parse()._request_id == f"req_{len(pair.script.requests)}"
    answer = flagged.chat.completions.create(model="m", messages=MESSAGES)
    assert answer._request_id == f"req_{len(pair.script.requests)}"
    flagged.close()


def test_closing_the_wrapper_closes_the_client(tmp_path: Path) -> None:
    inner = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-x")
    with guard.wrap(inner, store=f"sqlite:///{tmp_path / 'c.db'}") as wrapped:
        assert not wrapped.is_closed()
    assert inner.is_closed()

    async def go() -> bool:
        ainner = openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-x")
        async with guard.wrap(ainner, store=f"sqlite:///{tmp_path / 'a.db'}"):
            pass
        return ainner.is_closed()

    assert asyncio.run(go())


def _relayed(way: str) -> Callable[[Any], Any]:
    """The calls whose bodies a model reads later (read where prompt policies apply:
    tests/e2e/test_wrap_relayed.py), each in ``way``, as their caller reads what comes back."""

    def on(resource: Any) -> Any:
        return getattr(resource, way) if way else resource

    def read(out: Any) -> Any:
        if way == "with_streaming_response":
            with out as r:
                return r.status_code, r.read()
        if way == "with_raw_response":
            return out.status_code, out.headers["x-request-id"], _dump(out.parse())
        return _dump(out)

    def call(c: Any) -> Any:
        items = [{"type": "message", "role": "user", "content": "hi"}]
        return [
            read(on(c.conversations).create(items=items, metadata={"a": "b"})),
            read(on(c.conversations.items).create("conv_1", items=items, include=["x"])),
            read(on(c.images).generate(model="gpt-image-1", prompt="a cat", n=2)),
            read(on(c.audio.speech).create(model="tts-1", voice="alloy", input="hi")),
        ]

    return call


def _dump(out: Any) -> Any:
    return out.model_dump() if isinstance(out, BaseModel) else out.content


@pytest.mark.parametrize("way", ["", "with_raw_response", "with_streaming_response"])
def test_relayed_calls_without_prompt_policies_are_the_clients_own(pair: Pair, way: str) -> None:
    (plain, plain_sent), (wrapped, wrapped_sent) = pair.each(_relayed(way))
    assert _sent(wrapped_sent) == _sent(plain_sent)
    if way == "with_raw_response":  # which request it was
        plain = [(s, f"req_{int(i[4:]) + 4}", *rest) for s, i, *rest in plain]
    assert wrapped == plain


@pytest.mark.parametrize("task", ["mcq", "classify", "judge"])
def test_a_calibrated_call_that_cannot_connect_raises_the_sdks_connection_error(
    tmp_path: Path, task: str
) -> None:
    """Every order's call failed to connect: the SDK's own ``APIConnectionError``, as the plain
    client raises (before, a multiple-choice question raised calguard's ``UpstreamError``, an
    ``InternalServerError``, which code catching connection errors missed)."""
    from guard.testing.servers import free_port

    guards = {
        "mcq": {"calibration": "pride", "options": ["red", "blue"]},
        "classify": {"task": "classify", "labels": ["yes", "no"]},
        "judge": {"task": "judge", "candidates": ["red", "blue"]},
    }
    question = "Which colour? A. red B. blue Response A: red Response B: blue"
    inner = openai.OpenAI(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="x", max_retries=0)
    wrapped = guard.wrap(inner, store=f"sqlite:///{tmp_path / 'w.db'}")
    with wrapped, pytest.raises(openai.APIConnectionError):
        wrapped.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": question}],
            extra_body={"guard": guards[task]},
        )
