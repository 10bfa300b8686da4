"""The content codings aiohttp leaves on an answer's body, undone, in bounded pieces.

aiohttp decodes a body sent in one coding (``gzip``, ``deflate``); one sent in several
(``Content-Encoding: deflate, gzip``, allowed by HTTP) or in ``x-gzip`` it passes on as it
came. calguard drops ``Content-Encoding`` (it serves what it read), so such a body would reach
the client as compressed bytes said to be plain, and its keys could not be scrubbed from it:
this undoes every gzip / deflate layer, in the reverse of the order they were applied. A coding
calguard cannot read (it never asks for one) is an :class:`UpstreamError`, never passed on
unread, and so is a body in more than :data:`MAX_LAYERS` codings.

No call holds more than :data:`PIECE` decoded bytes of a layer at once: a few kilobytes that
decode to gigabytes (a "zip bomb") come out piece by piece, so whoever reads them can stop
(:func:`capped`) instead of running out of memory, as aiohttp does for its own layer.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping

from guard.errors import UpstreamError
from guard.upstreams.base import not_retried, too_large

DECODED_BY_AIOHTTP = frozenset({"gzip", "deflate", "br", "zstd"})
ZLIB = frozenset({"gzip", "x-gzip", "deflate"})
MAX_LAYERS = 4  # HTTP allows any number; nobody compresses a body more than twice
PIECE = 1 << 16  # decoded bytes per step of a layer
_AUTO = 32 + zlib.MAX_WBITS  # a zlib or a gzip header, whichever it has


def readable(said: str) -> list[str] | None:
    """The codings a ``Content-Encoding`` value lists, in the order applied, ``identity`` left
    out; None if one is not gzip or deflate, or there are more than :data:`MAX_LAYERS`."""
    codings = [c.strip().lower() for c in said.split(",")]
    codings = [c for c in codings if c not in ("", "identity")]
    return codings if all(c in ZLIB for c in codings) and len(codings) <= MAX_LAYERS else None


class Decoding:
    """Incremental: :meth:`feed` each chunk, then :meth:`end` (also for a whole body); each
    yields the decoded bytes in pieces of at most :data:`PIECE`."""

    def __init__(self, codings: list[str]) -> None:
        self.codings = codings
        # undone from the last applied: stage 0 is the outermost layer
        self._stages = [zlib.decompressobj(_AUTO) for _ in codings]
        self._fed = False  # no byte yet: an empty body (a 204's, a 304's) has nothing to undo

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> Decoding:
        """What is left to undo on a body with ``headers`` (lower-case names) once aiohttp has
        read it; an :class:`UpstreamError` if it is not gzip or deflate."""
        said = headers.get("content-encoding", "")
        if said.strip().lower() in DECODED_BY_AIOHTTP:
            return cls([])
        # one line only: aiohttp's parsers disagree on which of two lines it decodes
        codings = readable(said) if "\n" not in said else None
        if codings is None:
            raise not_retried(  # the value is not said: it is the upstream's, unscrubbed
                UpstreamError(
                    "the upstream answered in a Content-Encoding calguard cannot read (it asks "
                    f"for gzip or deflate, at most {MAX_LAYERS} layers): not passed on unread",
                    code="upstream_encoding",
                )
            )
        return cls(codings)

    def __bool__(self) -> bool:
        return bool(self._stages)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not self:
            if data:
                yield data
            return
        self._fed = self._fed or bool(data)
        try:
            yield from self._through(0, data)
        except zlib.error as exc:
            raise self._error(exc) from exc

    def end(self) -> Iterator[bytes]:
        """What the layers still hold once the body has ended."""
        if not self._fed:
            return
        try:
            for stage, layer in enumerate(self._stages):
                yield from self._through(stage + 1, layer.flush())
                if not layer.eof:
                    raise zlib.error("the body ends inside a compressed stream")
        except zlib.error as exc:
            raise self._error(exc) from exc

    def _through(self, stage: int, data: bytes) -> Iterator[bytes]:
        """``data`` through the layers from ``stage`` in, a piece at a time."""
        if stage == len(self._stages):
            if data:
                yield data
            return
        while True:
            layer = self._stages[stage]
            if layer.eof:  # this layer's stream has ended: what follows is another gzip member
                if not data:
                    return
                if self.codings[len(self._stages) - 1 - stage] == "deflate":
                    raise zlib.error("bytes after the end of the deflate stream")
                layer = self._stages[stage] = zlib.decompressobj(_AUTO)  # RFC 1952, 2.2
            out = layer.decompress(data, PIECE)
            # once the stream has ended, what is left of data is past its end
            data = layer.unused_data if layer.eof else layer.unconsumed_tail
            yield from self._through(stage + 1, out)
            if not data and len(out) < PIECE:
                return

    def _error(self, exc: zlib.error) -> UpstreamError:
        return UpstreamError(
            f"the upstream's body does not decode as its Content-Encoding says "
            f"({', '.join(self.codings)}): {exc}",
            code="upstream_encoding",
        )


def capped(
    pieces: Iterable[bytes],
    limit: int,
    into: bytearray,
    over: Callable[[int], Exception] = too_large,
) -> None:
    """Append ``pieces`` to ``into``; ``over(limit)`` (an upstream's answer:
    :func:`~guard.upstreams.base.too_large`) once it would pass ``limit``."""
    for piece in pieces:
        if len(into) + len(piece) > limit:
            raise over(limit)
        into += piece
