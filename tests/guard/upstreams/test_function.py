"""guard.upstreams.function: Python callables as an upstream (the in-process client's path)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from guard import sse
from guard.upstreams.function import FunctionUpstream, accepted, as_dict

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5}


def test_accepted_passes_everything_to_kwargs() -> None:
    def fn(model: str, **kwargs: Any) -> None: ...

    assert accepted(fn, {**BODY, "guard_extra": 1}) == {**BODY, "guard_extra": 1}


def test_accepted_drops_what_a_function_does_not_name() -> None:
    def fn(model: str, messages: list[Any]) -> None: ...

    assert accepted(fn, BODY) == {"model": "m", "messages": BODY["messages"]}


def test_accepted_puts_the_rest_in_extra_body_when_taken() -> None:
    def fn(model: str, messages: list[Any], extra_body: dict[str, Any] | None = None) -> None: ...

    body = {**BODY, "top_k": 5, "extra_body": {"seed": 1}}
    assert accepted(fn, body) == {
        "model": "m",
        "messages": BODY["messages"],
        "extra_body": {"seed": 1, "temperature": 0.5, "top_k": 5},
    }
    # Nothing left over: no extra_body is invented.
    assert accepted(fn, {"model": "m", "messages": []}) == {"model": "m", "messages": []}


def _completion(text: str, n: int = 1) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            for i in range(n)
        ],
    }


def test_as_dict_from_text_and_from_an_sdk_object() -> None:
    assert as_dict("plain")["choices"][0]["message"]["content"] == "plain"
    d = {"id": "x"}
    assert as_dict(d) is d

    class Sdk:
        def model_dump(self, mode: str, exclude_unset: bool, warnings: bool) -> dict[str, Any]:
            assert (mode, exclude_unset, warnings) == ("json", True, False)
            return {"id": "sdk"}

    assert as_dict(Sdk()) == {"id": "sdk"}


def test_post_with_a_sync_callable_runs_it_off_the_event_loop() -> None:
    calls: list[dict[str, Any]] = []
    threads: list[int] = []

    def create(model: str, messages: list[Any], temperature: float = 1.0) -> dict[str, Any]:
        calls.append({"model": model, "messages": messages, "temperature": temperature})
        threads.append(threading.get_ident())
        return _completion("hello")

    up = FunctionUpstream({"/chat/completions": create}, is_async=False)
    resp = asyncio.run(up.post("/chat/completions", dict(BODY)))
    assert (resp.status, resp.content_type) == (200, "application/json")
    assert resp.json() == _completion("hello")
    assert resp.obj == _completion("hello")
    assert calls == [{"model": "m", "messages": BODY["messages"], "temperature": 0.5}]
    assert threads != [threading.get_ident()]


def test_post_with_an_async_callable() -> None:
    seen: list[dict[str, Any]] = []

    async def create(**kwargs: Any) -> str:
        seen.append(kwargs)
        return "from async"

    up = FunctionUpstream({"/chat/completions": create}, is_async=True)
    resp = asyncio.run(up.post("/chat/completions", dict(BODY)))
    assert resp.json()["choices"][0]["message"]["content"] == "from async"
    assert seen == [BODY]


def test_n_samples_from_a_callable_that_answers_once() -> None:
    seen: list[dict[str, Any]] = []

    def create(**kwargs: Any) -> dict[str, Any]:
        seen.append(kwargs)
        return _completion(f"answer {len(seen)}")

    up = FunctionUpstream({"/chat/completions": create}, is_async=False)
    resp = asyncio.run(up.post("/chat/completions", {**BODY, "n": 3}))
    choices = resp.json()["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]
    assert [c["message"]["content"] for c in choices] == ["answer 1", "answer 2", "answer 3"]
    assert len(seen) == 3
    assert seen[0]["n"] == 3
    assert "n" not in seen[1]
    assert "n" not in seen[2]
    assert resp.obj is None  # the object of the first call is not the whole answer


def test_n_samples_from_a_callable_that_honours_n_is_one_call() -> None:
    seen: list[dict[str, Any]] = []

    def create(**kwargs: Any) -> dict[str, Any]:
        seen.append(kwargs)
        return _completion("x", n=kwargs.get("n", 1))

    up = FunctionUpstream({"/chat/completions": create}, is_async=False)
    resp = asyncio.run(up.post("/chat/completions", {**BODY, "n": 4}))
    assert len(resp.json()["choices"]) == 4
    assert len(seen) == 1
    assert resp.obj is not None


def test_n_samples_from_a_callable_that_answers_two_choices() -> None:
    def create(**kwargs: Any) -> dict[str, Any]:
        return _completion("x", n=2)

    up = FunctionUpstream({"/chat/completions": create}, is_async=False)
    resp = asyncio.run(up.post("/chat/completions", {**BODY, "n": 3}))
    assert [c["index"] for c in resp.json()["choices"]] == [0, 1, 2]


def test_topping_up_n_does_not_change_the_callables_dict() -> None:
    shared = _completion("same")

    def create(**kwargs: Any) -> dict[str, Any]:
        return shared

    up = FunctionUpstream({"/chat/completions": create}, is_async=False)
    asyncio.run(up.post("/chat/completions", {**BODY, "n": 3}))
    assert len(shared["choices"]) == 1
    resp = asyncio.run(up.post("/chat/completions", dict(BODY)))
    assert len(resp.json()["choices"]) == 1


def test_an_unserved_path() -> None:
    up = FunctionUpstream({"/chat/completions": lambda **kw: "x"}, is_async=False)
    with pytest.raises(LookupError, match="/completions is not served"):
        asyncio.run(up.post("/completions", {"model": "m", "prompt": "p"}))
    assert asyncio.run(up.get("/models")).status == 404


def test_exceptions_of_the_callable_reach_the_caller_unchanged() -> None:
    class Rejected(Exception):
        pass

    def create(**kwargs: Any) -> None:
        raise Rejected("bad request")

    up = FunctionUpstream({"/chat/completions": create}, is_async=False)
    with pytest.raises(Rejected, match="bad request"):
        asyncio.run(up.post("/chat/completions", dict(BODY)))


def _chunk(text: str) -> dict[str, Any]:
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}}],
    }


async def _collect(opening: Any) -> list[bytes]:
    opened = await opening
    assert (opened.status, opened.content_type) == (200, "text/event-stream")
    return [chunk async for chunk in opened.chunks]


def test_stream_with_a_sync_iterator() -> None:
    seen: list[dict[str, Any]] = []
    closed: list[bool] = []

    def create(**kwargs: Any) -> Iterator[dict[str, Any]]:
        seen.append(kwargs)

        def gen() -> Iterator[dict[str, Any]]:
            try:
                yield _chunk("Hel")
                yield _chunk("lo")
            finally:
                closed.append(True)

        return gen()

    up = FunctionUpstream({"/chat/completions": create}, is_async=False)
    out = asyncio.run(_collect(up.stream("/chat/completions", dict(BODY))))
    assert out == [sse.encode(_chunk("Hel")), sse.encode(_chunk("lo")), sse.DONE]
    assert seen[0]["stream"] is True
    assert closed == [True]


def test_stream_with_an_async_iterator() -> None:
    class Stream:
        def __init__(self) -> None:
            self.closed = False

        def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
            return self._gen()

        async def _gen(self) -> AsyncIterator[dict[str, Any]]:
            for t in ("a", "b", "c"):
                yield _chunk(t)

        async def close(self) -> None:
            self.closed = True

    streams: list[Stream] = []

    async def create(**kwargs: Any) -> Stream:
        assert kwargs["stream"] is True
        streams.append(Stream())
        return streams[-1]

    up = FunctionUpstream({"/chat/completions": create}, is_async=True)
    out = asyncio.run(_collect(up.stream("/chat/completions", dict(BODY))))
    assert out[-1] == sse.DONE
    events = [e for raw in out for e in sse.EventReader().feed(raw)]
    assert [e.json() for e in events[:-1]] == [_chunk("a"), _chunk("b"), _chunk("c")]
    assert events[-1].done
    assert streams[0].closed  # an awaitable close() is awaited


def test_stream_chunks_are_parsed_by_the_sse_reader_as_json() -> None:
    def create(**kwargs: Any) -> list[dict[str, Any]]:
        return [_chunk('quote " and\nnewline')]

    up = FunctionUpstream({"/chat/completions": create}, is_async=False)
    out = asyncio.run(_collect(up.stream("/chat/completions", dict(BODY))))
    [event] = sse.EventReader().feed(out[0])
    assert event.json() == _chunk('quote " and\nnewline')
    assert json.loads(out[0][len(b"data: ") :]) == _chunk('quote " and\nnewline')
