"""The pipeline's reply as the OpenAI SDK's objects, for the in-process face (:mod:`guard.client`).

A non-stream reply becomes the SDK's model (the upstream's own object when calguard changed
nothing), a stream becomes an iterator of chunks (sync or async, closable, a context manager like
the SDK's ``Stream``), an error reply raises calguard's error, and an error event inside a stream
raises ``openai.APIError`` as the SDK does. ``with_raw_response`` gets a :class:`RawReply`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import httpx2 as httpx
import openai
from openai._models import construct_type
from pydantic import BaseModel

from guard import sse
from guard.errors import CalguardError
from guard.reply import Reply
from guard.upstreams.headers import header_lines

T = TypeVar("T")
SYNC_CALLS = 1000  # the OpenAI SDK's own limit on connections (DEFAULT_CONNECTION_LIMITS)


class Portal:
    """An event loop in a daemon thread: sync code runs the async pipeline through it, also
    step by step (a stream) and also when the caller's own thread runs a loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                # The wrapped client's sync calls run in this pool: as many at once as the
                # caller's threads ask, up to the SDK's own connection limit (asyncio's default
                # pool, min(32, cpu + 4) threads, held 40 threads' calls to 6 at a time).
                loop.set_default_executor(
                    ThreadPoolExecutor(SYNC_CALLS, thread_name_prefix="calguard-call")
                )
                self._thread = threading.Thread(target=loop.run_forever, daemon=True,
                                                 name="calguard")  # fmt: skip
                self._thread.start()
                self._loop = loop
            return self._loop

    def call(self, coro: Coroutine[Any, Any, T] | Any) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._ensure())
        return fut.result()

    def close(self) -> None:
        """Stop the loop after finishing async generators and its worker threads."""
        with self._lock:
            loop, self._loop = self._loop, None
            thread, self._thread = self._thread, None
        if loop is None or thread is None:
            return

        async def wind_down() -> None:
            await loop.shutdown_asyncgens()
            await loop.shutdown_default_executor()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(wind_down(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not loop.is_running():
            loop.close()


def model_of(kind: Any, data: Any) -> Any:
    """``data`` as the SDK's ``kind`` (a model or a union of them, e.g. a stream event), built
    as leniently as the SDK builds what it reads: a field an upstream leaves out is missing
    from the model, never a reason to hand back a dict."""
    return construct_type(type_=kind, value=data)


def checked(reply: Reply) -> Reply:
    """``reply``, unless it is calguard's error: then what the SDK would raise."""
    if reply.error is not None:
        raise as_sdk_error(reply.error)
    return reply


def parse(reply: Reply, kind: Any) -> Any:
    """A finished non-stream reply as an SDK object; an error reply raises."""
    checked(reply)
    if reply.raw is not None and reply.raw.obj is not None:
        return reply.raw.obj  # calguard changed nothing: the upstream's own object
    out = model_of(kind, json.loads(reply.body))
    if isinstance(out, BaseModel):  # as the SDK marks what it read: None when not one answer's
        out._request_id = reply.headers.get("x-request-id")  # type: ignore[attr-defined]
    return out


def _chunk(event: sse.Event, kind: Any) -> Any:
    data = event.json()
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        err = data["error"]
        raise openai.APIError(
            str(err.get("message") or "stream error"),
            httpx.Request("POST", "http://calguard.invalid/"),
            body=err,
        )
    return None if data is None else model_of(kind, data)


_NOWHERE = httpx.Request("POST", "http://calguard.invalid/v1")


def _headers(reply: Reply) -> httpx.Headers:
    """The reply's headers as the SDK shows them: the upstream's (with their content type)
    and calguard's own ``x-calguard-*``."""
    lines = header_lines(reply.headers)
    if not any(k == "content-type" for k, _ in lines):
        lines.append(("content-type", reply.media_type))
    return httpx.Headers(lines)


class _StreamResponse(httpx.Response):
    """``stream.response``, as on the SDK's streams: status and headers; closing it closes the
    stream (the SDK's stream helpers close a stream so)."""

    def __init__(self, reply: Reply, close: Any, aclose: Any = None) -> None:
        self._close_stream, self._aclose_stream = None, None  # the constructor closes it
        super().__init__(reply.status, headers=_headers(reply), request=_NOWHERE)
        self._close_stream, self._aclose_stream = close, aclose

    def close(self) -> None:
        if self._close_stream is not None:
            self._close_stream()
        super().close()

    async def aclose(self) -> None:
        if self._aclose_stream is not None:
            await self._aclose_stream()
        await super().aclose()


class AsyncReplyStream:
    def __init__(self, reply: Reply, kind: Any) -> None:
        assert reply.stream is not None
        self._stream = reply.stream
        self._kind = kind
        self.response: httpx.Response = _StreamResponse(reply, None, self._aclose)
        self.headers = self.response.headers

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for event in sse.aevents(self._stream):
            if event.done:
                break
            item = _chunk(event, self._kind)
            if item is not None:
                yield item

    def __anext__(self) -> Any:
        if not hasattr(self, "_it"):
            self._it = self.__aiter__()
        return self._it.__anext__()

    async def _aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()

    async def close(self) -> None:
        await self.response.aclose()

    async def __aenter__(self) -> AsyncReplyStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class ReplyStream:
    """A sync view of a reply's stream, pulled through the portal one chunk at a time."""

    def __init__(self, reply: Reply, kind: Any, portal: Portal) -> None:
        self._inner = AsyncReplyStream(reply, kind)
        self._it = self._inner.__aiter__()
        self._portal = portal
        self.response: httpx.Response = _StreamResponse(reply, self._close)
        self.headers = self.response.headers

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return self._portal.call(self._it.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def _close(self) -> None:
        self._portal.call(self._inner.close())

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> ReplyStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RawReply:
    """What ``with_raw_response.create(...)`` returns, as the SDK's raw response does:
    ``headers``, ``status_code``, ``request_id``, ``content``, ``text``, ``json()`` and
    ``parse()``; for an answer calguard passed as it came, the rest of the SDK's own raw
    response (``http_response``, ``retries_taken``, ``elapsed``, ``url``, ...) too."""

    def __init__(self, reply: Reply, parsed: Any) -> None:
        self._source = reply.raw.source if reply.raw is not None else None
        self.headers = _headers(reply)
        if self._source is not None:  # all of the upstream's headers, and calguard's own
            ours = [(k, v) for k, v in self.headers.multi_items() if k.startswith("x-calguard-")]
            self.headers = httpx.Headers([*self._source.headers.multi_items(), *ours])
        self.status_code = reply.status
        self.content = reply.body
        self._parsed = parsed
        self.http_response = None if self._source is None else self._source.http_response

    def __getattr__(self, name: str) -> Any:
        source = self.__dict__.get("_source")
        if source is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(source, name)

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def parse(self) -> Any:
        return self._parsed


_SDK_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


_BOTH: dict[tuple[type, type], type[Exception]] = {}


def _both(ours: type[CalguardError], sdk: type[openai.APIStatusError]) -> type[Exception]:
    """A class that is both calguard's error and the SDK's (made once per pair)."""
    if (ours, sdk) not in _BOTH:
        _BOTH[(ours, sdk)] = type(ours.__name__, (ours, sdk), {"__str__": _message})
    return _BOTH[(ours, sdk)]


def _message(self: Any) -> str:
    return str(self.message)


def as_sdk_error(exc: CalguardError) -> Exception:
    """calguard's error as the OpenAI SDK would have raised it for that status (a block is an
    ``openai.BadRequestError``) that is also still calguard's own class: code written for
    either catches it."""
    sdk = _SDK_ERRORS.get(exc.status) or (
        openai.InternalServerError if exc.status >= 500 else openai.APIStatusError
    )
    body = exc.to_body()
    request = _NOWHERE
    out: Any = Exception.__new__(_both(type(exc), sdk))
    Exception.__init__(out, exc.message)
    out.__dict__.update(vars(exc))
    out.message = exc.message
    out.request = request
    out.response = httpx.Response(exc.status, json=body, request=request)
    out.status_code = exc.status
    out.body = body.get("error", body)
    out.code, out.param, out.type = exc.code, exc.param, exc.type
    out.request_id = exc.request_id
    return out  # type: ignore[no-any-return]
