"""Server-sent events: the one place calguard reads and writes them.

The OpenAI streaming format is SSE: events separated by a blank line, each with one or more
``data:`` lines (joined with ``\\n``, as the SSE specification says), ending with
``data: [DONE]``. :class:`EventReader` is incremental: feed it bytes as they arrive and it returns
the complete events, each with its raw bytes (to relay untouched) and its parsed JSON data.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from guard.errors import UpstreamError

DONE = b"data: [DONE]\n\n"
# What a stream's last event holds: ``[DONE]``, or a Responses stream's end. An event that only
# mentions one of them (a text that says "[DONE]") is taken for a last one too: it waits longer.
ENDS = (b"[DONE]", b"response.completed", b"response.failed", b"response.incomplete")


def may_end(raw: bytes) -> bool:
    """Whether the event ``raw`` may be the one that tells the client the answer is whole."""
    return any(end in raw for end in ENDS)


def is_stream(content_type: str) -> bool:
    """Whether an answer with this ``Content-Type`` is SSE (a media type is case-insensitive:
    ``Text/Event-Stream; charset=UTF-8`` is one)."""
    return content_type.partition(";")[0].strip().lower() == "text/event-stream"


def encode(obj: Any) -> bytes:
    """One SSE event whose data is ``obj`` as compact JSON."""
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


@dataclass(frozen=True)
class Event:
    raw: bytes  # the event as received, separator included: relay it unchanged
    data: str | None  # the joined data lines, or None for an event without data (a comment)

    @property
    def done(self) -> bool:
        return self.data == "[DONE]"

    def json(self) -> Any:
        """The parsed data, or None when it is absent, ``[DONE]`` or not JSON."""
        if self.data is None or self.done:
            return None
        try:
            return json.loads(self.data)
        except (ValueError, RecursionError):
            return None

    @property
    def unreadable(self) -> bool:
        """It has data, not ``[DONE]``, that is not JSON: nothing can check what it says."""
        return self.data is not None and not self.done and self.json() is None


def _parse(raw: bytes) -> Event:
    lines = []
    for line in raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(b" ") else value)
    data = b"\n".join(lines).decode("utf-8", "replace") if lines else None
    return Event(raw, data)


class EventTooLargeError(ValueError):
    """An event (or what has come of it so far) is over the reader's ``limit``; ``events``:
    the whole ones the same ``feed`` found before it."""

    def __init__(self, message: str, events: list[Event]) -> None:
        super().__init__(message)
        self.events = events


class EventReader:
    """Incremental SSE parser: ``feed(bytes) -> [Event]``; ``close() -> [Event]`` for the rest.

    Each byte is searched for a separator once, however many chunks an event arrives in (a
    long event costs its length, not its length squared); with a ``limit``, an event that
    grows past it raises :class:`EventTooLargeError`."""

    def __init__(self, limit: int | None = None) -> None:
        self._buf = bytearray()
        self._searched = 0  # no separator ends before this offset of _buf
        self.limit = limit

    def feed(self, chunk: bytes) -> list[Event]:
        self._buf += chunk
        events: list[Event] = []
        while True:
            # a separator may start up to 3 bytes back, and a lone CR needs the byte after it
            cut = _boundary(self._buf, max(0, self._searched - 4))
            if cut is None:
                self._searched = len(self._buf)
                if self.limit is not None and len(self._buf) > self.limit:
                    raise EventTooLargeError(f"an event of over {self.limit:,} bytes", events)
                return events
            raw = bytes(self._buf[:cut])
            del self._buf[:cut]
            self._searched = 0
            events.append(_parse(raw))

    def close(self) -> list[Event]:
        """What is left after the last separator (a stream cut short), as one event."""
        rest = self.pending
        self._buf, self._searched = bytearray(), 0
        return [_parse(rest)] if rest.strip() else []

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)


# A blank line: two line ends in a row, each CRLF, LF or CR (a CR not followed by LF).
_BLANK = re.compile(rb"(?:\r\n|\r(?=[^\n])|\n)(?:\r\n|\r(?=[^\n])|\n)")


def _boundary(buf: bytes | bytearray, start: int = 0) -> int | None:
    """End (exclusive) of the first complete event in ``buf``, separator included; none of its
    separators ends before ``start``."""
    m = _BLANK.search(buf, start)
    return None if m is None else m.end()


async def aevents(chunks: AsyncIterator[bytes]) -> AsyncIterator[Event]:
    """The events of a byte stream."""
    reader = EventReader()
    async for chunk in chunks:
        for event in reader.feed(chunk):
            yield event
    for event in reader.close():
        yield event


def events(chunks: Iterator[bytes] | list[bytes]) -> Iterator[Event]:
    reader = EventReader()
    for chunk in chunks:
        yield from reader.feed(chunk)
    yield from reader.close()


async def whole_events(
    chunks: AsyncIterator[bytes], limit: int | None = None
) -> AsyncIterator[bytes]:
    """A byte stream re-cut at event boundaries: only whole events go on, so a stream that
    fails inside an event never delivers half of it (what was cut is dropped, the error
    raised). A well-ended stream's last bytes go on as they are. An event over ``limit``
    bytes is an :class:`UpstreamError` (``upstream_too_large``)."""
    reader = EventReader(limit)
    try:
        async for chunk in chunks:
            try:
                events = reader.feed(chunk)
            except EventTooLargeError as exc:
                if exc.events:  # the whole ones before it go on: the stream is cut at it
                    yield b"".join(e.raw for e in exc.events)
                raise UpstreamError(
                    f"an event of the upstream's stream is larger than max_answer_bytes "
                    f"({limit:,} bytes): the stream is cut there",
                    code="upstream_too_large",
                ) from exc
            if events:
                yield b"".join(e.raw for e in events)
        if reader.pending:
            yield reader.pending
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
