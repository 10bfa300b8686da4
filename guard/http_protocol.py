"""The HTTP protocol calguard is served with: uvicorn's own, with one change.

A request uvicorn cannot parse (a malformed request line, a duplicate ``Host``, conflicting
``Content-Length`` headers, a header block too large) never reaches the app: uvicorn answers it
itself, in plain text. Here that answer is the OpenAI-style error body every other bad request
gets (400 ``invalid_request_error``, code ``bad_http``), so a client that reads ``error.message``
reads why. uvicorn's own words go in the message: they are fixed strings, never the request's
bytes. The protocol is uvicorn's h11 one, on every machine (not httptools where it is
installed, as uvicorn's ``http="auto"`` would: see :data:`Protocol`).

calguard serves no WebSocket: it runs with no WebSocket protocol (:data:`WS`), so an upgrade
request is answered as the HTTP request it also is (the app's JSON), not by a WebSocket library
uvicorn finds installed (a plain-text 400, an empty 403).
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.h11_impl import H11Protocol

from guard.errors import InvalidRequestError


def bad_http_response(reason: str) -> bytes:
    """The whole HTTP/1.1 answer to a request that could not be parsed; the connection closes."""
    error = InvalidRequestError(
        f"calguard could not parse this HTTP request ({reason.rstrip('.')}): check the "
        "client or whatever sits between it and calguard",
        code="bad_http",
    )
    body = json.dumps(error.to_body()).encode()
    head = (
        "HTTP/1.1 400 Bad Request\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


WS = "none"  # uvicorn's ``ws``: no WebSocket protocol


class _OpenAIStyle400:
    transport: asyncio.Transport

    def send_400_response(self, msg: str) -> None:
        if not self._answered():
            self.transport.write(bad_http_response(msg))
        self.transport.close()

    def _answered(self) -> bool:
        """The bytes that did not parse belong to a request whose answer has begun: its body
        still coming, or its answer still going out (a pipelined request's head that did not
        parse). A 400 then is an answer to no request, or bytes inside another answer: the
        connection only closes."""
        cycle = getattr(self, "cycle", None)  # h11's and httptools' cycles alike
        if cycle is None or not cycle.response_started:
            return False
        return not cycle.response_complete or cycle.more_body


class H11(_OpenAIStyle400, H11Protocol):
    pass


# h11 wherever httptools is installed too (uvicorn's "auto" would pick httptools): httptools
# serves a request with two Host headers, and reads a pipelined request that does not parse
# before the one ahead of it is answered, so that one never is (the 400 goes out in its place).
Protocol: type[asyncio.Protocol] = H11
