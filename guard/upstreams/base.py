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


@dataclass(frozen=True)
class RawResponse:
    """An upstream's answer as it came: status, bytes, content type (and headers)."""

    status: int
    body: bytes
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)
    obj: Any = None  # the upstream's own object, when it has one (the function upstream)

    def json(self) -> dict[str, Any]:
        data = json.loads(self.body)
        if not isinstance(data, dict):
            raise ValueError("upstream returned JSON that is not an object")
        return data


class Upstream(Protocol):
    async def post(self, path: str, body: dict[str, Any]) -> RawResponse:
        """POST ``body`` to ``path`` (``/chat/completions``, ``/completions``); retried inside.
        An answer that is not 2xx comes back as it is; a failure past the retries raises
        :class:`guard.errors.UpstreamError`."""

    def stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[bytes]:
        """The SSE bytes of a streaming request, as they arrive."""

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
