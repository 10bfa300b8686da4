"""A request body as calguard reads it: bounded, and with its ``Content-Encoding`` undone.

The text endpoints read the body (to check and calibrate it). A client may send it compressed
(``Content-Encoding: gzip``, as HTTP allows and some clients and gateways do): calguard undoes
every gzip / deflate layer, bounded by ``max_body_bytes`` once decoded (a small body that
decodes to gigabytes is a 413, as any body over the limit), and the decoded body is what goes
upstream, without the header. Another coding is a 415 that says what calguard reads; a body
that does not decode as its header says is a 400. Relayed bodies go on as they came,
``Content-Encoding`` included, and one larger than :data:`RETRIED_BYTES` (a file upload)
streams through rather than being held or refused (:func:`relayed_body`); the few a model
reads are read whole first where prompt policies apply (:mod:`guard.relay_checks`).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

from guard.errors import (
    ClientGoneError,
    InvalidRequestError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
    UpstreamError,
)
from guard.upstreams.encoding import MAX_LAYERS, Decoding, capped, readable

# A relayed body up to this (or ``max_body_bytes``, if lower) is held, to be sent again if the
# upstream's answer is retried; a larger one (a file upload) streams through, asked once.
RETRIED_BYTES = 4_000_000


def _too_large(limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(f"request body is over the limit of {limit} bytes")


def _declared(request: Request) -> int | None:
    """The length the client said its body has, if it said one."""
    said = request.headers.get("content-length")
    return int(said) if said is not None and said.isdigit() else None


async def _from_client(request: Request) -> AsyncIterator[bytes]:
    """The body's chunks as they come; a client gone mid-body is a :class:`ClientGoneError`
    (not an error of calguard's: no traceback in its log)."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect as exc:
        raise ClientGoneError("the client went away before its request body had come") from exc


async def read_body(request: Request, limit: int) -> bytes:
    """The body as it came, at most ``limit`` bytes (else a 413)."""
    if (_declared(request) or 0) > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in _from_client(request):
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
    return b"".join(parts)


async def relayed_body(request: Request, whole: int) -> bytes | AsyncIterator[bytes]:
    """A relayed request's body: its bytes if it is at most ``whole`` bytes long, else its
    bytes as they come (a file upload of any size goes on without being held in memory; the
    upstream sets its own limit)."""
    chunks = _from_client(request)
    if (_declared(request) or 0) > whole:
        return chunks
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        parts.append(chunk)
        size += len(chunk)
        if size > whole:
            return _then(parts, chunks)
    return b"".join(parts)


async def _then(first: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for part in first:
        yield part
    async for chunk in rest:
        yield chunk


def decoded(raw: bytes, content_encoding: str, limit: int) -> bytes:
    """``raw`` with the layers ``content_encoding`` names undone, at most ``limit`` bytes."""
    codings = readable(content_encoding)
    if codings == []:
        return raw
    if codings is None:
        raise UnsupportedMediaTypeError(
            "calguard reads a request body sent as it is or in gzip or deflate (at most "
            f"{MAX_LAYERS} layers), not in this Content-Encoding: send it uncompressed",
            param="Content-Encoding",
            code="unsupported_content_encoding",
        )
    decoding, out = Decoding(codings), bytearray()
    try:  # a piece at a time, so a bomb stops at the limit
        capped(itertools.chain(decoding.feed(raw), decoding.end()), limit, out, _too_large)
    except UpstreamError as exc:  # zlib's complaint, in the decoder's words for upstreams
        raise InvalidRequestError(
            f"the request body does not decode as its Content-Encoding says ({', '.join(codings)})",
            param="Content-Encoding",
            code="invalid_content_encoding",
        ) from exc
    return bytes(out)
