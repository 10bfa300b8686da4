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
import functools
import inspect
import json
import math
from collections.abc import Callable
from typing import Any, TypeVar, overload

import openai
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from guard.config import RouteConfig, Settings
from guard.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES, Endpoint
from guard.pipeline import Pipeline
from guard.relay_checks import RelayChecks
from guard.relayed_calls import Reading
from guard.rendering import Portal, checked, parse
from guard.reply import new_request_id
from guard.resources import Chat, Create, Resource, lists, sdk_call
from guard.store import Store, open_store
from guard.upstreams.function import FunctionUpstream, accepted

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _pipeline(
    functions: dict[str, Callable[..., Any]],
    is_async: bool,
    store: str | Store,
    route: RouteConfig | None,
    parent: Pipeline | None = None,
) -> Pipeline:
    st = open_store(store) if isinstance(store, str) else store
    # No deadline of calguard's own: the wrapped client's timeout and retries (the function's
    # own time, for @calibrated) bound each call, as without calguard. A copy shares its
    # parent's state snapshots and spool.
    settings = Settings(default_route=route or RouteConfig(), deadline_s=math.inf)
    up = FunctionUpstream(functions, is_async)
    if parent is None:
        return Pipeline(settings, st, upstream=up)
    return Pipeline(settings, st, upstream=up, cache=parent.cache, spool=parent.spool)


class WrappedClient:
    """A client whose text endpoints (``chat.completions``, ``completions``, ``responses``,
    ``embeddings``) run calguard's pipeline, policies included whatever the endpoint; whose
    calls that send text a model reads later (``conversations``, ``images.generate``,
    ``audio.speech``: :mod:`guard.relayed_calls`) are read by the prompt policies first;
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
        functions = {CHAT.path: sdk_call(client.chat.completions)}
        for endpoint, name in ((COMPLETIONS, "completions"), (RESPONSES, "responses"),
                               (EMBEDDINGS, "embeddings")):  # fmt: skip
            resource = getattr(client, name, None)
            if getattr(resource, "create", None) is not None:
                functions[endpoint.path] = sdk_call(resource)
        if _parent is None:
            self._portal = Portal()
            self._pipeline = pipeline = _pipeline(functions, is_async, store, route)
        else:  # a with_options copy: the parent's store, state snapshots and portal thread
            self._portal = _parent._portal
            parent = _parent._pipeline
            self._pipeline = pipeline = _pipeline(functions, is_async, parent.store, route, parent)

        def make(endpoint: Endpoint, kinds: tuple[Any, Any], own: Any) -> Resource:
            return Resource(
                lambda raw: Create(pipeline, endpoint, kinds, is_async, self._portal, raw), own
            )

        chat = (ChatCompletion, ChatCompletionChunk)
        self.chat = Chat(make(CHAT, chat, client.chat.completions))
        self.completions = make(COMPLETIONS, (Completion, Completion), client.completions)
        self.responses = make(RESPONSES, (Response, ResponseStreamEvent), client.responses)
        embeddings = (CreateEmbeddingResponse, CreateEmbeddingResponse)
        self.embeddings = make(EMBEDDINGS, embeddings, client.embeddings)
        # the calls whose bodies a model reads later: the client's own, read first
        policies = {**pipeline.policies, "": pipeline.default_policies}
        checks = RelayChecks(pipeline.settings, policies, pipeline.store, pipeline.scrub,
                             pipeline.metrics)  # fmt: skip
        reading = Reading(checks, self._portal, is_async)
        self.conversations = reading.wrap(client, "conversations")
        self.images = reading.wrap(client, "images")
        self.audio = reading.wrap(client, "audio")

    def __getattr__(self, name: str) -> Any:
        if name in _AROUND:  # would reach the model without the pipeline
            raise AttributeError(
                f"{name} on a calguard-wrapped client would go around its policies; use "
                "chat.completions.create (response_format for structured output), or the "
                "unwrapped client if that is what you mean"
            )
        return getattr(self._client, name)

    @property
    def with_raw_response(self) -> Any:
        """The SDK's ``client.with_raw_response``, still wrapped: each resource's own
        ``with_raw_response`` (``.chat.completions.create`` runs the pipeline)."""
        return _Way(self, "with_raw_response", self._client.with_raw_response)

    @property
    def with_streaming_response(self) -> Any:
        """The SDK's ``client.with_streaming_response``, still wrapped, as
        :attr:`with_raw_response`."""
        return _Way(self, "with_streaming_response", self._client.with_streaming_response)

    def with_options(self, **options: Any) -> WrappedClient:
        """The SDK's ``with_options``, still wrapped: the same store, route and calibration
        state (one key's warm-up is shared with the copy), and, as the SDK's copies share
        their HTTP client, closing either closes what they share."""
        return WrappedClient(
            self._client.with_options(**options), store=self._store, route=self._route,
            _parent=self,
        )  # fmt: skip

    copy = with_options

    def _close_ours(self) -> None:
        self._portal.close()
        self._pipeline.spool.close()
        self._pipeline.store.close()

    def close(self) -> Any:
        """Close the client, the portal thread, the spool's thread and the store."""
        self._close_ours()
        return self._client.close()

    def __enter__(self) -> WrappedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> WrappedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._close_ours()
        await self._client.close()


class _Way:
    """``with_raw_response`` (or ``with_streaming_response``) of a wrapped client or of one of
    its groups (``chat``): each resource's own form of that way, so ``client.with_raw_response.
    chat.completions.create`` is ``client.chat.completions.with_raw_response.create``; what the
    wrapped client refuses (``beta``) is refused here too; ``own`` is the SDK's form, for what
    has no way of its own."""

    def __init__(self, target: Any, way: str, own: Any) -> None:
        self._target, self._way, self._own = target, way, own

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._target, name)
        form = getattr(value, self._way, None)
        if form is not None:
            return form
        if isinstance(value, Chat):
            return _Way(value, self._way, getattr(self._own, name))
        return getattr(self._own, name)


# The raw client's ways to the model that the wrapper does not take through the pipeline.
_AROUND = frozenset({"beta", "realtime", "post", "request", "get", "put", "patch", "delete"})


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
                "messages": lists(messages),
                **kwargs,
                "guard": {**guard, **kwargs.pop("guard", {})},
            }
            reply = checked(await pipeline.handle(CHAT, body, new_request_id()))
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
