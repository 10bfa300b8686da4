"""The pipeline in-process: ``guard.wrap(client)`` and ``@guard.calibrated``.

Both run the same :class:`guard.pipeline.Pipeline` as the proxy (same calibration, same policies,
same ``guard`` evidence, same store), with the wrapped client or function as the upstream, and
render its reply as the OpenAI SDK's objects (:mod:`guard.rendering`)::

    client = guard.wrap(OpenAI())            # or AsyncOpenAI(); everything else is delegated
    r = client.chat.completions.create(model=..., messages=..., guard={"calibration": "pride"})
    r.model_extra["guard"]["answer"]
    raw = client.chat.completions.with_raw_response.create(...)   # raw.headers, raw.parse()

    @guard.calibrated                         # bare, or @guard.calibrated(calibration="cyclic")
    def ask(messages, **kw) -> str: ...       # returns text or a ChatCompletion; sync or async
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
from collections.abc import Callable
from typing import Any, TypeVar, overload

import openai
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from guard.config import RouteConfig, Settings
from guard.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES, Endpoint
from guard.pipeline import Pipeline
from guard.rendering import (
    AsyncReplyStream,
    Portal,
    RawReply,
    ReplyStream,
    as_sdk_error,
    parse,
)
from guard.reply import Reply, new_request_id
from guard.store import Store, open_store
from guard.tasks.job import Recent
from guard.upstreams.function import FunctionUpstream, accepted

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# The SDK's per-call request options: they go to the wrapped client's calls, not in the body.
REQUEST_OPTIONS = ("extra_headers", "extra_query", "timeout")
_RAW = "with_raw_response"  # set among the options of a call made with_raw_response
_options: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "options", default=None
)


def _pipeline(
    functions: dict[str, Callable[..., Any]],
    is_async: bool,
    store: str | Store,
    route: RouteConfig | None,
    cache: Recent | None = None,
) -> Pipeline:
    st = open_store(store) if isinstance(store, str) else store
    settings = Settings(default_route=route or RouteConfig())
    return Pipeline(settings, st, upstream=FunctionUpstream(functions, is_async), cache=cache)


def _with_options(resource: Any) -> Callable[..., Any]:
    """``resource.create`` called with the request options of the call being served; for a call
    made ``with_raw_response``, the resource's own ``with_raw_response.create``: the upstream's
    headers come back, and the upstream sees the request the plain client would send."""
    create = resource.create
    raw = getattr(getattr(resource, "with_raw_response", None), "create", None)

    @functools.wraps(create)
    def call(**kwargs: Any) -> Any:
        options = dict(_options.get() or {})
        fn = raw if options.pop(_RAW, False) and raw is not None else create
        return fn(**kwargs, **options)

    return call


def _lists(value: Any) -> Any:
    """``value`` with every tuple a list, as the SDK sends it (a JSON array): the policies read
    lists, and a tuple of text parts or strings would otherwise reach the model unread."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


def _given(value: Any) -> bool:
    """Whether ``value`` is a value: the SDK's ``NOT_GIVEN`` and ``omit`` leave a field out."""
    return not isinstance(value, openai.NotGiven | openai.Omit)


