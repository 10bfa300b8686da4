"""Which headers cross calguard, each way.

Client to upstream: every header the client sent, but the ones about this connection
(hop-by-hop, those ``Connection`` names, host, length, encodings: calguard frames its own
request) and the client's credentials (``Authorization``, ``api-key``, ``x-api-key``,
``Cookie``): those go only where the settings say so (``forward_client_key``, no
``upstream_key``, no proxy ``api_keys``), and never a cookie (one client's cookies would reach
every route's provider). A header that holds one of calguard's own keys is not sent at all.
Upstream to client: everything but hop-by-hop headers (those ``Connection`` names too) and
what calguard re-frames (length, encoding: calguard decompresses). The upstream's
``x-request-id`` reaches the client as it is; calguard's own id is ``x-calguard-request-id``.
A field the upstream sent on several lines (two ``Set-Cookie``) is carried in one entry, its
lines joined by ``LINES`` (a character no field value can hold), and goes out as the lines it
came in (:func:`header_lines`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from guard.errors import InvalidRequestError

LINES = "\n"  # joins the lines of a field sent more than once (never inside a field value)
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Client headers about the client's own connection and body framing: calguard sends its own.
NOT_FORWARDED = HOP_BY_HOP | {
    "host",
    "content-length",
    "content-type",  # the pipeline sends JSON; a relayed request keeps the client's own
    "content-encoding",  # the pipeline sends its own body; a relayed one keeps the client's
    "accept-encoding",  # calguard's HTTP client asks for what it can decode
    "expect",
    # a method other than the one calguard checked: a PUT relayed to /chat/completions with
    # "override: POST" is a POST there, around the policies, on an upstream that honours it
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
}
CREDENTIALS = frozenset({"authorization", "api-key", "x-api-key"})
DROPPED = HOP_BY_HOP | {
    "content-length",
    "content-encoding",
    "content-type",  # the reply's media type says it
    "date",
    "server",
}


def from_wire(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header lines as calguard carries them: names lower-case, a repeated field's lines
    joined by ``LINES``."""
    out: dict[str, str] = {}
    for name, value in items:
        k = name.lower()
        out[k] = f"{out[k]}{LINES}{value}" if k in out else value
    return out


def header_lines(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The lines to send: one per line a field came in."""
    return [(k, line) for k, v in headers.items() for line in v.split(LINES)]


def forward_headers(
    client: Mapping[str, str],
    settings: Any,
    secrets: Iterable[str] = (),
    body: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """The client's headers that go upstream (names lower-case; a field sent on several lines
    is combined with ", ", as HTTP allows a proxy to), with ``body`` among them (a relayed
    body's ``content-type``, ``content-encoding``). One that holds a control character is a
    400 (the HTTP client would refuse to send it); one that holds calguard's own key is left
    out."""
    own_key = (
        getattr(settings, "forward_client_key", False)
        and not settings.upstream_key
        and not settings.api_keys
    )
    keys = [s for s in secrets if s]
    hop = _nominated(client)
    out: dict[str, str] = {}
    for name, value in client.items():
        k = name.lower()
        if (k in NOT_FORWARDED and k not in body) or k in hop or k == "cookie":
            continue
        if k in CREDENTIALS and not own_key:
            continue
        if any(key in value for key in keys):
            continue
        value = _as_sent(k, value)
        out[k] = f"{out[k]}, {value}" if k in out else value
    return out


def _as_sent(name: str, value: str) -> str:
    """``value`` (as the server read it: one character per byte) as the text whose UTF-8 is
    the bytes the client sent: the HTTP client encodes header values in UTF-8. Bytes that are
    not UTF-8, or a control character, cannot be sent as they came: a 400 naming the header."""
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        raise InvalidRequestError(
            f"the header {name!r} holds a control character", param=name, code="bad_header"
        )
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise InvalidRequestError(
            f"the header {name!r} holds bytes that are not UTF-8", param=name, code="bad_header"
        ) from None


# What an answer says of the account rather than of itself: a reply calguard makes from
# several calls (a calibrated one) carries these from the latest, so that a client tracking
# its rate limits (LiteLLM's router, say) still sees them.
ACCOUNT = ("x-ratelimit-", "openai-organization", "openai-project", "openai-version")


def account_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower().startswith(ACCOUNT)}


def passed_headers(upstream: Mapping[str, str]) -> dict[str, str]:
    """The upstream's response headers that reach the client."""
    hop = _nominated(upstream)
    return {k: v for k, v in upstream.items() if k.lower() not in DROPPED and k.lower() not in hop}


def _nominated(headers: Mapping[str, str]) -> set[str]:
    """The fields ``Connection`` names: about that connection only, as hop-by-hop as the
    standard ones (RFC 9110, 7.6.1); a proxy does not pass them on."""
    said = ",".join(v for k, v in headers.items() if k.lower() == "connection")
    return {t.strip().lower() for t in said.replace(LINES, ",").split(",")} - {""}
