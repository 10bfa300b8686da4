"""What the pipeline hands back: a finished :class:`Reply`, and the builders of its bodies.

A reply is already checked and logged; the faces only render it: the server writes its status,
headers and bytes (or stream), the in-process client parses them into the OpenAI SDK's objects
(or raises ``error``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypedDict

from guard import sse
from guard.errors import CalguardError
from guard.scrub import Scrubber
from guard.upstreams.base import RawResponse

JSON = "application/json"
SSE = "text/event-stream"


class Evidence(TypedDict, total=False):
    """The ``guard`` object of a calibrated reply (and the ``flags`` of a flagged one)."""

    task: str
    calibration: str
    answer: str
    index: int | None
    probs: list[float] | None
    raw_probs: list[float] | None
    prior: list[float] | None
    upstream_calls: int
    flags: list[dict[str, Any]]
    request_id: str
    key: str | None
    handling: str
    role: str
    orders: list[list[int]]
    order_answers: list[int]
    order_probs: list[list[float]]
    answers_from: str  # "logprobs", or "samples" where the upstream gave none
    consistent: bool | None  # judge: None where not every order was answered
    order_winners: list[int | None]
    first_position_rate: float


def new_request_id() -> str:
    return f"cg-{uuid.uuid4().hex[:16]}"


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    media_type: str = JSON
    error: CalguardError | None = None  # calguard's own error (the in-process face raises it)
    raw: RawResponse | None = None  # the upstream's answer, when the body is exactly its bytes

    @classmethod
    def of_error(cls, exc: CalguardError, headers: dict[str, str]) -> Reply:
        headers = {**getattr(exc, "headers", {}), **headers}
        return cls(exc.status, headers, json.dumps(exc.to_body()).encode(), error=exc)

    @classmethod
    def of_json(cls, obj: Any, headers: dict[str, str]) -> Reply:
        return cls(200, headers, json.dumps(obj, separators=(",", ":")).encode())

    @classmethod
    def of_raw(cls, raw: RawResponse, headers: dict[str, str]) -> Reply:
        """The upstream's answer as it came: no content type where it gave none."""
        return cls(raw.status, headers, raw.body, media_type=raw.content_type, raw=raw)

    @classmethod
    def of_stream(
        cls, stream: AsyncIterator[bytes], headers: dict[str, str], media_type: str = SSE
    ) -> Reply:
        return cls(200, headers, stream=stream, media_type=media_type)


def completion(
    template: dict[str, Any],
    client_model: str,
    request_id: str,
    answer: str,
    usage: dict[str, Any],
    evidence: Evidence | dict[str, Any],
) -> dict[str, Any]:
    """A ChatCompletion whose message is the calibrated ``answer``, with the evidence attached;
    id, created, model and fingerprint come from the first upstream response."""
    out = {
        "id": template.get("id") or f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": template.get("created") or int(time.time()),
        "model": template.get("model") or client_model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": usage or None,
        "guard": evidence,
    }
    for k in ("system_fingerprint", "service_tier"):
        if template.get(k) is not None:
            out[k] = template[k]
    return out


async def chunks(completion: dict[str, Any], include_usage: bool = False) -> AsyncIterator[bytes]:
    """A calguard-built completion as a stream: the answer, then the finish with the evidence."""
    base = {
        "id": completion["id"],
        "object": "chat.completion.chunk",
        "created": completion["created"],
        "model": completion["model"],
    }
    content = completion["choices"][0]["message"]["content"]
    delta = {"role": "assistant", "content": content}
    yield sse.encode(
        {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]}
    )
    yield sse.encode(
        {
            **base,
            "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
            "guard": completion["guard"],
        }
    )
    if include_usage:
        yield sse.encode({**base, "choices": [], "usage": completion.get("usage")})
    yield sse.DONE


class AnswerCutError(Exception):
    """A streamed answer that is not SSE broke off after its status went out (its upstream
    failed mid-body). Nothing can be said in-band in a file's bytes: the connection closes, so
    the client sees a cut answer, never one that looks whole. The server's request middleware
    ends the request quietly on it; the cause has been logged where it happened."""


def scrubbed(reply: Reply, scrub: Scrubber) -> Reply:
    """The reply with calguard's own keys replaced wherever they appear."""
    if not scrub:
        return reply
    reply.headers = scrub.headers(reply.headers)
    if reply.media_type:  # the upstream's Content-Type, a header like the others
        reply.media_type = scrub.text(reply.media_type)
    if reply.stream is not None:
        reply.stream = scrub.stream(reply.stream)
    else:
        clean = scrub.data(reply.body)
        if clean != reply.body:
            reply.body, reply.raw = clean, None  # no longer the upstream's bytes
    return reply


def started(stream: AsyncIterator[bytes], headers: dict[str, str], media_type: str = SSE) -> Reply:
    """A stream whose status has arrived (an upstream error status is a whole reply before
    this), with the upstream's content type. :func:`primed` then waits for its first bytes, so
    a failure before them (a block, a store that cannot record) is a proper error reply; one
    after them is said in-band, as an SSE error event of its own."""

    async def relay() -> AsyncIterator[bytes]:
        tail = b""
        try:
            async for chunk in stream:
                yield chunk
                tail = (tail + chunk)[-2:]
        except CalguardError as exc:
            if not tail:  # nothing sent yet: the error is the whole reply (see primed)
                raise
            # A stream cut inside an event: end that event first, so the error is its own.
            cut = b"" if tail == b"\n\n" or tail.endswith(b"\r\r") else b"\n\n"
            yield cut + sse.encode(exc.to_body())
        finally:  # a reader that stops early closes the whole chain, upstream call included
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    return Reply.of_stream(relay(), headers, media_type)


async def primed(reply: Reply) -> Reply:
    """A streamed reply whose first bytes have come (outside the request's deadline: with a full
    hold-back they come at the end of a healthy stream); a calguard error before them is the
    whole reply instead."""
    if reply.stream is None or reply.status != 200:
        return reply
    chunks = reply.stream
    try:
        first = await chunks.__anext__()
    except StopAsyncIteration:
        first = b""
    except CalguardError as exc:
        return Reply.of_error(exc, dict(reply.headers))

    async def again() -> AsyncIterator[bytes]:
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    reply.stream = again()
    return reply
