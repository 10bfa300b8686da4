"""The pipeline in-process: ``guard.wrap(client)`` and ``@guard.calibrated``.

Both run the same :class:`guard.pipeline.Pipeline` as the proxy (same calibration, same ``guard``
evidence, same store), with the wrapped client or function as the upstream::

    client = guard.wrap(OpenAI())            # or AsyncOpenAI(); everything else is delegated
    r = client.chat.completions.create(model=..., messages=..., guard={"calibration": "pride"})
    r.model_extra["guard"]["answer"]

    @guard.calibrated                         # bare, or @guard.calibrated(calibration="cyclic")
    def ask(messages, **kw) -> str: ...       # returns text or a ChatCompletion; sync or async
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import json
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar, overload

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from guard.config import RouteConfig, Settings
from guard.errors import CalguardError
from guard.pipeline import Calibrated, Passthrough, Pipeline, StreamThrough, new_request_id
from guard.store import Store
from guard.upstream import RawResponse

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _completion_dict(value: Any) -> dict[str, Any]:
    if hasattr(value, "model_dump"):
        return dict(value.model_dump(mode="json", exclude_unset=True))
    if isinstance(value, dict):
        return value
    return {
        "id": "chatcmpl-local",
        "object": "chat.completion",
        "created": 0,
        "model": "local",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": str(value)},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
    }


def _accepted(fn: Callable[..., Any], body: dict[str, Any]) -> dict[str, Any]:
    """The body's keyword arguments that ``fn`` accepts (all of them if it takes ``**kwargs``)."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return body
    names = {p.name for p in params}
    return {k: v for k, v in body.items() if k in names}


class CallableUpstream:
    """An upstream that is a Python callable taking the request body as keyword arguments.
    A sync callable runs in a thread, so the orders of a question are still asked at once."""

    def __init__(self, fn: Callable[..., Any], is_async: bool) -> None:
        self.fn = fn
        self.is_async = is_async

    async def _one(self, body: dict[str, Any]) -> dict[str, Any]:
        kwargs = _accepted(self.fn, body)
        if self.is_async:
            return _completion_dict(await self.fn(**kwargs))
        return _completion_dict(await asyncio.to_thread(self.fn, **kwargs))

    async def post(self, path: str, body: dict[str, Any]) -> RawResponse:
        n = int(body.get("n") or 1)
        first = await self._one(body)
        choices = list(first.get("choices") or [])
        # A function that answers once per call is called again for every sample asked.
        while len(choices) < n:
            more = await self._one({k: v for k, v in body.items() if k != "n"})
            choices += [{**c, "index": len(choices)} for c in more.get("choices") or []]
        first["choices"] = choices
        return RawResponse(200, json.dumps(first).encode(), "application/json")

    async def get(self, path: str) -> RawResponse:
        return RawResponse(404, b'{"error": {"message": "not served"}}', "application/json")

    async def stream(self, path: str, body: dict[str, Any]) -> Any:
        raise CalguardError("streaming pass-through goes straight to the wrapped client")
        yield b""  # pragma: no cover

    async def aclose(self) -> None:
        return None


def _pipeline(upstream: CallableUpstream, store: str | Store, route: RouteConfig) -> Pipeline:
    st = store if isinstance(store, Store) else Store(Settings(store=store).sqlite_path)
    return Pipeline(Settings(default_route=route), upstream, st)


