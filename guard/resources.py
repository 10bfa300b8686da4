"""The wrapped client's resources (:mod:`guard.client`): ``create`` of each text endpoint runs
the pipeline, the SDK's own helpers (``parse``, ``stream``) run on that ``create``, and what
does not ask the model (``retrieve``, ``list``, ...) is the client's own resource.

The wrapped client's own ``create`` methods are the pipeline's upstream (:func:`sdk_call`),
called with the request options of the call being served.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import openai
from pydantic import BaseModel

from guard.endpoints import Endpoint
from guard.pipeline import Pipeline
from guard.rendering import AsyncReplyStream, Portal, RawReply, ReplyStream, checked, parse
from guard.reply import Reply, new_request_id
from guard.streamed import AsyncStreamedContext, StreamedContext

# The SDK's per-call request options: they go to the wrapped client's calls, not in the body.
REQUEST_OPTIONS = ("extra_headers", "extra_query", "timeout")
_RAW = "with_raw_response"  # set among the options of a call made with_raw_response
_options: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "options", default=None
)


def sdk_call(resource: Any) -> Callable[..., Any]:
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


def lists(value: Any) -> Any:
    """``value`` as the SDK sends it: every iterable (a tuple, a deque, a generator) a list (a
    JSON array), every mapping a dict, every pydantic model (an earlier answer's message or
    output items, passed back in) its dict. The policies read lists and dicts: anything else
    would reach the model unread."""
    if isinstance(value, BaseModel):  # as the SDK dumps it
        exclude = getattr(value, "__api_exclude__", None)
        value = value.model_dump(exclude_unset=True, mode="json", exclude=exclude)
    if isinstance(value, Mapping):
        return {k: lists(v) for k, v in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | bytearray):
        return [lists(v) for v in value]
    return value


def _given(value: Any) -> bool:
    """Whether ``value`` is a value: the SDK's ``NOT_GIVEN`` and ``omit`` leave a field out."""
    return not isinstance(value, openai.NotGiven | openai.Omit)


def split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the request body: keyword arguments with ``extra_body`` merged in, the request options),
    without what the SDK would leave out."""
    given = {k: v for k, v in kwargs.items() if _given(v)}
    body = {k: lists(v) for k, v in given.items() if k not in REQUEST_OPTIONS}
    extra = body.pop("extra_body", None) or {}
    body.update({k: v for k, v in extra.items() if _given(v)})
    options = {k: given[k] for k in REQUEST_OPTIONS if given.get(k) is not None}
    return body, options


class Create:
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
        body, options = split(kwargs)
        _options.set({**options, _RAW: True} if self._raw else options)
        return await self._pipeline.handle(self._endpoint, body, new_request_id())

    def _render(self, reply: Reply) -> Any:
        out: Any
        if reply.stream is None:
            out = parse(reply, self._kinds[0])  # an error reply raises
        elif self._async:
            out = AsyncReplyStream(reply, self._kinds[1])
        else:
            out = ReplyStream(reply, self._kinds[1], self._portal)
        return RawReply(checked(reply), out) if self._raw else out

    def create(self, **kwargs: Any) -> Any:
        if self._async:

            async def go() -> Any:
                return self._render(await self._reply(kwargs))

            return go()
        return self._render(self._portal.call(self._reply(kwargs)))

    def streamed(self, **kwargs: Any) -> Any:
        """``with_streaming_response.create``: a context manager, the request made on entering."""
        if self._async:
            return AsyncStreamedContext(lambda: self._reply(kwargs), self._kinds)

        def send() -> Reply:
            return self._portal.call(self._reply(kwargs))

        return StreamedContext(send, self._kinds, self._portal)


# The SDK's request options as its helpers hand them to ``_post``, and as ``create`` takes them.
_POST_OPTIONS = (("headers", "extra_headers"), ("params", "extra_query"),
                 ("extra_json", "extra_body"), ("timeout", "timeout"))  # fmt: skip
# A resource's other ways to the model, which the wrapper does not (yet) take through it.
_AROUND_RESOURCE = frozenset({"connect", "compact"})


def _delegated(own: Any, name: str, way: str = "") -> Any:
    """``own.name``, unless it would ask the model around the pipeline."""
    if name.startswith("_"):
        raise AttributeError(name)
    if name in _AROUND_RESOURCE or (way and name in ("parse", "stream")):
        raise AttributeError(
            f"{way or name} on a calguard-wrapped client would go around its policies; use "
            "create (or with_raw_response.create), parse and stream, or the unwrapped client "
            "if that is what you mean"
        )
    return getattr(own, name)


class _Raw:
    """A resource's ``with_raw_response`` (or ``with_streaming_response``): ``create`` through
    the pipeline; what does not ask the model (``retrieve``, ``list``, ...) the client's own."""

    def __init__(self, create: Callable[..., Any], own: Any, way: str) -> None:
        self.create, self._own, self._way = create, own, way

    def __getattr__(self, name: str) -> Any:
        return _delegated(self._own, name, f"{self._way}.{name}")


def _post_parsed(result: Any, parser: Any) -> Any:
    """``result`` through a helper's parser, keeping its request id as the SDK does."""
    if parser is None:
        return result
    out = parser(result)
    if isinstance(out, BaseModel) and hasattr(result, "_request_id"):
        out._request_id = result._request_id  # type: ignore[attr-defined]
    return out


class Resource:
    """One endpoint of the wrapped client: ``create`` (and ``with_raw_response.create``) runs the
    pipeline; the SDK's own helpers (``parse``, ``stream``) run on that ``create``; what does
    not ask the model (``retrieve``, ``list``, ``delete``, ``messages``, ...) is the client's."""

    def __init__(self, make: Callable[[bool], Create], own: Any) -> None:
        self._create = make(False)
        raw = make(True)
        self.with_raw_response = _Raw(raw.create, own.with_raw_response, "with_raw_response")
        streaming = own.with_streaming_response
        self.with_streaming_response = _Raw(raw.streamed, streaming, "with_streaming_response")
        self._own = own

    def create(self, **kwargs: Any) -> Any:
        return self._create.create(**kwargs)

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        """The SDK's ``parse``, its request sent by :meth:`_post`."""
        return type(self._own).parse(self, *args, **kwargs)

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        """The SDK's ``stream`` helper, on a stream this resource's ``create`` opened."""
        return type(self._own).stream(self, *args, **kwargs)

    def _post(self, path: str, *, body: Any, options: Any, **_: Any) -> Any:
        """How the SDK's helpers send a request: here through ``create``, then their parser."""
        kwargs = dict(body or {})
        kwargs.update({ours: options[k] for k, ours in _POST_OPTIONS if k in options})
        parser = options.get("post_parser")
        result = self.create(**kwargs)
        if inspect.isawaitable(result):

            async def parsed() -> Any:
                return _post_parsed(await result, parser)

            return parsed()
        return _post_parsed(result, parser)

    def __getattr__(self, name: str) -> Any:
        return _delegated(self._own, name)


class Chat:
    def __init__(self, completions: Resource) -> None:
        self.completions = completions