def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the request body: keyword arguments with ``extra_body`` merged in, the request options),
    without what the SDK would leave out."""
    given = {k: v for k, v in kwargs.items() if _given(v)}
    body = {k: _lists(v) for k, v in given.items() if k not in REQUEST_OPTIONS}
    extra = body.pop("extra_body", None) or {}
    body.update({k: v for k, v in extra.items() if _given(v)})
    options = {k: given[k] for k in REQUEST_OPTIONS if given.get(k) is not None}
    return body, options


class _Create:
    """``create`` of one endpoint, through the pipeline; ``raw`` for ``with_raw_response``."""

    def __init__(
        self,
        pipeline: Pipeline,
        endpoint: Endpoint,
        kinds: tuple[Any, Any],
        is_async: bool,
        portal: Portal,
        raw: bool = False,
    ) -> None:
        self._pipeline = pipeline
        self._endpoint = endpoint
        self._kinds = kinds
        self._async = is_async
        self._portal = portal
        self._raw = raw

    async def _reply(self, kwargs: dict[str, Any]) -> Reply:
        body, options = _split(kwargs)
        _options.set({**options, _RAW: True} if self._raw else options)
        return await self._pipeline.handle(self._endpoint, body, new_request_id())

    def _render(self, reply: Reply) -> Any:
        if reply.stream is not None:
            out: Any = (
                AsyncReplyStream(reply, self._kinds[1])
                if self._async
                else ReplyStream(reply, self._kinds[1], self._portal)
            )
        else:
            out = parse(reply, self._kinds[0]) if not self._raw or reply.error else None
        if self._raw:
            if reply.error is not None:
                raise as_sdk_error(reply.error)
            if out is None:
                out = parse(reply, self._kinds[0])
            return RawReply(reply, out)
        return out

    def create(self, **kwargs: Any) -> Any:
        if self._async:

            async def go() -> Any:
                return self._render(await self._reply(kwargs))

            return go()
        return self._render(self._portal.call(self._reply(kwargs)))


class _Resource:
    def __init__(self, make: Callable[[bool], _Create]) -> None:
        self._create = make(False)
        self.with_raw_response = make(True)

    def create(self, **kwargs: Any) -> Any:
        return self._create.create(**kwargs)


class _Chat:
    def __init__(self, completions: _Resource) -> None:
        self.completions = completions


class WrappedClient:
    """A client whose text endpoints (``chat.completions``, ``completions``, ``responses``,
    ``embeddings``) run calguard's pipeline, policies included whatever the endpoint;
    everything else is the client's own."""

    def __init__(
        self,
        client: Any,
        *,
        store: str | Store = "sqlite:///calguard.db",
        route: RouteConfig | None = None,
        _parent: WrappedClient | None = None,
    ) -> None:
        self._client = client
        self._store, self._route = store, route
        chat_create = client.chat.completions.create
        # openai decorates its methods, which hides coroutine functions: ask the client's type.
        is_async = isinstance(client, openai.AsyncOpenAI) or inspect.iscoroutinefunction(
            chat_create
        )
        functions = {CHAT.path: _with_options(client.chat.completions)}
        for endpoint, name in ((COMPLETIONS, "completions"), (RESPONSES, "responses"),
                               (EMBEDDINGS, "embeddings")):  # fmt: skip
            resource = getattr(client, name, None)
            if getattr(resource, "create", None) is not None:
                functions[endpoint.path] = _with_options(resource)
        if _parent is None:
            self._portal = Portal()
            self._pipeline = pipeline = _pipeline(functions, is_async, store, route)
        else:  # a with_options copy: the parent's store, state snapshots and portal thread
            self._portal = _parent._portal
            parent = _parent._pipeline
            self._pipeline = pipeline = _pipeline(
                functions, is_async, parent.store, route, parent.cache
            )

        def make(endpoint: Endpoint, kinds: tuple[Any, Any]) -> _Resource:
            return _Resource(
                lambda raw: _Create(pipeline, endpoint, kinds, is_async, self._portal, raw)
            )

        self.chat = _Chat(make(CHAT, (ChatCompletion, ChatCompletionChunk)))
        self.completions = make(COMPLETIONS, (Completion, Completion))
        self.responses = make(RESPONSES, (Response, ResponseStreamEvent))
        self.embeddings = make(EMBEDDINGS, (CreateEmbeddingResponse, CreateEmbeddingResponse))

    def __getattr__(self, name: str) -> Any:
        if name in _AROUND:  # would reach the model without the pipeline
            raise AttributeError(
                f"{name} on a calguard-wrapped client would go around its policies; use "
                "chat.completions.create (response_format for structured output), or the "
                "unwrapped client if that is what you mean"
            )
        return getattr(self._client, name)

    def with_options(self, **options: Any) -> WrappedClient:
        """The SDK's ``with_options``, still wrapped: the same store, route and calibration
        state (one key's warm-up is shared with the copy), and, as the SDK's copies share
        their HTTP client, closing either closes what they share."""
        return WrappedClient(
            self._client.with_options(**options), store=self._store, route=self._route,
            _parent=self,
        )  # fmt: skip

    copy = with_options

    def close(self) -> Any:
        """Close the client, the portal thread and the store."""
        self._portal.close()
        self._pipeline.store.close()
        return self._client.close()

    def __enter__(self) -> WrappedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> WrappedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._portal.close()
        self._pipeline.store.close()
        await self._client.close()


# The raw client's ways to the model that the wrapper does not take through the pipeline.
_AROUND = frozenset({"beta", "post", "request", "get", "put", "patch", "delete"})


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
    answer as text, or a ChatCompletion carrying the ``guard`` evidence. Without ``route``, the
    function's route has ``auto_detect`` on: a multiple-choice question is calibrated even
    when no ``guard`` argument is given.
    """

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        returns_text: list[bool] = [False]  # whether the last answer of ``f`` was text
        is_async = inspect.iscoroutinefunction(f)

        async def upstream_call(**body: Any) -> Any:
            kwargs = accepted(f, body)
            kwargs.pop("extra_body", None)
            out = await f(**kwargs) if is_async else await asyncio.to_thread(f, **kwargs)
            returns_text[0] = isinstance(out, str)
            return out

        # A function declared calibrated detects MCQs even without guard arguments.
        own = route or RouteConfig(auto_detect=True)
        pipeline = _pipeline({CHAT.path: upstream_call}, True, store, own)
        portal = Portal()

        async def run(messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> Any:
            body = {
                "model": kwargs.pop("model", "local"),
                "messages": _lists(messages),
                **kwargs,
                "guard": {**guard, **kwargs.pop("guard", {})},
            }
            reply = await pipeline.handle(CHAT, body, new_request_id())
            if reply.error is not None:
                raise as_sdk_error(reply.error)
            if returns_text[0]:
                return json.loads(reply.body)["choices"][0]["message"]["content"]
            return parse(reply, ChatCompletion)

        if is_async:

            @functools.wraps(f)
            async def async_wrapper(messages: list[dict[str, Any]], **kwargs: Any) -> Any:
                return await run(messages, kwargs)

            return async_wrapper

        @functools.wraps(f)
        def sync_wrapper(messages: list[dict[str, Any]], **kwargs: Any) -> Any:
            return portal.call(run(messages, kwargs))

        return sync_wrapper

    return decorate(fn) if fn is not None else decorate
