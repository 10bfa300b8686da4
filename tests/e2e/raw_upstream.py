"""An upstream that speaks raw HTTP/1.1 on 127.0.0.1: it records each request's exact bytes
and answers with exactly the bytes a test gives it (no framework adds a header or a charset).
With :func:`exchange`, a client that sends exact bytes and reads the answer as it came, a
test compares what a client gets directly from the upstream with what it gets through calguard.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

CLOSE = b""  # in an answer's parts: close the connection there (a body cut short)


@dataclass(frozen=True)
class Got:
    """One request as the upstream read it."""

    head: bytes
    body: bytes

    @property
    def method(self) -> bytes:
        return self.head.split(b" ", 1)[0]

    @property
    def target(self) -> bytes:
        return self.head.split(b" ", 2)[1]

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        lines = self.head.split(b"\r\n")[1:]
        return [
            (k.strip().lower(), v.strip()) for k, _, v in (x.partition(b":") for x in lines if x)
        ]

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


Answer = bytes | list[bytes]  # the bytes to send; a list is sent part by part (CLOSE: cut)


@dataclass
class RawUpstream:
    url: str
    answers: dict[bytes, Answer] = field(default_factory=dict)  # by target without /v1 or query
    got: list[Got] = field(default_factory=list)

    def answer(self, got: Got) -> Answer:
        target = got.target.split(b"?", 1)[0].removeprefix(b"/v1")
        return self.answers.get(target, response(b"200 OK", [JSON], b'{"ok":true}'))


JSON = (b"content-type", b"application/json")


def response(
    status: bytes, headers: list[tuple[bytes, bytes]], body: bytes = b"", *, length: bool = True
) -> bytes:
    """A whole answer; ``length``: with a ``content-length`` (not for 1xx, 204, 304)."""
    head = b"HTTP/1.1 " + status + b"\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    if length and not status.startswith((b"1", b"204", b"304")):
        head += b"content-length: %d\r\n" % len(body)
    return head + b"\r\n" + body


def chunked(status: bytes, headers: list[tuple[bytes, bytes]], parts: list[bytes]) -> list[bytes]:
    """An answer sent chunk by chunk (``transfer-encoding: chunked``)."""
    head = response(status, [*headers, (b"transfer-encoding", b"chunked")], length=False)
    return [head, *(b"%x\r\n%s\r\n" % (len(p), p) for p in parts), b"0\r\n\r\n"]


async def _read(reader: asyncio.StreamReader) -> Got:
    head = await reader.readuntil(b"\r\n\r\n")
    got = Got(head, b"")
    length = got.header(b"content-length")
    if length is not None:
        return Got(head, await reader.readexactly(int(length)))
    body = b""
    if got.header(b"transfer-encoding") == b"chunked":
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
    return Got(head, body)


@contextmanager
def raw_upstream() -> Iterator[RawUpstream]:
    """A :class:`RawUpstream` served on 127.0.0.1 in a thread of its own, until exit."""
    loop = asyncio.new_event_loop()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    up = RawUpstream(f"http://127.0.0.1:{sock.getsockname()[1]}")

    open_: set[asyncio.StreamWriter] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_.add(writer)
        try:
            while True:
                got = await _read(reader)
                up.got.append(got)
                answer = up.answer(got)
                if got.method == b"HEAD" and isinstance(answer, bytes):  # the head alone
                    answer = answer.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
                for part in answer if isinstance(answer, list) else [answer]:
                    if part == CLOSE:
                        return
                    writer.write(part)
                    await writer.drain()
                if got.header(b"connection") == b"close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            open_.discard(writer)
            writer.close()

    server = loop.run_until_complete(asyncio.start_server(serve, sock=sock))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield up
    finally:

        async def stop() -> None:
            server.close()
            for writer in open_:
                writer.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@dataclass(frozen=True)
class Reply:
    """An answer as a client read it: status code, header lines (names lower-case), body
    (de-chunked)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)

    def lines(self, *skip: bytes) -> list[tuple[bytes, bytes]]:
        """The header lines but ``skip`` and those about this connection or this hop."""
        own = {b"date", b"server", b"connection", b"keep-alive", b"x-request-id", *skip}
        return sorted(
            (k, v) for k, v in self.headers if k not in own and k != b"x-calguard-request-id"
        )


def exchange(url: str, request: bytes, timeout_s: float = 10.0) -> Reply:
    """``request`` sent as it is on a new connection (it should say ``connection: close``);
    the answer, read until the server closes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout_s) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    while head.split(b" ")[1].startswith(b"1"):  # an interim answer (100 Continue): the next
        head, _, rest = rest.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = [(k.strip().lower(), v.strip()) for k, _, v in (x.partition(b":") for x in lines[1:])]
    body = rest
    if (b"transfer-encoding", b"chunked") in headers:
        body = b""
        while True:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size.split(b";")[0] or b"0", 16)  # none: the body was cut short
            if n == 0:
                break
            body, rest = body + rest[:n], rest[n + 2 :]
    return Reply(int(lines[0].split(b" ")[1]), headers, body)


def request(
    method: bytes, target: bytes, headers: Sequence[tuple[bytes, bytes]] = (), body: bytes = b""
) -> bytes:
    """A request as exact bytes, with ``connection: close`` (and a length when it has a body or
    its method takes one)."""
    head = method + b" " + target + b" HTTP/1.1\r\nhost: calguard.test\r\nconnection: close\r\n"
    head += b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    if body or method in (b"POST", b"PUT", b"PATCH"):
        head += b"content-length: %d\r\n" % len(body)
    return head + b"\r\n" + body


def differs(direct: Reply, via: Reply, *skip: bytes) -> list[str]:
    """What a client sees differently through calguard (status, header lines, body bytes)."""
    out = []
    if direct.status != via.status:
        out.append(f"status {direct.status} != {via.status}")
    if direct.lines(*skip) != via.lines(*skip):
        out.append(f"headers {direct.lines(*skip)} != {via.lines(*skip)}")
    if direct.body != via.body:
        out.append(f"body {direct.body[:200]!r} != {via.body[:200]!r}")
    return out
