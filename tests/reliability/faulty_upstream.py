"""A fault-injecting upstream: a raw asyncio HTTP/1.1 server on 127.0.0.1 in its own thread.

Each request is answered by ``script(n, body)`` (``n`` counts requests from 1) with an
:class:`Answer`: a status and body, a reset, a hang, a drip, or an SSE stream (which may be cut
inside an HTTP chunk). Every connection is closed after one answer, so each request is its own
connection and the server can see when calguard gives up on it (``closed_early``)."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from guard.tasks.prompt_text import find_options, last_user_text


@dataclass(frozen=True)
class Answer:
    kind: str = "json"  # json | reset | hang | drip | sse
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    events: Sequence[bytes] = ()  # sse: each written as one HTTP chunk
    interval: float = 0.0  # drip: between bytes; sse: between events
    cut: bytes | None = None  # sse: these bytes, then the connection drops inside a chunk
    cut_pause: float = 0.0  # ... this long after the bytes (so they arrive on their own)


Script = Callable[[int, dict[str, Any]], Answer]


def json_answer(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    return Answer(body=json.dumps(obj).encode(), status=status, headers=headers or {})


def error_answer(status: int, headers: dict[str, str] | None = None) -> Answer:
    err = {"error": {"message": f"injected {status}", "type": "fault", "param": None, "code": None}}
    return json_answer(err, status, headers)


def chat(content: str, logprobs: dict[str, float] | None = None, n: int = 0) -> dict[str, Any]:
    """A chat completion; ``logprobs`` (token -> logprob) become the first position's top-k."""
    lp = None
    if logprobs:
        top = [{"token": t, "logprob": v, "bytes": None} for t, v in logprobs.items()]
        first = {"token": content, "logprob": top[0]["logprob"], "bytes": None, "top_logprobs": top}
        lp = {"content": [first], "refusal": None}
    msg = {"role": "assistant", "content": content}
    return {
        "id": f"chatcmpl-faulty-{n}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "faulty",
        "choices": [{"index": 0, "message": msg, "logprobs": lp, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def mcq_answer(body: dict[str, Any], n: int = 0, favour: int = 0) -> Answer:
    """Logprobs over the option IDs of the question in ``body``, favouring the option shown at
    position ``favour``; a plain echo when there is no question."""
    found = last_user_text(body.get("messages") or [])
    mcq = find_options(found[1]) if found else None
    if mcq is None:
        return json_answer(chat("echo", n=n))
    lps = {ident: (-0.2 if j == favour else -2.0 - j) for j, ident in enumerate(mcq.ids)}
    return json_answer(chat(mcq.ids[favour], lps, n))


def shown_options(body: dict[str, Any]) -> list[str]:
    found = last_user_text(body.get("messages") or [])
    mcq = find_options(found[1]) if found else None
    return mcq.options if mcq else []


def chunk_event(text: str, finish: str | None = None) -> bytes:
    delta = {"content": text} if text else {}
    obj = {
        "id": "chatcmpl-faulty",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "faulty",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def sse_text(words: Sequence[str], done: bool = True) -> list[bytes]:
    events = [chunk_event(w) for w in words] + [chunk_event("", "stop")]
    return [*events, b"data: [DONE]\n\n"] if done else events


class FaultyUpstream:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls = 0
        self.bodies: list[dict[str, Any]] = []
        self.open = 0  # connections with a request being answered
        self.closed_early = 0  # ... that the client (calguard) closed before the answer ended
        self.finished = 0  # answers written to the end
        self.bytes_sent = 0  # drip / sse bytes written
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()

    # -- the server ---------------------------------------------------------------------------

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on 127.0.0.1; yields the base URL (``http://127.0.0.1:PORT/v1``)."""
        started = threading.Event()
        holder: dict[str, Any] = {}

        async def main() -> None:
            server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
            holder["port"] = server.sockets[0].getsockname()[1]
            holder["stop"] = stop = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            started.set()
            async with server:
                await stop.wait()
                server.close()
                # Drop every open connection; the handlers then end on their own (a cancelled
                # handler would make asyncio log an error).
                for writer in list(self._writers):
                    writer.transport.abort()
                if self._tasks:
                    await asyncio.wait(list(self._tasks), timeout=5)

        thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        thread.start()
        assert started.wait(10), "faulty upstream did not start"
        try:
            yield f"http://127.0.0.1:{holder['port']}/v1"
        finally:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(holder["stop"].set)
            thread.join(10)

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._handle(reader, writer)
        except asyncio.CancelledError:
            writer.transport.abort()
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            raw = await reader.readexactly(length) if length else b""
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        with self._lock:
            self.calls += 1
            n = self.calls
            self.bodies.append(body if isinstance(body, dict) else {})
        answer = self.script(n, body if isinstance(body, dict) else {})
        self.open += 1
        gone = asyncio.ensure_future(_eof(reader))
        try:
            if await self._answer(answer, writer, gone):
                self.finished += 1
            else:
                self.closed_early += 1
        except (ConnectionError, OSError):
            self.closed_early += 1
        finally:
            self.open -= 1
            gone.cancel()
            if answer.kind != "reset":
                writer.close()

    async def _answer(
        self, a: Answer, writer: asyncio.StreamWriter, gone: asyncio.Future[None]
    ) -> bool:
        """Write the answer; False if the client went away first."""
        if a.kind == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return True
        if a.kind == "hang":
            await gone
            return False
        headers = {"Connection": "close", **a.headers}
        if a.kind == "sse":
            headers.setdefault("Content-Type", "text/event-stream")
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers.setdefault("Content-Type", "application/json")
            headers["Content-Length"] = str(len(a.body))
        reason = "OK" if a.status < 400 else "Error"
        head = f"HTTP/1.1 {a.status} {reason}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        writer.write(head.encode() + b"\r\n")
        if a.kind == "json":
            writer.write(a.body)
            await writer.drain()
            return True
        if a.kind == "drip":
            for i in range(len(a.body)):
                writer.write(a.body[i : i + 1])
                await writer.drain()
                self.bytes_sent += 1
                if await _gone_within(gone, a.interval):
                    return False
            return True
        for event in a.events:  # sse, one HTTP chunk per event
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            self.bytes_sent += len(event)
            if await _gone_within(gone, a.interval):
                return False
        if a.cut is not None:
            # A chunk that announces more than it carries, then the connection drops.
            writer.write(b"%x\r\n%s" % (len(a.cut) + 100, a.cut))
            await writer.drain()
            if a.cut_pause:
                await _gone_within(gone, a.cut_pause)
            writer.transport.abort()
            return True
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    # -- waiting on it, from the test's thread ------------------------------------------------

    def wait_for(self, cond: Callable[[], bool], timeout_s: float = 15.0) -> bool:
        """Poll ``cond`` until it holds or ``timeout_s`` passes (a bound, not a measurement)."""
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.02)
        return cond()


async def _eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(4096):
        pass


async def _gone_within(gone: asyncio.Future[None], seconds: float) -> bool:
    if seconds <= 0:
        await asyncio.sleep(0)
        return gone.done()
    done, _ = await asyncio.wait({gone}, timeout=seconds)
    return bool(done)


NAN = math.nan
