"""Requests written exactly as a test means them, past any client that would normalise them."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit


def raw(url: str, method: str, path: str, body: bytes = b"") -> int:
    """A request with its path exactly as written (no client normalises it); its status."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest(method, path, skip_accept_encoding=True)
    conn.putheader("content-type", "application/json")
    conn.putheader("content-length", str(len(body)))
    conn.endheaders(body)
    status = conn.getresponse().status
    conn.close()
    return status


def raw_with_header(
    url: str, path: str, body: bytes, name: bytes, value: bytes
) -> tuple[int, bytes]:
    """A POST with one header given as exact bytes; its status and body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest("POST", path, skip_accept_encoding=True)
    conn.putheader("content-type", "application/json")
    conn.putheader("content-length", str(len(body)))
    conn.putheader(name, value)
    conn.endheaders(body)
    resp = conn.getresponse()
    out = resp.status, resp.read()
    conn.close()
    return out
