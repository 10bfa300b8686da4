"""Which headers cross calguard, each way.

Client to upstream: the OpenAI headers that change what the upstream does (organization,
project, beta features, idempotency), and the client's own ``Authorization`` only where the
settings say so (``forward_client_key``, no ``upstream_key``, no proxy ``api_keys``).
Upstream to client: everything but hop-by-hop headers and what calguard re-frames (length,
encoding: calguard decompresses). The upstream's ``x-request-id`` reaches the client as it is;
calguard's own id is ``x-calguard-request-id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guard.errors import InvalidRequestError

FORWARDED = ("openai-organization", "openai-project", "openai-beta", "idempotency-key")
DROPPED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "content-type",  # the reply's media type says it
        "date",
        "server",
    }
)


def forward_headers(client: Mapping[str, str], settings: Any) -> dict[str, str]:
    """The client's headers that go upstream (names lower-case); one that holds a control
    character is a 400 (the HTTP client would refuse to send it)."""
    out = {k.lower(): v for k, v in client.items() if k.lower() in FORWARDED}
    for name, value in out.items():
        if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
            raise InvalidRequestError(
                f"the header {name!r} holds a control character", param=name, code="bad_header"
            )
    auth = next((v for k, v in client.items() if k.lower() == "authorization"), None)
    if (
        auth
        and getattr(settings, "forward_client_key", False)
        and not settings.upstream_key
        and not settings.api_keys
    ):
        out["authorization"] = auth
    return out


def passed_headers(upstream: Mapping[str, str]) -> dict[str, str]:
    """The upstream's response headers that reach the client."""
    return {k: v for k, v in upstream.items() if k.lower() not in DROPPED}
