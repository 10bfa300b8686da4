"""``with_streaming_response`` on the wrapped client (:mod:`guard.resources`): the pipeline's
reply as the SDK's ``APIResponse``, in a context manager. Its headers are there at once; its
body is read when asked (``read``, ``text``, ``json``, ``iter_bytes``, ``iter_text``,
``iter_lines``: a stream as the SSE lines the policies let through) or parsed into the SDK's
object or stream (``parse``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx2 as httpx

from guard.rendering import AsyncReplyStream, Portal, RawReply, ReplyStream, checked, parse
from guard.reply import Reply

# Framing of the upstream's own bytes: the body here is already whole and decoded.
_FRAMING = frozenset({"content-encoding", "content-length", "transfer-encoding"})
_NOWHERE = httpx.Request("POST", "http://calguard.invalid/v1")


class _Bytes(httpx.SyncByteStream):
    def __init__(self, stream: AsyncIterator[bytes], portal: Portal) -> None:
        self._stream, self._portal = stream, portal

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                yield self._portal.call(self._stream.__anext__())
            except StopAsyncIteration:
                return

    def close(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            self._portal.call(aclose())


class _AsyncBytes(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterator[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


class StreamedReply:
    """A sync ``APIResponse``: ``headers``, ``status_code``, ``request_id``, ``http_response``,
    ``read()``, ``text()``, ``json()``, ``iter_bytes()``, ``iter_text()``, ``iter_lines()``,
    ``parse()``, ``close()``."""

    def __init__(self, reply: Reply, kinds: tuple[Any, Any], portal: Portal | None) -> None:
        self._reply, self._kinds, self._portal = reply, kinds, portal
        self._raw = RawReply(reply, None)
        headers = [(k, v) for k, v in self._raw.headers.multi_items() if k not in _FRAMING]
        stream: Any = None
        if reply.stream is not None:
            stream = _Bytes(reply.stream, portal) if portal else _AsyncBytes(reply.stream)
        self.http_response = httpx.Response(
            reply.status,
            headers=headers,
            content=reply.body if stream is None else None,
            stream=stream,
            request=_NOWHERE,
        )
        self.headers = self.http_response.headers
        self.status_code = reply.status

    def __getattr__(self, name: str) -> Any:  # retries_taken, elapsed, url, ... when known
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._raw, name)

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    @property
    def is_closed(self) -> bool:
        return self.http_response.is_closed

    def _parsed(self) -> Any:
        if self._reply.stream is None:
            return parse(self._reply, self._kinds[0])
        if self._portal is None:
            return AsyncReplyStream(self._reply, self._kinds[1])
        return ReplyStream(self._reply, self._kinds[1], self._portal)

    def parse(self) -> Any:
        return self._parsed()

    def read(self) -> bytes:
        return self.http_response.read()

    def text(self) -> str:
        self.read()
        return self.http_response.text

    def json(self) -> Any:
        return json.loads(self.read())

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        return self.http_response.iter_bytes(chunk_size)

    def iter_text(self, chunk_size: int | None = None) -> Iterator[str]:
        return self.http_response.iter_text(chunk_size)

    def iter_lines(self) -> Iterator[str]:
        return self.http_response.iter_lines()

    def close(self) -> None:
        self.http_response.close()


class AsyncStreamedReply(StreamedReply):
    """The async ``AsyncAPIResponse``: the same, its reading methods awaited."""

    async def parse(self) -> Any:
        return self._parsed()

    async def read(self) -> bytes:  # type: ignore[override]
        return await self.http_response.aread()

    async def text(self) -> str:  # type: ignore[override]
        await self.read()
        return self.http_response.text

    async def json(self) -> Any:
        return json.loads(await self.read())

    def iter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:  # type: ignore[override]
        return self.http_response.aiter_bytes(chunk_size)

    def iter_text(self, chunk_size: int | None = None) -> AsyncIterator[str]:  # type: ignore[override]
        return self.http_response.aiter_text(chunk_size)

    def iter_lines(self) -> AsyncIterator[str]:  # type: ignore[override]
        return self.http_response.aiter_lines()

    async def close(self) -> None:  # type: ignore[override]
        await self.http_response.aclose()


class StreamedContext:
    """``with ...with_streaming_response.create(...) as response:`` (the request is made on
    entering, as the SDK makes it; leaving closes the response)."""

    def __init__(self, send: Callable[[], Reply], kinds: tuple[Any, Any], portal: Portal) -> None:
        self._send, self._kinds, self._portal = send, kinds, portal

    def __enter__(self) -> StreamedReply:
        self._response = StreamedReply(checked(self._send()), self._kinds, self._portal)
        return self._response

    def __exit__(self, *exc: object) -> None:
        self._response.close()


class AsyncStreamedContext:
    """``async with ...with_streaming_response.create(...) as response:``."""

    def __init__(self, send: Callable[[], Awaitable[Reply]], kinds: tuple[Any, Any]) -> None:
        self._send, self._kinds = send, kinds

    async def __aenter__(self) -> AsyncStreamedReply:
        reply = checked(await self._send())
        self._response = AsyncStreamedReply(reply, self._kinds, None)
        return self._response

    async def __aexit__(self, *exc: object) -> None:
        await self._response.close()
