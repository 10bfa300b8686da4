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
        # A key inside JSON may come back escaped (a "/" as "\/", non-ASCII as \uXXXX);
        # json.dumps leaves "/" as it is, so both of its forms are looked for.
        for k in keys:
            escaped = json.dumps(k)[1:-1]
            for form in dict.fromkeys((escaped, escaped.replace("/", "\\/"))):
                if form != k:
                    self._bytes.append((form.encode(), MASK.encode()))

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

    async def across(
        self, chunks: AsyncIterator[bytes], same_length: bool = False
    ) -> AsyncGenerator[bytes, None]:
        """The chunks of one body scrubbed as one, however it was cut: what comes out is what
        :meth:`data` makes of the whole body. Each form of each key is replaced in turn, as
        :meth:`data` does, each by a stage that holds back at most its length less one byte
        (what could be the start of it) until the next chunk; a key cut between two chunks is
        found whole, and a run of overlapping occurrences is masked as the whole body's is.
        ``same_length``: each key is masked by as many bytes (``[REDACTED]***...``), so a body
        whose length was said before it came keeps that length."""
        if not self._bytes:
            async for chunk in chunks:
                yield chunk
            return
        stages = [
            _Replacing(key, (mask + b"*" * len(key))[: len(key)] if same_length else mask)
            for key, mask in self._bytes
        ]
        async for chunk in chunks:
            for stage in stages:
                chunk = stage.feed(chunk)
            if chunk:
                yield chunk
        tail = b""
        for stage in stages:
            tail = stage.feed(tail) + stage.end()
        if tail:
            yield tail


class _Replacing:
    """``bytes.replace(key, mask)`` over a body that comes in chunks: the occurrences it finds
    are those the whole body's replace finds (left to right, none overlapping)."""

    def __init__(self, key: bytes, mask: bytes) -> None:
        self.key, self.mask = key, mask
        self.carry = b""

    def feed(self, chunk: bytes) -> bytes:
        buf = self.carry + chunk
        out: list[bytes] = []
        at = 0
        while (found := buf.find(self.key, at)) != -1:
            out += (buf[at:found], self.mask)
            at = found + len(self.key)
        # an occurrence may start in the last len(key) - 1 bytes: they wait for the next chunk
        keep = max(at, len(buf) - len(self.key) + 1)
        out.append(buf[at:keep])
        self.carry = buf[keep:]
        return b"".join(out)

    def end(self) -> bytes:
        """What is held back once the body has ended (too short to hold the key)."""
        out, self.carry = self.carry, b""
        return out
