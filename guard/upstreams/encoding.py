"""The content codings aiohttp leaves on an answer's body, undone.

aiohttp decodes a body sent in one coding (``gzip``, ``deflate``); one sent in several
(``Content-Encoding: deflate, gzip``, allowed by HTTP) or in ``x-gzip`` it passes on as it
came. calguard drops ``Content-Encoding`` (it serves what it read), so such a body would reach
the client as compressed bytes said to be plain, and its keys could not be scrubbed from it:
this undoes every gzip / deflate layer, in the reverse of the order they were applied. A coding
calguard cannot read (it never asks for one) is an :class:`UpstreamError`, never passed on
unread.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from guard.errors import UpstreamError

DECODED_BY_AIOHTTP = frozenset({"gzip", "deflate", "br", "zstd"})
ZLIB = frozenset({"gzip", "x-gzip", "deflate"})
_AUTO = 32 + zlib.MAX_WBITS  # a zlib or a gzip header, whichever it has


class Decoding:
    """Incremental: :meth:`feed` each chunk, then :meth:`end` (also for a whole body)."""

    def __init__(self, codings: list[str]) -> None:
        self.codings = codings
        self._layers = [zlib.decompressobj(_AUTO) for _ in codings]

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> Decoding:
        """What is left to undo on a body with ``headers`` (lower-case names) once aiohttp has
        read it; an :class:`UpstreamError` if it is not gzip or deflate."""
        said = headers.get("content-encoding", "")
        if said.strip().lower() in DECODED_BY_AIOHTTP:
            return cls([])
        # one line only: aiohttp's parsers disagree on which of two lines it decodes
        codings = [c.strip().lower() for c in said.split(",")] if "\n" not in said else [said]
        codings = [c for c in codings if c not in ("", "identity")]
        unknown = [c for c in codings if c not in ZLIB]
        if unknown:
            raise UpstreamError(  # the value is not said: it is the upstream's, unscrubbed
                "the upstream answered in a Content-Encoding calguard cannot read (it asks for "
                "gzip or deflate): not passed on unread",
                code="upstream_encoding",
            )
        return cls(codings)

    def __bool__(self) -> bool:
        return bool(self._layers)

    def feed(self, data: bytes) -> bytes:
        try:
            for layer in reversed(self._layers):
                data = layer.decompress(data)
        except zlib.error as exc:
            raise self._error(exc) from exc
        return data

    def end(self) -> bytes:
        """What the layers still hold once the body has ended."""
        data = b""
        try:
            for layer in reversed(self._layers):
                data = layer.decompress(data) + layer.flush()
                if not layer.eof:
                    raise zlib.error("the body ends inside a compressed stream")
        except zlib.error as exc:
            raise self._error(exc) from exc
        return data

    def whole(self, body: bytes) -> bytes:
        return self.feed(body) + self.end() if self else body

    def _error(self, exc: zlib.error) -> UpstreamError:
        return UpstreamError(
            f"the upstream's body does not decode as its Content-Encoding says "
            f"({', '.join(self.codings)}): {exc}",
            code="upstream_encoding",
        )