def _body(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The request body: keyword arguments with ``extra_body`` merged in (``guard`` may come
    either as a keyword or inside ``extra_body``, as the OpenAI SDK sends it)."""
    body = dict(kwargs)
    body.update(body.pop("extra_body", None) or {})
    return body


def _without_guard(kwargs: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in kwargs.items() if k != "guard"}
    extra = {k: v for k, v in (out.get("extra_body") or {}).items() if k != "guard"}
    if "extra_body" in out:
        out["extra_body"] = extra or None
    return out


def _chunks(completion: dict[str, Any]) -> Iterator[ChatCompletionChunk]:
    base = {k: completion[k] for k in ("id", "created", "model")}
    answer = completion["choices"][0]["message"]["content"]
    yield ChatCompletionChunk.model_validate(
        {
            **base,
            "object": "chat.completion.chunk",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": answer},
                    "finish_reason": None,
                }
            ],
        }
    )
    yield ChatCompletionChunk.model_validate(
        {
            **base,
            "object": "chat.completion.chunk",
            "guard": completion["guard"],
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
    )


class _Completions:
    def __init__(self, create: Callable[..., Any], pipeline: Pipeline, is_async: bool) -> None:
        self._create = create
        self._pipeline = pipeline
        self._async = is_async

    async def _acreate(self, kwargs: dict[str, Any]) -> Any:
        body = _body(kwargs)
        out = await self._pipeline.chat(body, new_request_id())
        if isinstance(out, StreamThrough | Passthrough):
            # Nothing to calibrate: the wrapped client answers exactly as it would have.
            result = self._create(**_without_guard(kwargs))
            return await result if inspect.isawaitable(result) else result
        assert isinstance(out, Calibrated)
        if body.get("stream"):
            return _chunks(out.completion)
        return ChatCompletion.model_validate(out.completion)

    def create(self, **kwargs: Any) -> Any:
        coro = self._acreate(kwargs)
        return coro if self._async else _run(coro)


class _Chat:
    def __init__(self, completions: _Completions) -> None:
        self.completions = completions


class WrappedClient:
    """A client whose ``chat.completions.create`` runs calguard; all else is the client's."""

    def __init__(
        self,
        client: Any,
        *,
        store: str | Store = "sqlite:///calguard.db",
        route: RouteConfig | None = None,
    ) -> None:
        self._client = client
        create = client.chat.completions.create
        # openai decorates its methods, which hides coroutine functions: ask the client's type.
        is_async = isinstance(client, openai.AsyncOpenAI) or inspect.iscoroutinefunction(create)
        pipeline = _pipeline(CallableUpstream(create, is_async), store, route or RouteConfig())
        self.chat = _Chat(_Completions(create, pipeline, is_async))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def wrap(
    client: T, *, store: str | Store = "sqlite:///calguard.db", route: RouteConfig | None = None
) -> T:
    """Wrap an ``OpenAI`` or ``AsyncOpenAI`` client; its type is kept for the caller's sake."""
    return WrappedClient(client, store=store, route=route)  # type: ignore[return-value]


@overload
def calibrated(fn: F) -> F: ...
@overload
def calibrated(
    *, store: str | Store = ..., route: RouteConfig | None = ..., **guard: Any
) -> Callable[[F], F]: ...


def calibrated(
    fn: Any = None,
    *,
    store: str | Store = "sqlite:///calguard.db",
    route: RouteConfig | None = None,
    **guard: Any,
) -> Any:
    """Calibrate a function ``fn(messages, **kwargs)`` that returns text or a ChatCompletion.

    ``guard`` keyword arguments become the request's ``guard`` object (``calibration="pride"``,
    ``task="mcq"``, ...). The decorated function returns what ``fn`` returns: the calibrated
    answer as text, or a ChatCompletion carrying the ``guard`` evidence.
    """

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        returns_text: list[bool] = []

        is_async = inspect.iscoroutinefunction(f)

        async def upstream_call(**body: Any) -> Any:
            kwargs = _accepted(f, body)
            out = await f(**kwargs) if is_async else await asyncio.to_thread(f, **kwargs)
            returns_text.append(isinstance(out, str))
            return out

        pipeline = _pipeline(CallableUpstream(upstream_call, True), store, route or RouteConfig())

        async def run(messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> Any:
            body = {
                "model": kwargs.pop("model", "local"),
                "messages": messages,
                **kwargs,
                "guard": {**guard, **kwargs.pop("guard", {})},
            }
            out = await pipeline.chat(body, new_request_id())
            completion = (
                out.completion
                if isinstance(out, Calibrated)
                else json.loads(out.raw.body)
                if isinstance(out, Passthrough)
                else await upstream_call(**body)
            )
            if returns_text and returns_text[-1]:
                return completion["choices"][0]["message"]["content"]
            return ChatCompletion.model_validate(completion)

        if is_async:

            @functools.wraps(f)
            async def async_wrapper(messages: list[dict[str, Any]], **kwargs: Any) -> Any:
                return await run(messages, kwargs)

            return async_wrapper

        @functools.wraps(f)
        def sync_wrapper(messages: list[dict[str, Any]], **kwargs: Any) -> Any:
            return _run(run(messages, kwargs))

        return sync_wrapper

    return decorate(fn) if fn is not None else decorate
