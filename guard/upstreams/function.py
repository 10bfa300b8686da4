"""The ``function`` upstream: Python callables in-process (the wrapped client's ``create``
methods, or a decorated function), so :mod:`guard.client` runs the same pipeline as the proxy.

A call's keyword arguments are the request body: the ones the callable does not name go in
``extra_body`` when it takes that (the OpenAI SDK's methods do), else are dropped. Exceptions
raised by the callable (``openai.BadRequestError``, ...) reach the caller unchanged, as they would
without calguard. A callable may answer with the SDK's raw response (``with_raw_response``) or
stream: its headers then come back with the answer.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from guard import sse
from guard.upstreams.base import Body, Headers, RawResponse, RawStream
from guard.upstreams.headers import from_wire

_END = object()


def accepted(fn: Callable[..., Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` as keyword arguments for ``fn``: all of it if ``fn`` takes ``**kwargs``; else the
    names it takes, the rest in ``extra_body`` if it takes that."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(body)
    out = {k: v for k, v in body.items() if k in params}
    extra = {k: v for k, v in body.items() if k not in params}
    if extra and "extra_body" in params:
        out["extra_body"] = {**(out.get("extra_body") or {}), **extra}
    return out


def as_dict(value: Any) -> dict[str, Any]:
    """A completion as a JSON-able dict: from an SDK object, a dict, or plain text."""
    if hasattr(value, "model_dump"):
        # The SDK keeps values its model does not describe (a base64 embedding is a str where
        # the model says floats): dump them as they are, without pydantic's warning.
        return dict(value.model_dump(mode="json", exclude_unset=True, warnings=False))
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


def unwrapped(answer: Any) -> tuple[Any, dict[str, str], Any]:
    """(the answer, its headers, the SDK's raw response or None): a raw response
    (``with_raw_response``) is parsed, an SDK stream's headers are its response's, and an SDK
    object keeps the one header it knows, its request id."""
    if hasattr(answer, "http_response") and callable(getattr(answer, "parse", None)):
        return answer.parse(), from_wire(answer.headers.multi_items()), answer
    headers = getattr(getattr(answer, "response", None), "headers", None)
    multi = getattr(headers, "multi_items", None)
    if callable(multi):
        return answer, from_wire(multi()), None
    request_id = getattr(answer, "_request_id", None)
    return answer, {"x-request-id": request_id} if isinstance(request_id, str) else {}, None


class FunctionUpstream:
    """Callables by path (``{"/chat/completions": create, ...}``). A sync callable runs in a
    thread, so the orders of one question are still asked at once."""

    def __init__(self, functions: Mapping[str, Callable[..., Any]], is_async: bool) -> None:
        self.functions = dict(functions)
        self.is_async = is_async

    def _fn(self, path: str) -> Callable[..., Any]:
        fn = self.functions.get(path)
        if fn is None:
            raise LookupError(f"{path} is not served by this wrapped client")
        return fn

    async def _call(self, path: str, body: Mapping[str, Any]) -> Any:
        fn = self._fn(path)
        kwargs = accepted(fn, body)
        if self.is_async:
            return await fn(**kwargs)
        return await asyncio.to_thread(fn, **kwargs)

    async def post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        headers: Headers | None = None,
        query: str = "",
        content: bytes | None = None,
    ) -> RawResponse:
        n = int(body.get("n") or 1)
        obj, headers, source = unwrapped(await self._call(path, body))
        first = as_dict(obj)
        given = first.get("choices")
        listed = given is None or isinstance(given, list)  # else malformed: left as it is
        choices = list(given or []) if listed else []
        # A function that answers once per call is asked once per sample; an answer without
        # a list of choices (embeddings, a Responses object, a malformed answer) or a request
        # for one is whole as it is.
        if n > 1 and "choices" in first and listed and len(choices) < n:
            while len(choices) < n:
                again = await self._call(path, {k: v for k, v in body.items() if k != "n"})
                more = as_dict(unwrapped(again)[0])
                extra = more.get("choices")
                extra = extra if isinstance(extra, list) else []
                if not extra:
                    break
                for c in extra[: n - len(choices)]:
                    choices.append({**c, "index": len(choices)})
            first = {**first, "choices": choices}  # never the callable's own dict
            obj = source = None
        status = int(getattr(source, "status_code", 200))
        body_ = json.dumps(first).encode()
        return RawResponse(status, body_, "application/json", headers, obj=obj, source=source)

    async def stream(
        self,
        path: str,
        body: dict[str, Any],
        *,
        headers: Headers | None = None,
        query: str = "",
        content: bytes | None = None,
    ) -> RawStream:
        chunks, headers, _ = unwrapped(await self._call(path, {**body, "stream": True}))
        return RawStream(200, headers, "text/event-stream", self._chunks(chunks))

    async def _chunks(self, chunks: Any) -> AsyncIterator[bytes]:
        try:
            if self.is_async:
                async for chunk in chunks:
                    yield sse.encode(as_dict(chunk))
            else:
                it = iter(chunks)
                while (chunk := await asyncio.to_thread(next, it, _END)) is not _END:
                    yield sse.encode(as_dict(chunk))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                result = close()
                if inspect.isawaitable(result):
                    await result
        yield sse.DONE

    async def relay(
        self,
        method: str,
        path: str,
        *,
        content: Body | None = None,
        headers: Headers | None = None,
        query: str = "",
    ) -> RawStream:
        return RawStream.whole(await self.get(path))

    async def get(self, path: str) -> RawResponse:
        return RawResponse(404, b'{"error": {"message": "not served"}}', "application/json")

    async def aclose(self) -> None:
        return None
