"""What an upstream is: something that answers OpenAI-shaped requests.

calguard ships three (:mod:`guard.upstreams`): ``openai`` (any OpenAI-compatible HTTP API, the fast
path), ``litellm`` (any provider LiteLLM speaks) and ``function`` (a Python callable: the
in-process wrapper's client). Add one with :func:`guard.upstreams.register_upstream` or the
``calguard.upstreams`` entry point group.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from guard.errors import UpstreamError, UpstreamRejectedError
from guard.upstreams.headers import passed_headers


@dataclass(frozen=True)
class RawResponse:
    """An upstream's answer as it came: status, bytes, content type (and headers)."""

    status: int
    body: bytes
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)
    obj: Any = None  # the upstream's own object, when it has one (the function upstream)
    source: Any = None  # the SDK's raw response it was read from (a wrapped with_raw_response)

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body)
        except RecursionError:
            raise ValueError("upstream returned JSON nested too deep") from None
        if not isinstance(data, dict):
            raise ValueError("upstream returned JSON that is not an object")
        return data

    def rejected(self) -> UpstreamRejectedError:
        """This error answer as an error to pass back: its status, body and headers."""
        try:
            parsed = json.loads(self.body)
        except (ValueError, RecursionError):
            parsed = None
        body = parsed if isinstance(parsed, dict) else None
        err = UpstreamRejectedError(self.status, body, f"upstream answered {self.status}")
        err.headers = passed_headers(self.headers)
        return err


@dataclass(frozen=True)
class RawStream:
    """A streaming answer whose status and headers have arrived; ``chunks`` are its bytes
    (decompressed). A status >= 400 carries the upstream's error body in ``chunks``."""

    status: int
    headers: Mapping[str, str]
    content_type: str
    chunks: AsyncIterator[bytes]
    limit: int | None = None  # read() reads at most this many bytes (else UpstreamError)

    async def read(self) -> bytes:
        out = bytearray()
        try:
            async for chunk in self.chunks:
                if self.limit is not None and len(out) + len(chunk) > self.limit:
                    raise too_large(self.limit)
                out += chunk
        finally:
            if (close := getattr(self.chunks, "aclose", None)) is not None:
                await close()  # the connection goes back now, not when it is collected
        return bytes(out)

    @classmethod
    def whole(cls, raw: RawResponse) -> RawStream:
        """A whole answer as a stream of one chunk."""
        return cls(raw.status, raw.headers, raw.content_type, _once(raw.body))


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


def not_retried(err: UpstreamError) -> UpstreamError:
    """``err`` said not to be worth retrying: the upstream answered, and the same request gets
    the same answer, which calguard cannot read. A client that retries a 502 (openai's does,
    twice) would have the upstream answer, and bill, it again for nothing."""
    err.headers = {"x-should-retry": "false"}
    return err


def too_large(limit: int) -> UpstreamError:
    return not_retried(
        UpstreamError(
            f"the upstream's answer is larger than max_answer_bytes ({limit:,} bytes, "
            "decoded): not read further; raise max_answer_bytes if answers this large are "
            "expected",
            code="upstream_too_large",
        )
    )


Headers = Mapping[str, str]
Body = bytes | AsyncIterator[bytes]  # a relayed body: its bytes, or its bytes as they come


class Upstream(Protocol):
    """``headers`` are the client's headers to pass on (``OpenAI-Organization``, ...) and
    ``query`` its query string (``api-version=...``), both optional; ``content``, when given, is
    ``body`` as the client's own bytes, to send as they are."""

    async def post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        headers: Headers | None = None,
        query: str = "",
        content: bytes | None = None,
    ) -> RawResponse:
        """POST ``body`` to ``path`` (``/chat/completions``, ...); retried inside as the OpenAI
        SDK retries. Any answer comes back as it is, the last one when retries ran out; a
        failure to get one raises :class:`guard.errors.UpstreamError`."""

    async def stream(
        self,
        path: str,
        body: dict[str, Any],
        *,
        headers: Headers | None = None,
        query: str = "",
        content: bytes | None = None,
    ) -> RawStream:
        """A streaming request, retried until its status arrives; its bytes as they come."""

    async def relay(
        self,
        method: str,
        path: str,
        *,
        content: Body | None = None,
        headers: Headers | None = None,
        query: str = "",
    ) -> RawStream:
        """Any other request under ``/v1`` (stored completions, files, ...), as it is: ``path``
        as it goes in the URL (escaped: ``/models/org%2Fmodel``), ``content`` as its bytes or
        as they come (a large upload: sent once); the answer's bytes as they come (a relayed
        stream streams)."""

    async def get(self, path: str) -> RawResponse: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class UpstreamSpec:
    """Where a route's calls go: what an upstream factory is built from."""

    provider: str = "openai"
    base_url: str | None = None
    api_key: str | None = None
    timeout_s: float = 60.0
    max_attempts: int = 3
    max_wait_s: float = 20.0
    max_answer_bytes: int = 256_000_000
