"""Calguard's own secrets never leave it: the upstream keys and the proxy's keys are replaced in
every reply body, header, stream event, error, flag record and log line it emits.

An upstream that echoes the ``Authorization`` header it got (in an error body, a streamed
error) would otherwise hand the upstream key to every client. Bodies are scanned as bytes for
each key (a fast substring search); streams event by event, so a key is never split across
the pieces that are checked.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

MASK = "[REDACTED]"
MIN_LENGTH = 8  # shorter "keys" (test values like "k") would mask ordinary text


def url_passwords(urls: Iterable[str | None]) -> list[str]:
    """The passwords in URLs written ``scheme://user:password@host/...``."""
    out = []
    for url in urls:
        if url:
            password = urlsplit(url).password
            if password:
                out += [password, unquote(password)]
    return out


class Scrubber:
    def __init__(self, secrets: Iterable[str | None]) -> None:
        keys = sorted({s for s in secrets if s and len(s) >= MIN_LENGTH}, key=len, reverse=True)
        self.keys = keys
        self._lowered = [k.lower() for k in keys]  # as header names travel
        self._bytes = [(k.encode(), MASK.encode()) for k in keys]
        # A key inside JSON may come back escaped (a "/" as "\/", non-ASCII as \uXXXX).
        self._bytes += [
            (json.dumps(k)[1:-1].encode(), MASK.encode()) for k in keys if json.dumps(k)[1:-1] != k
        ]

    def __bool__(self) -> bool:
        return bool(self.keys)

    def data(self, data: bytes) -> bytes:
        for key, mask in self._bytes:
            if key in data:
                data = data.replace(key, mask)
        return data

    def text(self, text: str) -> str:
        for key in self.keys:
            if key in text:
                text = text.replace(key, MASK)
        return text

    def value(self, value: Any) -> Any:
        """Any JSON-like value with every string scrubbed."""
        if not self.keys:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Values scrubbed; a field whose name holds a key (lower-cased, as names travel) is
        left out: a name cannot hold the mask."""
        return {
            k: self.text(v)
            for k, v in headers.items()
            if not any(s in k.lower() for s in self._lowered)
        }

    async def stream(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Each chunk scrubbed. The pipeline's streams come in whole SSE events (pass-through
        streams through :func:`guard.sse.whole_events`, checked ones as released, calguard's
        own as built), so a key inside one event is never split across two chunks."""
        async for chunk in chunks:
            yield self.data(chunk)

    async def across(self, chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
        """The chunks of one body scrubbed as one, however it was cut: a key split between two
        chunks is found whole. What could be the start of a key (at most the longest form's
        length less one byte) waits for the next chunk; a key found is never cut."""
        if not self._bytes:
            async for chunk in chunks:
                yield chunk
            return
        hold = max(len(key) for key, _ in self._bytes) - 1
        carry = b""
        async for chunk in chunks:
            buf = carry + chunk
            cut = self._cut(buf, len(buf) - hold)
            if cut > 0:
                yield self.data(buf[:cut])
            carry = buf[max(cut, 0) :]
        if carry:
            yield self.data(carry)

    def _cut(self, buf: bytes, cut: int) -> int:
        """``cut`` moved past every key that starts before it (each is whole in ``buf``: it
        starts at least ``hold`` bytes before the end)."""
        moved = True
        while moved and cut > 0:
            moved = False
            for key, _ in self._bytes:
                at = buf.find(key, max(0, cut - len(key) + 1))
                if -1 < at < cut < at + len(key):
                    cut, moved = at + len(key), True
        return cut
